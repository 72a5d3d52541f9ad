"""Gateway logs (query + live subscription) and per-user usage."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import strawberry

from backend.admin import logs as svc
from backend.admin.access import is_admin, is_super, own_org
from backend.data.models.logs import RequestLog
from backend.data.models.tenancy import User
from backend.graphql.common import Connection, connection
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAuthenticated
from backend.graphql.tenancy import AppType, UserType, visible_user


@strawberry.type(name="GatewayLog")
class GatewayLogType:
    id: int
    request_id: str
    created_at: dt.datetime
    key_prefix: str | None
    user_id: int | None
    app_id: int | None
    organization_id: int | None
    endpoint: str
    requested_model: str | None
    actual_model: str | None
    provider: str | None
    status: int
    error_type: str | None
    error_message: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: Decimal | None = strawberry.field(description="null: the price is unknown.")
    latency_ms: float
    ttft_ms: float | None
    streamed: bool
    attempts: int
    superseded: bool = strawberry.field(description="A failed attempt a fallback replaced.")
    cache_hit: bool
    agent_id: str | None
    tier: str | None
    request_body: str | None = strawberry.field(description="As sent upstream (DLP-redacted).")
    response_body: str | None

    @strawberry.field
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @strawberry.field(
        description=(
            "Who made the request; null below super_admin once they have left your organization."
        )
    )
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)

    @strawberry.field
    async def app(self, info: Info) -> AppType | None:
        if self.app_id is None:
            return None
        app = await info.context.loaders.app.load(self.app_id)
        return AppType.of(app) if app else None

    @staticmethod
    def of(r: RequestLog) -> GatewayLogType:
        return GatewayLogType(
            id=r.id,
            request_id=r.request_id,
            created_at=r.created_at,
            key_prefix=r.key_prefix,
            user_id=r.user_id,
            app_id=r.app_id,
            organization_id=r.org_id,
            endpoint=r.endpoint,
            requested_model=r.requested_model,
            actual_model=r.actual_model,
            provider=r.provider,
            status=r.status,
            error_type=r.error_type,
            error_message=r.error_message,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cached_tokens=r.cached_tokens,
            cost_usd=r.cost_usd,
            latency_ms=r.latency_ms,
            ttft_ms=r.ttft_ms,
            streamed=r.streamed,
            attempts=r.attempts,
            superseded=r.superseded,
            cache_hit=r.cache_hit,
            agent_id=r.agent_id,
            tier=r.tier,
            request_body=r.request_body,
            response_body=r.response_body,
        )


@strawberry.type
class GatewayLogEvent:
    """A request as it completes (live; no bodies)."""

    request_id: str
    created_at: dt.datetime
    key_prefix: str | None
    user_id: int | None
    app_id: int | None
    organization_id: int | None
    endpoint: str
    requested_model: str | None
    actual_model: str | None
    provider: str | None
    status: int
    error_type: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: Decimal | None
    latency_ms: float
    ttft_ms: float | None
    streamed: bool
    attempts: int
    cache_hit: bool
    agent_id: str | None
    tier: str | None

    @strawberry.field
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @strawberry.field
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)

    @staticmethod
    def of(ev: dict[str, Any]) -> GatewayLogEvent:
        cost = ev.get("cost_usd")
        try:
            cost_val = None if cost is None else Decimal(str(cost))
        except InvalidOperation:
            cost_val = None
        return GatewayLogEvent(
            request_id=str(ev.get("request_id", "")),
            created_at=dt.datetime.fromisoformat(ev["created_at"]),
            key_prefix=ev.get("key_prefix"),
            user_id=ev.get("user_id"),
            app_id=ev.get("app_id"),
            organization_id=ev.get("org_id"),
            endpoint=str(ev.get("endpoint", "")),
            requested_model=ev.get("requested_model"),
            actual_model=ev.get("actual_model"),
            provider=ev.get("provider"),
            status=int(ev.get("status", 0)),
            error_type=ev.get("error_type"),
            input_tokens=int(ev.get("input_tokens") or 0),
            output_tokens=int(ev.get("output_tokens") or 0),
            cached_tokens=int(ev.get("cached_tokens") or 0),
            cost_usd=cost_val,
            latency_ms=float(ev.get("latency_ms") or 0),
            ttft_ms=ev.get("ttft_ms"),
            streamed=bool(ev.get("streamed")),
            attempts=int(ev.get("attempts") or 1),
            cache_hit=bool(ev.get("cache_hit")),
            agent_id=ev.get("agent_id"),
            tier=ev.get("tier"),
        )


@strawberry.type(name="UserUsage")
class UserUsageType:
    user_id: int
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: Decimal

    @strawberry.field
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)

    @strawberry.field(description="GET this with a Bearer token for the user's activity CSV.")
    def export_url(self) -> str:
        return f"/admin/users/{self.user_id}/activity.csv"

    @staticmethod
    def of(u: svc.UserUsage) -> UserUsageType:
        return UserUsageType(
            user_id=u.user_id,
            requests=u.requests,
            errors=u.errors,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cached_tokens=u.cached_tokens,
            cost_usd=u.cost_usd,
        )


@strawberry.enum
class LogSort(Enum):
    NEWEST = "NEWEST"
    OLDEST = "OLDEST"


@strawberry.enum
class UsageSort(Enum):
    COST_DESC = "COST_DESC"
    REQUESTS_DESC = "REQUESTS_DESC"
    TOKENS_DESC = "TOKENS_DESC"
    USER_ASC = "USER_ASC"


@strawberry.input
class GatewayLogFilter:
    user_id: int | None = None
    organization_id: int | None = None
    app_id: int | None = None
    model: str | None = strawberry.field(default=None, description="Requested or actual model.")
    provider: str | None = None
    status: int | None = None
    errors_only: bool = False
    key_prefix: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    include_superseded: bool = strawberry.field(
        default=False, description="Also list failed attempts that a fallback replaced."
    )


def _window(
    info: Info, since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    now = info.context.gateway.clock()
    end = until or now + dt.timedelta(hours=1)
    start = since or (now - dt.timedelta(days=30))
    return start, end


@strawberry.type
class LogsQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Requests through the gateway, newest first (members: their own).",
    )
    async def gateway_logs(
        self,
        info: Info,
        filter: GatewayLogFilter | None = None,
        sort: LogSort = LogSort.NEWEST,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[GatewayLogType]:
        f = filter or GatewayLogFilter()
        page = await svc.list_logs(
            viewer(info),
            svc.LogFilter(
                user_id=f.user_id,
                org_id=f.organization_id,
                app_id=f.app_id,
                model=f.model,
                provider=f.provider,
                status=f.status,
                errors_only=f.errors_only,
                key_prefix=f.key_prefix,
                since=f.since,
                until=f.until,
                include_superseded=f.include_superseded,
            ),
            sort=sort.value,
            first=first,
            after=after,
        )
        return connection(page, GatewayLogType.of)

    @strawberry.field(permission_classes=[IsAuthenticated])
    async def gateway_log(self, info: Info, id: int) -> GatewayLogType:
        return GatewayLogType.of(await svc.get_log(viewer(info), id))

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description=(
            "Requests, tokens and cost per user over [since, until) (default: last 30 days), "
            "from hourly rollups. Members see their own row."
        ),
    )
    async def user_usage(
        self,
        info: Info,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        user_id: int | None = None,
        organization_id: int | None = None,
        sort: UsageSort = UsageSort.COST_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[UserUsageType]:
        start, end = _window(info, since, until)
        page = await svc.usage_page(
            viewer(info),
            since=start,
            until=end,
            user_id=user_id,
            organization_id=organization_id,
            sort=sort.value,
            first=first,
            after=after,
        )
        return connection(page, UserUsageType.of)


def can_see(me: User, ev: dict[str, Any]) -> bool:
    """Role filter for live events: the same rule as the log query (``svc.log_scope``)."""
    if is_super(me):
        return True
    if is_admin(me):
        org = own_org(me)
        return org is not None and ev.get("org_id") == org
    return ev.get("user_id") == me.id and ev.get("org_id") == own_org(me)


@strawberry.type
class LogsSubscription:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="Each request as it completes, on every gateway instance.",
    )
    async def gateway_logs(
        self,
        info: Info,
        user_id: int | None = None,
        organization_id: int | None = None,
        model: str | None = None,
        status: int | None = None,
        errors_only: bool = False,
    ) -> AsyncGenerator[GatewayLogEvent, None]:
        me = viewer(info)
        async with info.context.gateway.bus.subscribe("logs") as events:
            async for ev in events:
                if not can_see(me, ev):
                    continue
                if user_id is not None and ev.get("user_id") != user_id:
                    continue
                if organization_id is not None and ev.get("org_id") != organization_id:
                    continue
                if model and model not in (ev.get("requested_model"), ev.get("actual_model")):
                    continue
                if status is not None and ev.get("status") != status:
                    continue
                if errors_only and int(ev.get("status") or 0) < 400:
                    continue
                try:
                    out = GatewayLogEvent.of(ev)
                except (KeyError, TypeError, ValueError):
                    continue  # a malformed event must not end the subscription
                yield out
