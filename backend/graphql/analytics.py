"""Analytics: spend, requests, errors and latency grouped by a dimension over a date range
(``backend.admin.analytics``, read from the hourly rollups, never from request logs)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry

from backend.admin import analytics as svc
from backend.graphql.context import Info, viewer
from backend.graphql.enums import stored
from backend.graphql.permissions import IsAuthenticated
from backend.graphql.scalars import TokenCount, tokens

_UNKNOWN = (
    "Requests whose cost is unknown (a model without a price): not counted in costUsd as $0; "
    "show the cost as unknown where this is above 0."
)
_PCT = (
    "{}th percentile latency in ms (upper bound of its histogram bucket); null: no requests, "
    "or a dimension other than MODEL and PROVIDER."
)


@strawberry.enum(description="What analytics groups requests by.")
class AnalyticsDimension(Enum):
    MODEL = strawberry.enum_value("model", description="The model that answered.")
    PROVIDER = strawberry.enum_value("provider", description="The provider that answered.")
    USER = strawberry.enum_value("user", description="The key's user (0: app keys).")
    APP = strawberry.enum_value("app", description="The key's app (0: user keys).")
    KEY = strawberry.enum_value("key", description="The API key, by its prefix.")
    ORGANIZATION = strawberry.enum_value(
        "org", description="The organization the request was made under."
    )
    TAG = strawberry.enum_value(
        "tag", description="Cost-attribution tag (a request with n tags counts n times)."
    )


@strawberry.enum(
    description=(
        "The order of analytics groups: a column, highest (DESC) or lowest (ASC) first; groups "
        "without a value (P50/P95 outside MODEL and PROVIDER) last; ties: most requests, then key."
    )
)
class AnalyticsSort(Enum):
    COST_DESC = strawberry.enum_value("cost_desc", description="By cost, highest first.")
    COST_ASC = strawberry.enum_value("cost_asc", description="By cost, lowest first.")
    REQUESTS_DESC = strawberry.enum_value(
        "requests_desc", description="By requests, highest first."
    )
    REQUESTS_ASC = strawberry.enum_value("requests_asc", description="By requests, lowest first.")
    ERRORS_DESC = strawberry.enum_value(
        "errors_desc", description="By failed requests, highest first."
    )
    ERRORS_ASC = strawberry.enum_value(
        "errors_asc", description="By failed requests, lowest first."
    )
    ERROR_RATE_DESC = strawberry.enum_value(
        "error_rate_desc", description="By error rate, highest first."
    )
    ERROR_RATE_ASC = strawberry.enum_value(
        "error_rate_asc", description="By error rate, lowest first."
    )
    INPUT_TOKENS_DESC = strawberry.enum_value(
        "input_tokens_desc", description="By input tokens, highest first."
    )
    INPUT_TOKENS_ASC = strawberry.enum_value(
        "input_tokens_asc", description="By input tokens, lowest first."
    )
    OUTPUT_TOKENS_DESC = strawberry.enum_value(
        "output_tokens_desc", description="By output tokens, highest first."
    )
    OUTPUT_TOKENS_ASC = strawberry.enum_value(
        "output_tokens_asc", description="By output tokens, lowest first."
    )
    P50_DESC = strawberry.enum_value("p50_desc", description="By median latency, highest first.")
    P50_ASC = strawberry.enum_value("p50_asc", description="By median latency, lowest first.")
    P95_DESC = strawberry.enum_value(
        "p95_desc", description="By 95th percentile latency, highest first."
    )
    P95_ASC = strawberry.enum_value(
        "p95_asc", description="By 95th percentile latency, lowest first."
    )
    LABEL_ASC = strawberry.enum_value("label_asc", description="By label, A to Z.")
    LABEL_DESC = strawberry.enum_value("label_desc", description="By label, Z to A.")


@strawberry.type(description="Totals of a group, of a point in time, or of the whole window.")
class AnalyticsTotals:
    requests: int = strawberry.field(description="Requests made.")
    errors: int = strawberry.field(description="Requests that failed (status 400 or above).")
    error_rate: float = strawberry.field(description="errors / requests (0..1).")
    input_tokens: TokenCount = strawberry.field(description="Input tokens.")
    output_tokens: TokenCount = strawberry.field(description="Output tokens.")
    cached_tokens: TokenCount = strawberry.field(description="Cached input tokens (0 for tags).")
    cost_usd: Decimal = strawberry.field(description="Cost in USD of the requests with a price.")
    unknown_cost_requests: int = strawberry.field(description=_UNKNOWN)
    avg_latency_ms: float | None = strawberry.field(
        description="Mean latency in ms; null: no requests, or the TAG dimension."
    )
    p50_ms: float | None = strawberry.field(description=_PCT.format(50))
    p95_ms: float | None = strawberry.field(description=_PCT.format(95))

    @staticmethod
    def of(t: svc.Totals, *, percentiles: bool, latency: bool = True) -> AnalyticsTotals:
        return AnalyticsTotals(
            requests=t.requests,
            errors=t.errors,
            error_rate=t.error_rate,
            input_tokens=tokens(t.input_tokens),
            output_tokens=tokens(t.output_tokens),
            cached_tokens=tokens(t.cached_tokens),
            cost_usd=t.cost_usd,
            unknown_cost_requests=t.unknown_cost_requests,
            avg_latency_ms=t.avg_latency_ms if latency else None,
            p50_ms=t.percentile(0.5) if percentiles else None,
            p95_ms=t.percentile(0.95) if percentiles else None,
        )


@strawberry.type(description="One group: a model, provider, user, app, key, organization or tag.")
class AnalyticsGroup:
    key: str = strawberry.field(
        description="The model, provider or tag; the user, app or organization id; the key prefix."
    )
    label: str = strawberry.field(
        description=(
            "What to call it: 'name <email>' of a user you may see, an app's or organization's "
            "name, a key's name and owner; else the id."
        )
    )
    entity_id: int | None = strawberry.field(
        description="The user, app or organization id (USER, APP, ORGANIZATION); else null."
    )
    totals: AnalyticsTotals = strawberry.field(description="Its totals over the window.")


@strawberry.type(description="The window's totals in one hour or UTC day.")
class AnalyticsPoint:
    bucket: dt.datetime = strawberry.field(description="Start of the hour or day (UTC).")
    requests: int = strawberry.field(description="Requests made.")
    errors: int = strawberry.field(description="Requests that failed.")
    cost_usd: Decimal = strawberry.field(description="Cost in USD of the requests with a price.")
    unknown_cost_requests: int = strawberry.field(description=_UNKNOWN)


@strawberry.type(description="Requests grouped by one dimension over [since, until).")
class Analytics:
    dimension: AnalyticsDimension = strawberry.field(description="What the groups are.")
    since: dt.datetime = strawberry.field(description="Window start (to the hour, UTC).")
    until: dt.datetime = strawberry.field(description="Window end, exclusive (to the hour).")
    granularity: str = strawberry.field(
        description="'hour' (windows up to 48 hours) or 'day': the step of `series`."
    )
    groups: list[AnalyticsGroup] = strawberry.field(
        description=(
            "In the order `sort` (default highest cost first; ties: most requests, then key), "
            "at most `limit`, after the first `offset`."
        )
    )
    group_count: int = strawberry.field(
        description="Groups in the window, over the limit and the offset too."
    )
    total: AnalyticsTotals = strawberry.field(
        description="Every group summed (TAG: a request with n tags counts n times)."
    )
    series: list[AnalyticsPoint] = strawberry.field(
        description="Totals per hour or day of the window, oldest first, gaps as zero."
    )


@strawberry.input(description="Which requests to count (all given conditions apply).")
class AnalyticsFilter:
    organization_id: int | None = strawberry.field(
        default=None, description="Only requests made under this organization."
    )
    user_id: int | None = strawberry.field(default=None, description="Only this user's.")
    app_id: int | None = strawberry.field(default=None, description="Only this app's.")
    model: str | None = strawberry.field(
        default=None, description="Only this model (not with KEY or TAG)."
    )
    provider: str | None = strawberry.field(
        default=None, description="Only this provider (not with KEY or TAG)."
    )


def analytics_of(b: svc.Breakdown) -> Analytics:
    latency = b.dimension != "tag"
    return Analytics(
        dimension=AnalyticsDimension(b.dimension),
        since=b.since,
        until=b.until,
        granularity=b.granularity,
        groups=[
            AnalyticsGroup(
                key=g.key,
                label=g.label,
                entity_id=g.entity_id,
                totals=AnalyticsTotals.of(g.totals, percentiles=b.percentiles, latency=latency),
            )
            for g in b.groups
        ],
        group_count=b.group_count,
        total=AnalyticsTotals.of(b.total, percentiles=b.percentiles, latency=latency),
        series=[
            AnalyticsPoint(
                bucket=p.bucket,
                requests=p.totals.requests,
                errors=p.totals.errors,
                cost_usd=p.totals.cost_usd,
                unknown_cost_requests=p.totals.unknown_cost_requests,
            )
            for p in b.series
        ],
    )


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description=(
            "Requests, tokens, spend, error rate and latency grouped by `dimension` over "
            "[since, until) (to the hour, at most 366 days), from hourly rollups. org_admins: "
            "requests made under their organization; members: their own made under their "
            "current organization."
        ),
    )
    async def analytics(
        self,
        info: Info,
        dimension: Annotated[
            AnalyticsDimension, strawberry.argument(description="What to group by.")
        ],
        since: Annotated[dt.datetime, strawberry.argument(description="Window start.")],
        until: Annotated[dt.datetime, strawberry.argument(description="Window end (exclusive).")],
        filter: Annotated[
            AnalyticsFilter | None, strawberry.argument(description="Which requests; null: all.")
        ] = None,
        limit: Annotated[
            int, strawberry.argument(description=f"Groups returned, 1 to {svc.MAX_GROUPS}.")
        ] = 100,
        offset: Annotated[
            int,
            strawberry.argument(description="Groups of the order skipped first (a later page)."),
        ] = 0,
        sort: Annotated[
            AnalyticsSort, strawberry.argument(description="The groups' order (pages follow it).")
        ] = AnalyticsSort.COST_DESC,
    ) -> Analytics:
        f = filter or AnalyticsFilter()
        result = await svc.breakdown(
            viewer(info),
            stored(dimension),
            since=since,
            until=until,
            filters=svc.Filters(
                organization_id=f.organization_id,
                user_id=f.user_id,
                app_id=f.app_id,
                model=f.model,
                provider=f.provider,
            ),
            limit=limit,
            offset=offset,
            sort=stored(sort),
            now=info.context.gateway.clock(),
        )
        return analytics_of(result)
