"""Gateway API keys (user keys and app keys) and the viewer's admin tokens."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import auth as auth_svc
from backend.admin import keys as svc
from backend.data.models.keys import AdminToken, ApiKey
from backend.graphql.common import Connection, changes, connection
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAdmin, IsAuthenticated
from backend.graphql.tenancy import AppType, UserType


@strawberry.type(name="ApiKey")
class ApiKeyType:
    id: int
    name: str
    prefix: str = strawberry.field(description="Displayable start of the key (not a secret).")
    user_id: int | None
    app_id: int | None
    rate_limit_rpm: int | None = strawberry.field(description="Requests per minute; null: none.")
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    created_at: dt.datetime
    status: str = strawberry.field(description="active | revoked | expired")

    @strawberry.field
    def kind(self) -> str:
        """user (a user key) | app (an app key)"""
        return "app" if self.app_id is not None else "user"

    @strawberry.field
    async def user(self, info: Info) -> UserType | None:
        if self.user_id is None:
            return None
        user = await info.context.loaders.user.load(self.user_id)
        return UserType.of(user) if user else None

    @strawberry.field
    async def app(self, info: Info) -> AppType | None:
        if self.app_id is None:
            return None
        app = await info.context.loaders.app.load(self.app_id)
        return AppType.of(app) if app else None

    @staticmethod
    def of(k: ApiKey, now: dt.datetime) -> ApiKeyType:
        return ApiKeyType(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            user_id=k.user_id,  # type: ignore[attr-defined]
            app_id=k.app_id,  # type: ignore[attr-defined]
            rate_limit_rpm=k.rate_limit_rpm,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
            created_at=k.created_at,
            status=svc.key_status(k, now),
        )


@strawberry.type
class CreatedApiKey:
    api_key: ApiKeyType
    secret: str = strawberry.field(
        description="The full key. Shown only in this response: store it now."
    )


@strawberry.type(name="AdminToken")
class AdminTokenType:
    id: int
    name: str
    prefix: str
    user_id: int
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    created_at: dt.datetime

    @staticmethod
    def of(t: AdminToken) -> AdminTokenType:
        return AdminTokenType(
            id=t.id,
            name=t.name,
            prefix=t.prefix,
            user_id=t.user_id,  # type: ignore[attr-defined]
            expires_at=t.expires_at,
            revoked_at=t.revoked_at,
            created_at=t.created_at,
        )


@strawberry.type
class CreatedAdminToken:
    admin_token: AdminTokenType
    token: str = strawberry.field(
        description="Use as 'Authorization: Bearer <token>'. Shown only in this response."
    )


@strawberry.enum
class ApiKeySort(Enum):
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"
    NAME_ASC = "NAME_ASC"


@strawberry.input
class ApiKeyFilter:
    user_id: int | None = None
    app_id: int | None = None
    status: str | None = strawberry.field(default=None, description="active | revoked | expired")
    search: str | None = strawberry.field(default=None, description="In name or prefix.")


@strawberry.input
class CreateApiKeyInput:
    user_id: int | None = strawberry.field(
        default=UNSET, description="Owner user (default: yourself)."
    )
    app_id: int | None = strawberry.field(default=UNSET, description="Owner app (an app key).")
    name: str = ""
    rate_limit_rpm: int | None = UNSET
    expires_at: dt.datetime | None = UNSET


@strawberry.input
class UpdateApiKeyInput:
    name: str | None = UNSET
    rate_limit_rpm: int | None = UNSET
    expires_at: dt.datetime | None = UNSET


@strawberry.type
class KeysQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="API keys you may manage (members: their own).",
    )
    async def api_keys(
        self,
        info: Info,
        filter: ApiKeyFilter | None = None,
        sort: ApiKeySort = ApiKeySort.CREATED_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ApiKeyType]:
        f = filter or ApiKeyFilter()
        now = info.context.gateway.clock()
        page = await svc.list_keys(
            viewer(info),
            now=now,
            user_id=f.user_id,
            app_id=f.app_id,
            status=f.status,
            search=f.search,
            sort=sort.value,
            first=first,
            after=after,
        )
        return connection(page, lambda k: ApiKeyType.of(k, now))

    @strawberry.field(permission_classes=[IsAuthenticated])
    async def api_key(self, info: Info, id: int) -> ApiKeyType:
        key = await svc.get_key(viewer(info), id)
        return ApiKeyType.of(key, info.context.gateway.clock())

    @strawberry.field(permission_classes=[IsAdmin], description="Admin tokens (yours).")
    async def admin_tokens(self, info: Info) -> list[AdminTokenType]:
        return [AdminTokenType.of(t) for t in await auth_svc.list_admin_tokens(viewer(info))]


@strawberry.type
class KeysMutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Create a key; its secret is returned once, in this response only.",
    )
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreatedApiKey:
        gw = info.context.gateway
        key, secret = await svc.create_key(gw, viewer(info), changes(input))
        return CreatedApiKey(api_key=ApiKeyType.of(key, gw.clock()), secret=secret)

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def update_api_key(self, info: Info, id: int, input: UpdateApiKeyInput) -> ApiKeyType:
        gw = info.context.gateway
        key = await svc.update_key(gw, viewer(info), id, changes(input))
        return ApiKeyType.of(key, gw.clock())

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def revoke_api_key(self, info: Info, id: int) -> ApiKeyType:
        gw = info.context.gateway
        key = await svc.revoke_key(gw, viewer(info), id)
        return ApiKeyType.of(key, gw.clock())

    @strawberry.mutation(permission_classes=[IsAuthenticated], description="Returns the id.")
    async def delete_api_key(self, info: Info, id: int) -> int:
        return await svc.delete_key(info.context.gateway, viewer(info), id)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="A long-lived token for automation, acting with your role and scope.",
    )
    async def create_admin_token(
        self, info: Info, name: str, expires_in_days: int | None = None
    ) -> CreatedAdminToken:
        secret, row = await auth_svc.create_admin_token(
            info.context.gateway, viewer(info), name, expires_in_days
        )
        return CreatedAdminToken(admin_token=AdminTokenType.of(row), token=secret)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def revoke_admin_token(self, info: Info, id: int) -> AdminTokenType:
        row = await auth_svc.revoke_admin_token(info.context.gateway, viewer(info), id)
        return AdminTokenType.of(row)
