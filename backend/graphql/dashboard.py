"""The home dashboard: live traffic, cost trends, provider load, top spenders (rollups only)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from backend.admin import dashboard as svc
from backend.admin.errors import InvalidInput
from backend.graphql.common import from_row
from backend.graphql.context import Info, viewer
from backend.graphql.enums import ProviderHealth, RoutingStrategy
from backend.graphql.permissions import IsAdmin
from backend.graphql.scalars import TokenCount, tokens
from backend.graphql.tenancy import UserType, visible_user

_REQUESTS = "Requests made."
_ERRORS = "Requests that failed."
_TOKENS = "Input plus output tokens."
_COST = "Cost in USD of the requests with a known price."
_UNKNOWN = (
    "Requests whose cost is unknown (a model without a price): not counted in costUsd as $0; "
    "show the cost as unknown where this is above 0."
)
_P50 = "Median latency in ms (upper bound of its histogram bucket); null: no requests."
_P95 = "95th percentile latency in ms (upper bound of its bucket); null: no requests."


@strawberry.type(description="One minute of traffic.")
class LiveMinute:
    minute: dt.datetime = strawberry.field(description="The minute's start (UTC).")
    requests: int = strawberry.field(description=_REQUESTS)
    errors: int = strawberry.field(description=_ERRORS)
    tokens: TokenCount = strawberry.field(description=_TOKENS)
    cost_usd: Decimal = strawberry.field(description=_COST)
    p50_ms: float | None = strawberry.field(description=_P50)
    p95_ms: float | None = strawberry.field(description=_P95)
    unknown_cost_requests: int = strawberry.field(description=_UNKNOWN)


@strawberry.type(description="Traffic of the last minutes, per minute and in total.")
class LiveTraffic:
    minutes: list[LiveMinute] = strawberry.field(description="Oldest first, one per minute.")
    requests: int = strawberry.field(description=_REQUESTS)
    errors: int = strawberry.field(description=_ERRORS)
    tokens: TokenCount = strawberry.field(description=_TOKENS)
    cost_usd: Decimal = strawberry.field(description=_COST)
    p50_ms: float | None = strawberry.field(description=_P50)
    p95_ms: float | None = strawberry.field(description=_P95)
    unknown_cost_requests: int = strawberry.field(description=_UNKNOWN)


@strawberry.type(name="ModelCost", description="A day's requests and cost of a model or provider.")
class ModelCostType:
    model: str = strawberry.field(description="The model ('' in a per-provider line).")
    provider: str = strawberry.field(description="The provider.")
    cost_usd: Decimal = strawberry.field(description=_COST)
    requests: int = strawberry.field(description=_REQUESTS)
    input_tokens: TokenCount = strawberry.field(description="Input tokens billed.")
    output_tokens: TokenCount = strawberry.field(description="Output tokens billed.")
    unknown_cost_requests: int = strawberry.field(description=_UNKNOWN)


@strawberry.type(name="DayCost", description="One UTC day's requests and cost.")
class DayCostType:
    day: dt.date = strawberry.field(description="The UTC day.")
    cost_usd: Decimal = strawberry.field(description=_COST)
    requests: int = strawberry.field(description=_REQUESTS)
    input_tokens: TokenCount = strawberry.field(description="Input tokens billed.")
    output_tokens: TokenCount = strawberry.field(description="Output tokens billed.")
    unknown_cost_requests: int = strawberry.field(description=_UNKNOWN)
    by_model: list[ModelCostType] = strawberry.field(description="Per model.")
    by_provider: list[ModelCostType] = strawberry.field(description="Per provider.")


@strawberry.type(name="ProviderLoad", description="A provider's load and health.")
class ProviderLoadType:
    provider: str = strawberry.field(description="The provider.")
    requests: int = strawberry.field(description=_REQUESTS)
    share: float = strawberry.field(description="Fraction of all requests (0..1).")
    errors: int = strawberry.field(description=_ERRORS)
    error_rate: float = strawberry.field(description="errors / requests (0..1).")
    avg_latency_ms: float | None = strawberry.field(
        description="Mean latency in ms; null: no requests."
    )
    cost_usd: Decimal = strawberry.field(description=_COST)
    health: ProviderHealth | None = strawberry.field(
        description=(
            "The worse of the window's error rate (5% or more: DEGRADED, 50% or more: DOWN) and "
            "its circuit breakers' state, so it never reads HEALTHY next to failing requests."
        )
    )
    unknown_cost_requests: int = strawberry.field(description=_UNKNOWN)


@strawberry.type(description="A user and their spend.")
class TopSpender:
    user_id: int = strawberry.field(description="The user.")
    cost_usd: Decimal = strawberry.field(description=_COST)
    requests: int = strawberry.field(description=_REQUESTS)
    tokens: TokenCount = strawberry.field(description=_TOKENS)
    unknown_cost_requests: int = strawberry.field(description=_UNKNOWN)

    @strawberry.field(
        description="The user; null below super_admin once they have left your organization."
    )
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)


def _mc(m: svc.ModelCost) -> ModelCostType:
    return from_row(
        ModelCostType, m, input_tokens=tokens(m.input_tokens), output_tokens=tokens(m.output_tokens)
    )


def _bounded(value: int, name: str, hi: int) -> int:
    if not 1 <= value <= hi:
        raise InvalidInput(f"{name} must be from 1 to {hi}", field=name)
    return value


def _days(what: str) -> Any:
    return strawberry.argument(description=f"{what}, 1 to 90.")


@strawberry.type(description="Home dashboard numbers, from rollups.")
class Dashboard:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description=(
            "Per-minute traffic of the last `minutes` minutes (org_admins: requests made under "
            "their organization)."
        ),
    )
    async def live(
        self,
        info: Info,
        minutes: Annotated[int, strawberry.argument(description="Minutes, 1 to 1440.")] = 60,
    ) -> LiveTraffic:
        res = await svc.live(info.context.gateway, viewer(info), _bounded(minutes, "minutes", 1440))
        return from_row(
            LiveTraffic,
            res,
            minutes=[from_row(LiveMinute, p, tokens=tokens(p.tokens)) for p in res.points],
            tokens=tokens(res.tokens),
        )

    @strawberry.field(description="Cost per UTC day, by model and provider (today included).")
    async def cost_trends(
        self, info: Info, days: Annotated[int, _days("Days (today included)")] = 7
    ) -> list[DayCostType]:
        rows = await svc.cost_trends(info.context.gateway, viewer(info), _bounded(days, "days", 90))
        return [
            from_row(
                DayCostType,
                d,
                input_tokens=tokens(d.input_tokens),
                output_tokens=tokens(d.output_tokens),
                by_model=[_mc(m) for m in d.by_model],
                by_provider=[_mc(m) for m in d.by_provider],
            )
            for d in rows
        ]

    @strawberry.field(description="Load and health per provider over the last `hours` hours.")
    async def provider_load(
        self,
        info: Info,
        hours: Annotated[int, strawberry.argument(description="Hours, 1 to 2160 (90 days).")] = 24,
    ) -> list[ProviderLoadType]:
        rows = await svc.provider_load(
            info.context.gateway, viewer(info), _bounded(hours, "hours", 24 * 90)
        )
        return [
            from_row(
                ProviderLoadType,
                p,
                health=None if p.health is None else ProviderHealth(p.health),
            )
            for p in rows
        ]

    @strawberry.field(description="Users by spend over the last `days` days.")
    async def top_spenders(
        self,
        info: Info,
        days: Annotated[int, _days("Days")] = 7,
        limit: Annotated[int, strawberry.argument(description="Users, 1 to 100.")] = 10,
    ) -> list[TopSpender]:
        rows = await svc.top_spenders(
            info.context.gateway,
            viewer(info),
            _bounded(days, "days", 90),
            _bounded(limit, "limit", 100),
        )
        return [from_row(TopSpender, s, tokens=tokens(s.tokens)) for s in rows]

    @strawberry.field(description="The routing strategy in force.")
    def routing_strategy(self, info: Info) -> RoutingStrategy:
        return RoutingStrategy(info.context.gateway.store.settings.routing_strategy)


@strawberry.type
class DashboardQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Home dashboard numbers (org_admins: their organization).",
    )
    def dashboard(self) -> Dashboard:
        return Dashboard()
