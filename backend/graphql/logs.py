"""Gateway logs (query + live subscription) and per-user usage."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry

from backend.admin import logs as svc
from backend.admin.access import is_admin, is_super, own_org
from backend.data.models.logs import RequestLog
from backend.data.models.tenancy import User
from backend.graphql.common import After, Connection, First, from_row, paged, related
from backend.graphql.context import Info, viewer
from backend.graphql.declare import get
from backend.graphql.enums import AgentTier, stored
from backend.graphql.log_connection import DESCRIPTION as LOG_PAGE
from backend.graphql.log_connection import LogConnection, log_connection, search_deadline
from backend.graphql.permissions import IsAuthenticated
from backend.graphql.request_detail import PriceUsedType, RefusalType, price_type, refusal_type
from backend.graphql.scalars import TokenCount, tokens
from backend.graphql.tenancy import AppType, UserType, visible_user

T = TypeVar("T")


@strawberry.type(description="What every request record has, stored or live.")
class RequestFields:
    request_id: str = strawberry.field(
        description="The request's x-request-id (shared by its fallback attempts)."
    )
    created_at: dt.datetime = strawberry.field(description="When the request arrived.")
    key_prefix: str | None = strawberry.field(
        description="Displayable start of the API key used; null: none."
    )
    user_id: int | None = strawberry.field(description="The user of a user key; null: an app key.")
    app_id: int | None = strawberry.field(description="The app of an app key; null: a user key.")
    organization_id: int | None = strawberry.field(
        description="The organization the request was made under."
    )
    endpoint: str = strawberry.field(description="The path called, e.g. /v1/chat/completions.")
    requested_model: str | None = strawberry.field(description="The model the client asked for.")
    actual_model: str | None = strawberry.field(
        description="The model that answered (after aliases, tiers, fallbacks)."
    )
    provider: str | None = strawberry.field(description="The provider that answered.")
    deployment: str | None = strawberry.field(
        description="The provider deployment (account or endpoint) that answered, or failed on "
        "an error or attempt row; null: the provider's own connection."
    )
    status: int = strawberry.field(description="HTTP status of the answer.")
    error_type: str | None = strawberry.field(description="The error's type; null: success.")
    error_code: str | None = strawberry.field(
        description=(
            "The error's code (insufficient_quota, rate_limit_exceeded, model_not_allowed, "
            "upstream_rate_limited, upstream_500...); null: none."
        )
    )
    upstream_status: int | None = strawberry.field(
        description="The HTTP status the provider answered with when it failed; null: it did not."
    )
    refusal: RefusalType | None = strawberry.field(
        description=(
            "Why the gateway itself refused (which spend cap, rate limit, allowlist...); null: "
            "it did not (a success, a provider's error, a malformed request)."
        )
    )
    input_tokens: int = strawberry.field(description="Input tokens billed.")
    output_tokens: int = strawberry.field(description="Output tokens billed.")
    cached_tokens: int = strawberry.field(
        description="Input tokens read from the provider's prompt cache."
    )
    reasoning_tokens: int = strawberry.field(
        description="Of the output tokens, those the model spent reasoning."
    )
    cost_usd: Decimal | None = strawberry.field(
        description="Cost in USD; null: the price is unknown."
    )
    latency_ms: float = strawberry.field(description="Time to the full answer, in milliseconds.")
    ttft_ms: float | None = strawberry.field(
        description="Time to the first token of a stream; null: not streamed."
    )
    streamed: bool = strawberry.field(description="The answer was streamed.")
    attempts: int = strawberry.field(description="Provider attempts made for the request.")
    cache_hit: bool = strawberry.field(
        description="Answered from the response cache (no provider call, no cost)."
    )
    agent_id: str | None = strawberry.field(
        description="The agent of an 'agent/<id>' model; null: none."
    )
    tier: AgentTier | None = strawberry.field(
        description="The agent tier asked for; null: no agent."
    )
    tags: list[str] = strawberry.field(
        description="Cost-attribution tags (metadata.tags or the x-switchboard-tags header)."
    )

    @strawberry.field(description="Input plus output tokens.")
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @strawberry.field(
        description="Who made the request; null below super_admin once they left your organization."
    )
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)


@strawberry.type(name="GatewayLog", description="One request through the gateway.")
class GatewayLogType(RequestFields):
    id: int = strawberry.field(description="The row's id.")
    error_message: str | None = strawberry.field(
        description="The error's message (no secrets); null: success."
    )
    superseded: bool = strawberry.field(description="A failed attempt a fallback replaced.")
    request_body: str | None = strawberry.field(description="As sent upstream (DLP-redacted).")
    response_body: str | None = strawberry.field(
        description="The answer as received (clipped if very large)."
    )
    price: PriceUsedType | None = strawberry.field(
        description="The rates costUsd was computed with; null: no price (unknown or no cost)."
    )

    @strawberry.field(description="The app of an app key; null: a user key.")
    async def app(self, info: Info) -> AppType | None:
        return await related(info.context.loaders.app, self.app_id, AppType.of)

    @staticmethod
    def of(r: RequestLog) -> GatewayLogType:
        return from_row(
            GatewayLogType,
            r,
            organization_id=r.org_id,
            refusal=refusal_type(r.refusal),
            price=price_type(r.price),
            tier=_tier(r.tier),
            tags=[str(t) for t in r.tags or []],
        )


@strawberry.type(description="A request as it completes (live; no bodies).")
class GatewayLogEvent(RequestFields):
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
            deployment=ev.get("deployment"),
            status=int(ev.get("status", 0)),
            error_type=ev.get("error_type"),
            error_code=ev.get("error_code"),
            upstream_status=ev.get("upstream_status"),
            refusal=refusal_type(ev.get("refusal")),
            input_tokens=int(ev.get("input_tokens") or 0),
            output_tokens=int(ev.get("output_tokens") or 0),
            cached_tokens=int(ev.get("cached_tokens") or 0),
            reasoning_tokens=int(ev.get("reasoning_tokens") or 0),
            cost_usd=cost_val,
            latency_ms=float(ev.get("latency_ms") or 0),
            ttft_ms=ev.get("ttft_ms"),
            streamed=bool(ev.get("streamed")),
            attempts=int(ev.get("attempts") or 1),
            cache_hit=bool(ev.get("cache_hit")),
            agent_id=ev.get("agent_id"),
            tier=_tier(ev.get("tier")),
            tags=[str(t) for t in ev.get("tags") or []],
        )


@strawberry.type(name="UserUsage", description="A user's requests, tokens and cost in a window.")
class UserUsageType:
    user_id: int = strawberry.field(description="The user.")
    requests: int = strawberry.field(description="Requests made.")
    errors: int = strawberry.field(description="Requests that failed.")
    input_tokens: TokenCount = strawberry.field(description="Input tokens billed.")
    output_tokens: TokenCount = strawberry.field(description="Output tokens billed.")
    cached_tokens: TokenCount = strawberry.field(
        description="Input tokens read from prompt caches."
    )
    cost_usd: Decimal = strawberry.field(description="Cost in USD (known prices).")
    unknown_cost_requests: int = strawberry.field(
        description="Requests whose cost is unknown (no price): not in costUsd as $0."
    )

    @strawberry.field(
        description="The user; null below super_admin once they have left your organization."
    )
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)

    @strawberry.field(description="GET this with a Bearer token for the user's activity CSV.")
    def export_url(self) -> str:
        return f"/admin/users/{self.user_id}/activity.csv"

    @staticmethod
    def of(u: svc.UserUsage) -> UserUsageType:
        return from_row(
            UserUsageType,
            u,
            input_tokens=tokens(u.input_tokens),
            output_tokens=tokens(u.output_tokens),
            cached_tokens=tokens(u.cached_tokens),
        )


@strawberry.enum(description="Order of a gateway log list.")
class LogSort(Enum):
    NEWEST = strawberry.enum_value("NEWEST", description="Newest first.")
    OLDEST = strawberry.enum_value("OLDEST", description="Oldest first.")


@strawberry.enum(description="Order of a usage list.")
class UsageSort(Enum):
    COST_DESC = strawberry.enum_value("COST_DESC", description="Highest cost first.")
    REQUESTS_DESC = strawberry.enum_value("REQUESTS_DESC", description="Most requests first.")
    TOKENS_DESC = strawberry.enum_value("TOKENS_DESC", description="Most tokens first.")
    USER_ASC = strawberry.enum_value("USER_ASC", description="By user id.")


def _tier(value: object) -> AgentTier | None:
    return None if value is None else AgentTier(value)


_ONLY_USER = "Only this user's requests."
_ONLY_ORG = "Only requests made under this organization."
_ONLY_MODEL = "Requested or actual model."
_ONLY_STATUS = "Only this HTTP status."
_ERRORS_ONLY = "Only failed requests (status 400 or more)."


@strawberry.enum(description="A door of the gateway, as the logs name the requests through it.")
class GatewayEndpoint(Enum):
    CHAT_COMPLETIONS = strawberry.enum_value(
        "chat_completions", description="OpenAI chat completions: POST /v1/chat/completions."
    )
    MESSAGES = strawberry.enum_value(
        "messages", description="Anthropic messages: POST /v1/messages."
    )
    COUNT_TOKENS = strawberry.enum_value(
        "count_tokens", description="Anthropic token counting: POST /v1/messages/count_tokens."
    )
    RESPONSES = strawberry.enum_value(
        "responses", description="OpenAI Responses API: POST /v1/responses."
    )
    STORED_RESPONSES = strawberry.enum_value(
        "stored_responses",
        description="Stored responses: GET/DELETE /v1/responses/{id}, GET .../input_items.",
    )
    GEMINI = strawberry.enum_value(
        "gemini", description="Gemini's native API: /v1beta/models/{model}:generateContent..."
    )
    EMBEDDINGS = strawberry.enum_value("embeddings", description="Embeddings: POST /v1/embeddings.")
    MODELS = strawberry.enum_value(
        "models", description="Model lists: GET /v1/models, /v1beta/models."
    )


@strawberry.input(description="Which requests to list (all given conditions apply).")
class GatewayLogFilter:
    endpoint: GatewayEndpoint | None = strawberry.field(
        default=None, description="Only requests through this door."
    )
    user_id: int | None = strawberry.field(default=None, description=_ONLY_USER)
    organization_id: int | None = strawberry.field(default=None, description=_ONLY_ORG)
    app_id: int | None = strawberry.field(default=None, description="Only this app's requests.")
    model: str | None = strawberry.field(default=None, description=_ONLY_MODEL)
    provider: str | None = strawberry.field(default=None, description="Only this provider.")
    status: int | None = strawberry.field(default=None, description=_ONLY_STATUS)
    errors_only: bool = strawberry.field(default=False, description=_ERRORS_ONLY)
    key_prefix: str | None = strawberry.field(default=None, description="Only this API key.")
    since: dt.datetime | None = strawberry.field(default=None, description="From this time on.")
    until: dt.datetime | None = strawberry.field(default=None, description="Before this time.")
    include_superseded: bool = strawberry.field(
        default=False, description="Also list failed attempts that a fallback replaced."
    )
    request_id: str | None = strawberry.field(
        default=None,
        description="Only this request's rows (with includeSuperseded: its fallback attempts).",
    )
    search: str | None = strawberry.field(
        default=None,
        description=(
            "Free text: a request id or key prefix the row's starts with, or part of the "
            "requested or actual model's name."
        ),
    )


def log_filter(f: GatewayLogFilter | None) -> svc.LogFilter:
    """The service filter of a GraphQL one (shared by the list and its count)."""
    f = f or GatewayLogFilter()
    return svc.LogFilter(
        endpoints=None if f.endpoint is None else svc.ENDPOINTS[stored(f.endpoint)],
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
        request_id=f.request_id,
        search=f.search,
    )


@strawberry.type(description="How many requests match a filter, counted up to a bound.")
class LogCount:
    count: int = strawberry.field(
        description="Matching rows; when exact is false, at least this many."
    )
    exact: bool = strawberry.field(
        description=(
            "False when count is a lower bound: more rows match than upTo, or (countedSince "
            "set) a rare filter could not be counted over its whole window in time."
        )
    )
    counted_since: dt.datetime | None = strawberry.field(
        description=(
            "Set when the count stopped early: count is exact for the rows made since this "
            "time (show 'N since <time>'); null: the whole window was counted."
        )
    )


def _window(
    info: Info, since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    now = info.context.gateway.clock()
    end = until or now + dt.timedelta(hours=1)
    start = since or (now - dt.timedelta(days=30))
    return start, end


@strawberry.type(name="GatewayLogConnection", description=LOG_PAGE)
class GatewayLogConnection(LogConnection[GatewayLogType]):
    pass


@strawberry.type
class LogsQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Requests through the gateway, newest first (members: their own).",
    )
    async def gateway_logs(
        self,
        info: Info,
        filter: Annotated[
            GatewayLogFilter | None, strawberry.argument(description="Which requests; null: all.")
        ] = None,
        sort: Annotated[LogSort, strawberry.argument(description="Order.")] = LogSort.NEWEST,
        first: First = None,
        after: After = None,
    ) -> GatewayLogConnection:
        me, filters, deadline = viewer(info), log_filter(filter), search_deadline(info)
        page = await svc.list_logs(
            me, filters, sort=stored(sort), first=first, after=after, deadline=deadline
        )
        return log_connection(
            GatewayLogConnection,
            page,
            GatewayLogType.of,
            lambda: svc.count_logs(
                me, filters, limit=svc.TOTAL_COUNT_LIMIT, deadline=search_deadline(info)
            ),
        )

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description=(
            "How many requests gatewayLogs lists for the same filter (members: their own), "
            "counted up to upTo so it stays fast on a large log."
        ),
    )
    async def gateway_log_count(
        self,
        info: Info,
        filter: Annotated[
            GatewayLogFilter | None, strawberry.argument(description="Which requests; null: all.")
        ] = None,
        up_to: Annotated[
            int,
            strawberry.argument(
                description=f"Count at most this many, 1 to {svc.MAX_COUNT_LIMIT:,}."
            ),
        ] = svc.DEFAULT_COUNT_LIMIT,
    ) -> LogCount:
        counted = await svc.count_logs(
            viewer(info), log_filter(filter), limit=up_to, deadline=search_deadline(info)
        )
        return LogCount(count=counted.count, exact=counted.exact, counted_since=counted.since)

    gateway_log = get(
        svc.get_log,
        GatewayLogType,
        IsAuthenticated,
        "One request, with its bodies (members: their own).",
        Annotated[int, strawberry.argument(description="The row's id.")],
    )

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
        since: Annotated[
            dt.datetime | None, strawberry.argument(description="Start; null: 30 days ago.")
        ] = None,
        until: Annotated[
            dt.datetime | None, strawberry.argument(description="End; null: now.")
        ] = None,
        user_id: Annotated[int | None, strawberry.argument(description="Only this user.")] = None,
        organization_id: Annotated[int | None, strawberry.argument(description=_ONLY_ORG)] = None,
        sort: Annotated[UsageSort, strawberry.argument(description="Order.")] = (
            UsageSort.COST_DESC
        ),
        first: First = None,
        after: After = None,
    ) -> Connection[UserUsageType]:
        start, end = _window(info, since, until)
        return await paged(
            info,
            svc.usage_page,
            UserUsageType.of,
            since=start,
            until=end,
            user_id=user_id,
            organization_id=organization_id,
            sort=stored(sort),
            first=first,
            after=after,
            now=info.context.gateway.clock(),
        )


def can_see(me: User, ev: dict[str, Any]) -> bool:
    """Role filter for live events: the same rule as the log query (``svc.log_scope``)."""
    if is_super(me):
        return True
    if is_admin(me):
        org = own_org(me)
        return org is not None and ev.get("org_id") == org
    return ev.get("user_id") == me.id and ev.get("org_id") == own_org(me)


async def live_events(
    info: Info,
    channel: str,
    wanted: Callable[[dict[str, Any]], bool],
    convert: Callable[[dict[str, Any]], T],
) -> AsyncGenerator[T, None]:
    """The body every live subscription shares: the events of a bus ``channel`` the viewer may
    see (``can_see``: the query's rule, on the event's org_id) and the subscriber asked for
    (``wanted``), converted; a malformed event is skipped and must not end the subscription.
    Iterate it under ``contextlib.aclosing``, so the bus subscription ends with the client's."""
    me = viewer(info)
    async with info.context.gateway.bus.subscribe(channel) as events:
        async for ev in events:
            if not can_see(me, ev) or not wanted(ev):
                continue
            try:
                out = convert(ev)
            except (KeyError, TypeError, ValueError):
                continue
            yield out


@strawberry.type
class LogsSubscription:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="Each request as it completes, on every gateway instance.",
    )
    async def gateway_logs(
        self,
        info: Info,
        user_id: Annotated[int | None, strawberry.argument(description=_ONLY_USER)] = None,
        organization_id: Annotated[int | None, strawberry.argument(description=_ONLY_ORG)] = None,
        model: Annotated[str | None, strawberry.argument(description=_ONLY_MODEL)] = None,
        status: Annotated[int | None, strawberry.argument(description=_ONLY_STATUS)] = None,
        errors_only: Annotated[bool, strawberry.argument(description=_ERRORS_ONLY)] = False,
    ) -> AsyncGenerator[GatewayLogEvent, None]:

        def wanted(ev: dict[str, Any]) -> bool:
            if user_id is not None and ev.get("user_id") != user_id:
                return False
            if organization_id is not None and ev.get("org_id") != organization_id:
                return False
            if model and model not in (ev.get("requested_model"), ev.get("actual_model")):
                return False
            if status is not None and ev.get("status") != status:
                return False
            return not (errors_only and int(ev.get("status") or 0) < 400)

        async with aclosing(live_events(info, "logs", wanted, GatewayLogEvent.of)) as events:
            async for out in events:
                yield out
