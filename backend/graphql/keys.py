"""Gateway API keys (user keys and app keys) and the viewer's admin tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import auth as auth_svc
from backend.admin import keys as svc
from backend.data.models.keys import AdminToken, ApiKey
from backend.graphql.common import (
    After,
    Connection,
    First,
    changes,
    from_row,
    paged,
    related,
    run,
)
from backend.graphql.context import Info, viewer
from backend.graphql.declare import Changes, delete, listing, mutation
from backend.graphql.enums import ApiKeyKind, ApiKeyStatus, CapPeriod, stored
from backend.graphql.governance import LimitsType, limits_type
from backend.graphql.permissions import IsAdmin, IsAuthenticated
from backend.graphql.tenancy import AppType, UserType


@strawberry.type(
    description=(
        "What a key spent in its cap period so far (from the request log), with the keys it was "
        "rotated from or into: they share its spend cap's counter."
    )
)
class KeySpend:
    period: CapPeriod = strawberry.field(
        description="The key's cap period (monthly when it has no cap)."
    )
    period_start: dt.datetime = strawberry.field(description="When the period began (UTC).")
    cost_usd: Decimal = strawberry.field(description="Cost in USD of its priced requests.")
    requests: int = strawberry.field(
        description="Requests made in the period with it and the keys of its rotation chain."
    )
    unknown_cost_requests: int = strawberry.field(
        description="Requests answered by a model without a price: not in costUsd."
    )


@strawberry.type(name="ApiKey", description="A gateway API key (its secret is never shown again).")
class ApiKeyType:
    id: int = strawberry.field(description="The key's id.")
    name: str = strawberry.field(description="A label for people.")
    prefix: str = strawberry.field(description="Displayable start of the key (not a secret).")
    user_id: int | None = strawberry.field(description="Owner user (a user key); null: an app key.")
    app_id: int | None = strawberry.field(description="Owner app (an app key); null: a user key.")
    rate_limit_rpm: int | None = strawberry.field(
        description="Requests per minute (limits.requestsPerMinute); null: none."
    )
    expires_at: dt.datetime | None = strawberry.field(description="Refused from then; null: never.")
    revoked_at: dt.datetime | None = strawberry.field(description="When it was revoked; null: not.")
    last_used_at: dt.datetime | None = strawberry.field(
        description="Last request with it (updated in batches); null: never used."
    )
    created_at: dt.datetime = strawberry.field(description="When the key was created.")
    status: ApiKeyStatus = strawberry.field(description="Whether the key is accepted now.")
    limits: LimitsType = strawberry.field(
        description=(
            "Rate, token and model limits and the key's own spend cap; limits an administrator "
            "set are listed in locks (the owner may not raise them)."
        )
    )

    _cap_period: strawberry.Private[str | None] = None
    #: Scope of its counters, shared along a rotation chain (``svc.counter_id``).
    _counter_id: strawberry.Private[int | None] = None

    @strawberry.field(
        description=(
            "What the key spent in its cap period so far, with the keys of its rotation chain "
            "(a rotated key continues its predecessor's cap counter)."
        )
    )
    async def spend_this_period(self, info: Info) -> KeySpend:
        now = info.context.gateway.clock()
        period = svc.period_kind(self._cap_period)
        start = svc.period_start(period, now)
        chain = self.id if self._counter_id is None else self._counter_id
        spent = await info.context.loaders.key_spend.load((chain, period, start))
        return from_row(KeySpend, spent, period=CapPeriod(spent.period))

    @strawberry.field(description="Whom the key belongs to.")
    def kind(self) -> ApiKeyKind:
        return ApiKeyKind.APP if self.app_id is not None else ApiKeyKind.USER

    @strawberry.field(description="Owner user; null: an app key.")
    async def user(self, info: Info) -> UserType | None:
        return await related(info.context.loaders.user, self.user_id, UserType.of)

    @strawberry.field(description="Owner app; null: a user key.")
    async def app(self, info: Info) -> AppType | None:
        return await related(info.context.loaders.app, self.app_id, AppType.of)

    @staticmethod
    def of(k: ApiKey, now: dt.datetime) -> ApiKeyType:
        return from_row(
            ApiKeyType,
            k,
            status=ApiKeyStatus(svc.key_status(k, now)),
            limits=limits_type(k),
            _cap_period=k.cap_period,
            _counter_id=svc.counter_id(k),
        )


@strawberry.type(description="A new API key with its secret.")
class CreatedApiKey:
    api_key: ApiKeyType = strawberry.field(description="The key.")
    secret: str = strawberry.field(
        description="The full key. Shown only in this response: store it now."
    )


@strawberry.type(description="A rotated key: the new key with its secret, and the old key.")
class RotatedApiKey:
    api_key: ApiKeyType = strawberry.field(description="The new key (same owner, name, limits).")
    secret: str = strawberry.field(
        description="The new key's full secret. Shown only in this response: store it now."
    )
    previous: ApiKeyType = strawberry.field(
        description=(
            "The old key: revoked, or expiring at the end of the grace period (its expiresAt)."
        )
    )


@strawberry.type(
    name="AdminToken",
    description="A long-lived dashboard token for automation (acts as its owner).",
)
class AdminTokenType:
    id: int = strawberry.field(description="The token's id.")
    name: str = strawberry.field(description="A label for people.")
    prefix: str = strawberry.field(description="Displayable start of the token (not a secret).")
    user_id: int = strawberry.field(description="The owner, whose role and scope it acts with.")
    expires_at: dt.datetime | None = strawberry.field(description="Refused from then; null: never.")
    revoked_at: dt.datetime | None = strawberry.field(description="When it was revoked; null: not.")
    created_at: dt.datetime = strawberry.field(description="When the token was created.")

    @staticmethod
    def of(t: AdminToken) -> AdminTokenType:
        return from_row(AdminTokenType, t)


@strawberry.type(description="A new admin token with its secret.")
class CreatedAdminToken:
    admin_token: AdminTokenType = strawberry.field(description="The token.")
    token: str = strawberry.field(
        description="Use as 'Authorization: Bearer <token>'. Shown only in this response."
    )


@strawberry.enum(description="Order of an API key list.")
class ApiKeySort(Enum):
    CREATED_DESC = strawberry.enum_value("CREATED_DESC", description="Newest first.")
    CREATED_ASC = strawberry.enum_value("CREATED_ASC", description="Oldest first.")
    NAME_ASC = strawberry.enum_value("NAME_ASC", description="By name, A to Z.")


@strawberry.input(description="Which API keys to list (all given conditions apply).")
class ApiKeyFilter:
    user_id: int | None = strawberry.field(default=None, description="Only this user's keys.")
    app_id: int | None = strawberry.field(default=None, description="Only this app's keys.")
    status: ApiKeyStatus | None = strawberry.field(default=None, description="Only this status.")
    search: str | None = strawberry.field(default=None, description="In name or prefix.")
    kind: ApiKeyKind | None = strawberry.field(
        default=None, description="Only user keys or only app keys."
    )
    organization_id: int | None = strawberry.field(
        default=None, description="Only keys of this organization's users and apps."
    )


@strawberry.input(description="A new API key (a user key, or an app key with appId).")
class CreateApiKeyInput:
    user_id: int | None = strawberry.field(
        default=UNSET, description="Owner user (default: yourself)."
    )
    app_id: int | None = strawberry.field(default=UNSET, description="Owner app (an app key).")
    name: str = strawberry.field(default="", description="A label for people.")
    rate_limit_rpm: int | None = strawberry.field(
        default=UNSET, description="Requests per minute; null: none."
    )
    expires_at: dt.datetime | None = strawberry.field(
        default=UNSET, description="Refused from then; null: never."
    )


@strawberry.input(description="Changes to an API key: only the fields sent change.")
class UpdateApiKeyInput:
    name: str | None = strawberry.field(default=UNSET, description="A label for people.")
    rate_limit_rpm: int | None = strawberry.field(
        default=UNSET, description="Requests per minute; null: none."
    )
    expires_at: dt.datetime | None = strawberry.field(
        default=UNSET, description="Refused from then; null: never."
    )


_KeyId = Annotated[int, strawberry.argument(description="The key's id.")]


def _key_now(info: Info) -> Callable[[ApiKey], ApiKeyType]:
    """A key as the API shows it, its status as of when it is converted (after the change)."""
    return lambda key: ApiKeyType.of(key, info.context.gateway.clock())


_TokenId = Annotated[int, strawberry.argument(description="The token's id.")]


@strawberry.type
class KeysQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="API keys you may manage (members: their own).",
    )
    async def api_keys(
        self,
        info: Info,
        filter: Annotated[
            ApiKeyFilter | None, strawberry.argument(description="Which keys; null: all.")
        ] = None,
        sort: Annotated[ApiKeySort, strawberry.argument(description="Order.")] = (
            ApiKeySort.CREATED_DESC
        ),
        first: First = None,
        after: After = None,
    ) -> Connection[ApiKeyType]:
        f = filter or ApiKeyFilter()
        now = info.context.gateway.clock()
        return await paged(
            info,
            svc.list_keys,
            lambda k: ApiKeyType.of(k, now),
            now=now,
            user_id=f.user_id,
            app_id=f.app_id,
            status=stored(f.status),
            search=f.search,
            kind=stored(f.kind),
            org_id=f.organization_id,
            sort=stored(sort),
            first=first,
            after=after,
        )

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="One API key you may manage (members: their own).",
    )
    async def api_key(self, info: Info, id: _KeyId) -> ApiKeyType:
        return await run(info, svc.get_key, id, convert=_key_now(info), gateway=False)

    admin_tokens = listing(
        auth_svc.list_admin_tokens, AdminTokenType, IsAdmin, "Admin tokens (yours)."
    )


@strawberry.type
class KeysMutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Create a key; its secret is returned once, in this response only.",
    )
    async def create_api_key(
        self,
        info: Info,
        input: Annotated[CreateApiKeyInput, strawberry.argument(description="The new key.")],
    ) -> CreatedApiKey:
        gw = info.context.gateway
        key, secret = await svc.create_key(gw, viewer(info), changes(input))
        return CreatedApiKey(api_key=ApiKeyType.of(key, gw.clock()), secret=secret)

    @strawberry.mutation(permission_classes=[IsAuthenticated], description="Change an API key.")
    async def update_api_key(
        self,
        info: Info,
        id: _KeyId,
        input: Changes[UpdateApiKeyInput],
    ) -> ApiKeyType:
        return await run(info, svc.update_key, id, input, convert=_key_now(info))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Refuse the key from now on, on every instance (kept for the logs).",
    )
    async def revoke_api_key(self, info: Info, id: _KeyId) -> ApiKeyType:
        return await run(info, svc.revoke_key, id, convert=_key_now(info))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description=(
            "Issue a new key in place of this one (same owner, name, limits and expiry; its "
            "secret is returned once) and retire the old key: at once, or when graceSeconds "
            "have passed (it expires then), so clients can switch without an outage."
        ),
    )
    async def rotate_api_key(
        self,
        info: Info,
        id: _KeyId,
        grace_seconds: Annotated[
            int | None,
            strawberry.argument(
                description=(
                    "How long the old key keeps working, 0 to 2,592,000 (30 days); "
                    "null or 0: revoked at once."
                )
            ),
        ] = None,
    ) -> RotatedApiKey:
        gw = info.context.gateway
        old, new, secret = await svc.rotate_key(gw, viewer(info), id, grace_seconds)
        now = gw.clock()
        return RotatedApiKey(
            api_key=ApiKeyType.of(new, now), secret=secret, previous=ApiKeyType.of(old, now)
        )

    delete_api_key = delete(svc.delete_key, IsAuthenticated, _KeyId, "Returns the id.")

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="A long-lived token for automation, acting with your role and scope.",
    )
    async def create_admin_token(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="A label for people.")],
        expires_in_days: Annotated[
            int | None, strawberry.argument(description="Lifetime in days; null: no expiry.")
        ] = None,
    ) -> CreatedAdminToken:
        secret, row = await auth_svc.create_admin_token(
            info.context.gateway, viewer(info), name, expires_in_days
        )
        return CreatedAdminToken(admin_token=AdminTokenType.of(row), token=secret)

    revoke_admin_token = mutation(
        auth_svc.revoke_admin_token,
        AdminTokenType,
        IsAdmin,
        "Refuse one of your admin tokens from now on.",
        convert=AdminTokenType.of,
        id=_TokenId,
    )
