"""Users, organizations and apps: types, queries and mutations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import tenancy as svc
from backend.admin.access import is_super
from backend.data.models.tenancy import App, Organization, User
from backend.graphql.common import Connection, changes, connection
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAdmin, IsAuthenticated, IsSuperAdmin


@strawberry.type(name="User")
class UserType:
    id: int
    name: str
    email: str
    status: str = strawberry.field(description="active | suspended")
    role: str = strawberry.field(description="super_admin | org_admin | member")
    weekly_cap_usd: Decimal | None = strawberry.field(
        description="Weekly spend cap in USD (ISO week, UTC); null: no cap."
    )
    organization_id: int | None
    has_password: bool = strawberry.field(description="Whether the user can log in.")
    created_at: dt.datetime

    @strawberry.field
    async def organization(self, info: Info) -> OrganizationType | None:
        if self.organization_id is None:
            return None
        org = await info.context.loaders.org.load(self.organization_id)
        return OrganizationType.of(org) if org else None

    @staticmethod
    def of(u: User) -> UserType:
        return UserType(
            id=u.id,
            name=u.name,
            email=u.email,
            status=u.status,
            role=u.role,
            weekly_cap_usd=u.weekly_cap_usd,
            organization_id=u.organization_id,  # type: ignore[attr-defined]
            has_password=bool(u.password_hash),
            created_at=u.created_at,
        )


async def visible_user(info: Info, user_id: int | None) -> UserType | None:
    """The user behind a row of another kind (a log row, a usage line), or None if hidden.

    Such rows belong to the organization their request was made under; the user may have moved
    since, and who they are now (their organization, cap, role) is then another organization's
    data. So below super_admin a viewer sees the user only while the user belongs to the viewer's
    organization (or is the viewer); otherwise the row keeps its ``userId`` and ``user`` is null.
    """
    if user_id is None:
        return None
    user = await info.context.loaders.user.load(user_id)
    me = info.context.viewer
    if user is None or me is None:
        return None
    if not is_super(me) and me.id != user.id:
        mine = me.organization_id  # type: ignore[attr-defined]
        if mine is None or user.organization_id != mine:  # type: ignore[attr-defined]
            return None
    return UserType.of(user)


@strawberry.type(name="Organization")
class OrganizationType:
    id: int
    name: str
    slug: str
    owner_id: int | None
    spend_cap_usd: Decimal | None = strawberry.field(
        description="API spend cap per cap period in USD; null: no cap."
    )
    cap_period: str = strawberry.field(description="weekly | monthly")
    rollover: bool = strawberry.field(
        description="Carry the unused part of a period's cap into the next period."
    )
    dlp_enabled: bool
    created_at: dt.datetime

    @strawberry.field
    async def owner(self, info: Info) -> UserType | None:
        if self.owner_id is None:
            return None
        user = await info.context.loaders.user.load(self.owner_id)
        if user is None:
            return None
        # An owner from outside the organization is another organization's user (or a
        # super_admin): only a super_admin may see who it is.
        me = info.context.viewer
        if user.organization_id != self.id and (me is None or not is_super(me)):  # type: ignore[attr-defined]
            return None
        return UserType.of(user)

    @strawberry.field(description="Number of users in the organization.")
    async def member_count(self, info: Info) -> int:
        return await info.context.loaders.member_count.load(self.id)

    @staticmethod
    def of(o: Organization) -> OrganizationType:
        return OrganizationType(
            id=o.id,
            name=o.name,
            slug=o.slug,
            owner_id=o.owner_id,  # type: ignore[attr-defined]
            spend_cap_usd=o.spend_cap_usd,
            cap_period=o.cap_period,
            rollover=o.rollover,
            dlp_enabled=o.dlp_enabled,
            created_at=o.created_at,
        )


@strawberry.type(name="App")
class AppType:
    id: int
    name: str
    slug: str
    contact: str
    active: bool
    dlp_enabled: bool
    organization_id: int | None
    created_at: dt.datetime

    @strawberry.field
    async def organization(self, info: Info) -> OrganizationType | None:
        if self.organization_id is None:
            return None
        org = await info.context.loaders.org.load(self.organization_id)
        return OrganizationType.of(org) if org else None

    @staticmethod
    def of(a: App) -> AppType:
        return AppType(
            id=a.id,
            name=a.name,
            slug=a.slug,
            contact=a.contact,
            active=a.active,
            dlp_enabled=a.dlp_enabled,
            organization_id=a.organization_id,  # type: ignore[attr-defined]
            created_at=a.created_at,
        )


@strawberry.enum
class UserSort(Enum):
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    EMAIL_ASC = "EMAIL_ASC"


@strawberry.enum
class OrganizationSort(Enum):
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    SLUG_ASC = "SLUG_ASC"


@strawberry.enum
class AppSort(Enum):
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    SLUG_ASC = "SLUG_ASC"


@strawberry.input
class UserFilter:
    search: str | None = strawberry.field(default=None, description="In name or email.")
    role: str | None = None
    status: str | None = None
    organization_id: int | None = None


@strawberry.input
class CreateUserInput:
    name: str
    email: str
    role: str = "member"
    status: str = "active"
    weekly_cap_usd: Decimal | None = UNSET
    organization_id: int | None = UNSET
    password: str | None = strawberry.field(
        default=UNSET, description="Lets the user log in to the dashboard (8+ characters)."
    )


@strawberry.input
class UpdateUserInput:
    name: str | None = UNSET
    email: str | None = UNSET
    role: str | None = UNSET
    status: str | None = UNSET
    weekly_cap_usd: Decimal | None = UNSET
    organization_id: int | None = UNSET
    password: str | None = strawberry.field(default=UNSET, description="null removes login.")


@strawberry.input
class CreateOrganizationInput:
    name: str
    slug: str
    owner_id: int | None = UNSET
    spend_cap_usd: Decimal | None = UNSET
    cap_period: str = "monthly"
    rollover: bool = False
    dlp_enabled: bool = False


@strawberry.input
class UpdateOrganizationInput:
    name: str | None = UNSET
    slug: str | None = UNSET
    owner_id: int | None = UNSET
    spend_cap_usd: Decimal | None = UNSET
    cap_period: str | None = UNSET
    rollover: bool | None = UNSET
    dlp_enabled: bool | None = UNSET


@strawberry.input
class CreateAppInput:
    name: str
    slug: str
    contact: str = ""
    active: bool = True
    dlp_enabled: bool = False
    organization_id: int | None = UNSET


@strawberry.input
class UpdateAppInput:
    name: str | None = UNSET
    slug: str | None = UNSET
    contact: str | None = UNSET
    active: bool | None = UNSET
    dlp_enabled: bool | None = UNSET
    organization_id: int | None = UNSET


@strawberry.type
class TenancyQuery:
    @strawberry.field(description="The authenticated user.", permission_classes=[IsAuthenticated])
    def me(self, info: Info) -> UserType:
        return UserType.of(viewer(info))

    @strawberry.field(permission_classes=[IsAdmin])
    async def users(
        self,
        info: Info,
        filter: UserFilter | None = None,
        sort: UserSort = UserSort.CREATED_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[UserType]:
        f = filter or UserFilter()
        page = await svc.list_users(
            viewer(info),
            search=f.search,
            role=f.role,
            status=f.status,
            organization_id=f.organization_id,
            sort=sort.value,
            first=first,
            after=after,
        )
        return connection(page, UserType.of)

    @strawberry.field(permission_classes=[IsAuthenticated])
    async def user(self, info: Info, id: int) -> UserType:
        return UserType.of(await svc.get_user(viewer(info), id))

    @strawberry.field(permission_classes=[IsAdmin])
    async def organizations(
        self,
        info: Info,
        search: str | None = None,
        sort: OrganizationSort = OrganizationSort.CREATED_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[OrganizationType]:
        page = await svc.list_orgs(
            viewer(info), search=search, sort=sort.value, first=first, after=after
        )
        return connection(page, OrganizationType.of)

    @strawberry.field(permission_classes=[IsAuthenticated])
    async def organization(self, info: Info, id: int) -> OrganizationType:
        return OrganizationType.of(await svc.get_org(viewer(info), id))

    @strawberry.field(permission_classes=[IsAdmin])
    async def apps(
        self,
        info: Info,
        search: str | None = None,
        organization_id: int | None = None,
        active: bool | None = None,
        sort: AppSort = AppSort.CREATED_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AppType]:
        page = await svc.list_apps(
            viewer(info),
            search=search,
            organization_id=organization_id,
            active=active,
            sort=sort.value,
            first=first,
            after=after,
        )
        return connection(page, AppType.of)

    @strawberry.field(permission_classes=[IsAdmin])
    async def app(self, info: Info, id: int) -> AppType:
        return AppType.of(await svc.get_app(viewer(info), id))


@strawberry.type
class TenancyMutation:
    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_user(self, info: Info, input: CreateUserInput) -> UserType:
        user = await svc.create_user(info.context.gateway, viewer(info), changes(input))
        return UserType.of(user)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_user(self, info: Info, id: int, input: UpdateUserInput) -> UserType:
        user = await svc.update_user(info.context.gateway, viewer(info), id, changes(input))
        return UserType.of(user)

    @strawberry.mutation(permission_classes=[IsAdmin], description="Returns the deleted id.")
    async def delete_user(self, info: Info, id: int) -> int:
        return await svc.delete_user(info.context.gateway, viewer(info), id)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def create_organization(
        self, info: Info, input: CreateOrganizationInput
    ) -> OrganizationType:
        org = await svc.create_org(info.context.gateway, viewer(info), changes(input))
        return OrganizationType.of(org)

    @strawberry.mutation(permission_classes=[IsSuperAdmin])
    async def update_organization(
        self, info: Info, id: int, input: UpdateOrganizationInput
    ) -> OrganizationType:
        org = await svc.update_org(info.context.gateway, viewer(info), id, changes(input))
        return OrganizationType.of(org)

    @strawberry.mutation(permission_classes=[IsSuperAdmin], description="Returns the deleted id.")
    async def delete_organization(self, info: Info, id: int) -> int:
        return await svc.delete_org(info.context.gateway, viewer(info), id)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def create_app(self, info: Info, input: CreateAppInput) -> AppType:
        app = await svc.create_app(info.context.gateway, viewer(info), changes(input))
        return AppType.of(app)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_app(self, info: Info, id: int, input: UpdateAppInput) -> AppType:
        app = await svc.update_app(info.context.gateway, viewer(info), id, changes(input))
        return AppType.of(app)

    @strawberry.mutation(permission_classes=[IsAdmin], description="Returns the deleted id.")
    async def delete_app(self, info: Info, id: int) -> int:
        return await svc.delete_app(info.context.gateway, viewer(info), id)
