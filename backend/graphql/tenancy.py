"""Users, organizations and apps: types, queries and mutations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import tenancy as svc
from backend.admin.access import is_super
from backend.data.models.tenancy import App, Organization, User
from backend.graphql.common import After, Connection, First, from_row, paged, related
from backend.graphql.context import Info, viewer
from backend.graphql.declare import create, delete, get, update
from backend.graphql.enums import CapPeriod, Role, UserStatus, stored
from backend.graphql.governance import LIMITS, LimitsType, limits_type
from backend.graphql.permissions import IsAdmin, IsAuthenticated, IsSuperAdmin


@strawberry.type(name="User", description="A person using the gateway (admins also the dashboard).")
class UserType:
    id: int = strawberry.field(description="The user's id.")
    name: str = strawberry.field(description="Display name.")
    email: str = strawberry.field(description="Login and contact address (lower case).")
    status: UserStatus = strawberry.field(description="Whether the user may log in and call.")
    role: Role = strawberry.field(description="What the user may do.")
    weekly_cap_usd: Decimal | None = strawberry.field(
        description="Weekly spend cap in USD (ISO week, UTC); null: no cap."
    )
    organization_id: int | None = strawberry.field(
        description="The user's organization; null: none (super_admins may have none)."
    )
    has_password: bool = strawberry.field(description="Whether the user can log in.")
    created_at: dt.datetime = strawberry.field(description="When the user was created.")
    limits: LimitsType = strawberry.field(description=LIMITS)

    @strawberry.field(description="The user's organization; null: none.")
    async def organization(self, info: Info) -> OrganizationType | None:
        return await related(info.context.loaders.org, self.organization_id, OrganizationType.of)

    @staticmethod
    def of(u: User) -> UserType:
        return from_row(
            UserType,
            u,
            status=UserStatus(u.status),
            role=Role(u.role),
            has_password=bool(u.password_hash),
            limits=limits_type(u),
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


_SSO_ONLY = (
    "Members sign in with single sign-on only: their passwords are refused (SSO_REQUIRED); "
    "super_admins keep theirs."
)


@strawberry.type(
    name="Organization", description="A tenant: its users, apps and keys share its caps and DLP."
)
class OrganizationType:
    id: int = strawberry.field(description="The organization's id.")
    name: str = strawberry.field(description="Display name.")
    slug: str = strawberry.field(description="Unique short name (lowercase letters, digits, -).")
    owner_id: int | None = strawberry.field(description="The owning user; null: none.")
    spend_cap_usd: Decimal | None = strawberry.field(
        description="API spend cap per cap period in USD; null: no cap."
    )
    cap_period: CapPeriod = strawberry.field(description="The period the spend cap covers.")
    rollover: bool = strawberry.field(
        description="Carry the unused part of a period's cap into the next period."
    )
    dlp_enabled: bool = strawberry.field(description="DLP protects its users' keys' requests.")
    sso_only: bool = strawberry.field(description=_SSO_ONLY)
    created_at: dt.datetime = strawberry.field(description="When the organization was created.")
    limits: LimitsType = strawberry.field(description=LIMITS)

    @strawberry.field(
        description="The owner; null if none or outside the organization (below super_admin)."
    )
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
        return from_row(
            OrganizationType, o, cap_period=CapPeriod(o.cap_period), limits=limits_type(o)
        )


@strawberry.type(
    name="App", description="A service calling the gateway with its own keys (app keys)."
)
class AppType:
    id: int = strawberry.field(description="The app's id.")
    name: str = strawberry.field(description="Display name.")
    slug: str = strawberry.field(description="Unique short name (lowercase letters, digits, -).")
    contact: str = strawberry.field(description="Who to ask about it (free text).")
    active: bool = strawberry.field(description="Its keys are accepted (false: refused).")
    dlp_enabled: bool = strawberry.field(description="DLP protects its keys' requests.")
    organization_id: int | None = strawberry.field(
        description="The organization billed for it; null: none."
    )
    created_at: dt.datetime = strawberry.field(description="When the app was created.")
    limits: LimitsType = strawberry.field(description=LIMITS)

    @strawberry.field(description="The organization billed for it; null: none.")
    async def organization(self, info: Info) -> OrganizationType | None:
        return await related(info.context.loaders.org, self.organization_id, OrganizationType.of)

    @staticmethod
    def of(a: App) -> AppType:
        return from_row(AppType, a, limits=limits_type(a))


_CREATED_DESC = strawberry.enum_value("CREATED_DESC", description="Newest first.")
_CREATED_ASC = strawberry.enum_value("CREATED_ASC", description="Oldest first.")
_NAME_ASC = strawberry.enum_value("NAME_ASC", description="By name, A to Z.")
_NAME_DESC = strawberry.enum_value("NAME_DESC", description="By name, Z to A.")


@strawberry.enum(description="Order of a user list.")
class UserSort(Enum):
    CREATED_DESC = _CREATED_DESC
    CREATED_ASC = _CREATED_ASC
    NAME_ASC = _NAME_ASC
    NAME_DESC = _NAME_DESC
    EMAIL_ASC = strawberry.enum_value("EMAIL_ASC", description="By email, A to Z.")


@strawberry.enum(description="Order of an organization list.")
class OrganizationSort(Enum):
    CREATED_DESC = _CREATED_DESC
    CREATED_ASC = _CREATED_ASC
    NAME_ASC = _NAME_ASC
    NAME_DESC = _NAME_DESC
    SLUG_ASC = strawberry.enum_value("SLUG_ASC", description="By slug, A to Z.")


@strawberry.enum(description="Order of an app list.")
class AppSort(Enum):
    CREATED_DESC = _CREATED_DESC
    CREATED_ASC = _CREATED_ASC
    NAME_ASC = _NAME_ASC
    NAME_DESC = _NAME_DESC
    SLUG_ASC = strawberry.enum_value("SLUG_ASC", description="By slug, A to Z.")


_CAP = "Weekly spend cap in USD (ISO week, UTC); null: no cap."
_ORG_CAP = "API spend cap per cap period in USD; null: no cap."


@strawberry.input(description="Which users to list (all given conditions apply).")
class UserFilter:
    search: str | None = strawberry.field(default=None, description="In name or email.")
    role: Role | None = strawberry.field(default=None, description="Only this role.")
    status: UserStatus | None = strawberry.field(default=None, description="Only this status.")
    organization_id: int | None = strawberry.field(
        default=None, description="Only this organization's users."
    )


@strawberry.input(description="A new user.")
class CreateUserInput:
    name: str = strawberry.field(description="Display name.")
    email: str = strawberry.field(description="Login and contact address; unique.")
    role: Role = strawberry.field(
        default=Role.MEMBER, description="What the user may do (org_admins: not SUPER_ADMIN)."
    )
    status: UserStatus = strawberry.field(
        default=UserStatus.ACTIVE, description="Whether the user may log in and call."
    )
    weekly_cap_usd: Decimal | None = strawberry.field(default=UNSET, description=_CAP)
    organization_id: int | None = strawberry.field(
        default=UNSET, description="The user's organization (org_admins: their own, the default)."
    )
    password: str | None = strawberry.field(
        default=UNSET, description="Lets the user log in to the dashboard (8+ characters)."
    )


@strawberry.input(description="Changes to a user: only the fields sent change.")
class UpdateUserInput:
    name: str | None = strawberry.field(default=UNSET, description="Display name.")
    email: str | None = strawberry.field(default=UNSET, description="Login and contact address.")
    role: Role | None = strawberry.field(
        default=UNSET, description="What the user may do (org_admins: not SUPER_ADMIN)."
    )
    status: UserStatus | None = strawberry.field(
        default=UNSET, description="SUSPENDED refuses the user's logins and keys."
    )
    weekly_cap_usd: Decimal | None = strawberry.field(default=UNSET, description=_CAP)
    organization_id: int | None = strawberry.field(
        default=UNSET, description="Move the user to this organization (super_admin)."
    )
    password: str | None = strawberry.field(default=UNSET, description="null removes login.")


@strawberry.input(description="A new organization.")
class CreateOrganizationInput:
    name: str = strawberry.field(description="Display name.")
    slug: str = strawberry.field(description="Unique short name (lowercase letters, digits, -).")
    owner_id: int | None = strawberry.field(default=UNSET, description="The owning user.")
    spend_cap_usd: Decimal | None = strawberry.field(default=UNSET, description=_ORG_CAP)
    cap_period: CapPeriod = strawberry.field(
        default=CapPeriod.MONTHLY, description="The period the spend cap covers."
    )
    rollover: bool = strawberry.field(
        default=False, description="Carry the unused part of a period's cap into the next period."
    )
    dlp_enabled: bool = strawberry.field(
        default=False, description="DLP protects its users' keys' requests."
    )
    sso_only: bool = strawberry.field(default=False, description=_SSO_ONLY)


@strawberry.input(description="Changes to an organization: only the fields sent change.")
class UpdateOrganizationInput:
    name: str | None = strawberry.field(default=UNSET, description="Display name.")
    slug: str | None = strawberry.field(default=UNSET, description="Unique short name.")
    owner_id: int | None = strawberry.field(default=UNSET, description="The owning user.")
    spend_cap_usd: Decimal | None = strawberry.field(default=UNSET, description=_ORG_CAP)
    cap_period: CapPeriod | None = strawberry.field(
        default=UNSET, description="The period the spend cap covers."
    )
    rollover: bool | None = strawberry.field(
        default=UNSET, description="Carry the unused part of a period's cap into the next period."
    )
    dlp_enabled: bool | None = strawberry.field(
        default=UNSET, description="DLP protects its users' keys' requests."
    )
    sso_only: bool | None = strawberry.field(default=UNSET, description=_SSO_ONLY)


@strawberry.input(description="A new app.")
class CreateAppInput:
    name: str = strawberry.field(description="Display name.")
    slug: str = strawberry.field(description="Unique short name (lowercase letters, digits, -).")
    contact: str = strawberry.field(default="", description="Who to ask about it (free text).")
    active: bool = strawberry.field(default=True, description="Its keys are accepted.")
    dlp_enabled: bool = strawberry.field(
        default=False, description="DLP protects its keys' requests."
    )
    organization_id: int | None = strawberry.field(
        default=UNSET, description="The organization billed for it (org_admins: their own)."
    )


@strawberry.input(description="Changes to an app: only the fields sent change.")
class UpdateAppInput:
    name: str | None = strawberry.field(default=UNSET, description="Display name.")
    slug: str | None = strawberry.field(default=UNSET, description="Unique short name.")
    contact: str | None = strawberry.field(default=UNSET, description="Who to ask about it.")
    active: bool | None = strawberry.field(
        default=UNSET, description="false refuses its keys until set back to true."
    )
    dlp_enabled: bool | None = strawberry.field(
        default=UNSET, description="DLP protects its keys' requests."
    )
    organization_id: int | None = strawberry.field(
        default=UNSET, description="The organization billed for it."
    )


_UserId = Annotated[int, strawberry.argument(description="The user's id.")]
_OrgId = Annotated[int, strawberry.argument(description="The organization's id.")]
_AppId = Annotated[int, strawberry.argument(description="The app's id.")]
_Search = Annotated[str | None, strawberry.argument(description="In name or slug.")]


@strawberry.type
class TenancyQuery:
    @strawberry.field(description="The authenticated user.", permission_classes=[IsAuthenticated])
    def me(self, info: Info) -> UserType:
        return UserType.of(viewer(info))

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Users you administer (org_admins: their organization's, no super_admins).",
    )
    async def users(
        self,
        info: Info,
        filter: Annotated[
            UserFilter | None, strawberry.argument(description="Which users; null: all.")
        ] = None,
        sort: Annotated[UserSort, strawberry.argument(description="Order.")] = (
            UserSort.CREATED_DESC
        ),
        first: First = None,
        after: After = None,
    ) -> Connection[UserType]:
        f = filter or UserFilter()
        return await paged(
            info,
            svc.list_users,
            UserType.of,
            search=f.search,
            role=stored(f.role),
            status=stored(f.status),
            organization_id=f.organization_id,
            sort=stored(sort),
            first=first,
            after=after,
        )

    user = get(
        svc.get_user,
        UserType,
        IsAuthenticated,
        "One user (members: themselves; org_admins: their organization's).",
        _UserId,
    )

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Organizations (org_admins: their own).",
    )
    async def organizations(
        self,
        info: Info,
        search: _Search = None,
        sort: Annotated[OrganizationSort, strawberry.argument(description="Order.")] = (
            OrganizationSort.CREATED_DESC
        ),
        first: First = None,
        after: After = None,
    ) -> Connection[OrganizationType]:
        return await paged(
            info,
            svc.list_orgs,
            OrganizationType.of,
            search=search,
            sort=stored(sort),
            first=first,
            after=after,
        )

    organization = get(
        svc.get_org,
        OrganizationType,
        IsAuthenticated,
        "One organization (below super_admin: their own).",
        _OrgId,
    )

    @strawberry.field(permission_classes=[IsAdmin], description="Apps (org_admins: their own).")
    async def apps(
        self,
        info: Info,
        search: _Search = None,
        organization_id: Annotated[
            int | None, strawberry.argument(description="Only this organization's apps.")
        ] = None,
        active: Annotated[
            bool | None, strawberry.argument(description="Only active (true) or inactive apps.")
        ] = None,
        sort: Annotated[AppSort, strawberry.argument(description="Order.")] = AppSort.CREATED_DESC,
        first: First = None,
        after: After = None,
    ) -> Connection[AppType]:
        return await paged(
            info,
            svc.list_apps,
            AppType.of,
            search=search,
            organization_id=organization_id,
            active=active,
            sort=stored(sort),
            first=first,
            after=after,
        )

    app = get(svc.get_app, AppType, IsAdmin, "One app (org_admins: their own).", _AppId)


_NewUser = Annotated[CreateUserInput, strawberry.argument(description="The new user.")]
_NewOrg = Annotated[
    CreateOrganizationInput, strawberry.argument(description="The new organization.")
]
_NewApp = Annotated[CreateAppInput, strawberry.argument(description="The new app.")]
_CHANGE_USER = (
    "Change a user; a role, status or organization change ends their sessions' subscriptions."
)


@strawberry.type
class TenancyMutation:
    create_user = create(svc.create_user, UserType, IsAdmin, "Create a user.", _NewUser)
    update_user = update(svc.update_user, UserType, IsAdmin, _CHANGE_USER, _UserId, UpdateUserInput)
    delete_user = delete(svc.delete_user, IsAdmin, _UserId)
    create_organization = create(
        svc.create_org, OrganizationType, IsSuperAdmin, "Create an organization.", _NewOrg
    )
    update_organization = update(
        svc.update_org,
        OrganizationType,
        IsSuperAdmin,
        "Change an organization.",
        _OrgId,
        UpdateOrganizationInput,
    )
    delete_organization = delete(svc.delete_org, IsSuperAdmin, _OrgId)
    create_app = create(svc.create_app, AppType, IsAdmin, "Create an app.", _NewApp)
    update_app = update(svc.update_app, AppType, IsAdmin, "Change an app.", _AppId, UpdateAppInput)
    delete_app = delete(svc.delete_app, IsAdmin, _AppId)
