"""The home dashboard: live traffic, cost trends, provider load, top spenders (rollups only)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from backend.admin import dashboard as svc
from backend.admin.errors import InvalidInput
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAdmin, IsSuperAdmin
from backend.graphql.tenancy import UserType, visible_user


@strawberry.type
class LiveMinute:
    minute: dt.datetime
    requests: int
    errors: int
    tokens: int
    cost_usd: Decimal
    p50_ms: float | None = strawberry.field(description="Upper bound of the median's bucket.")
    p95_ms: float | None


@strawberry.type
class LiveTraffic:
    minutes: list[LiveMinute] = strawberry.field(description="Oldest first, one per minute.")
    requests: int
    errors: int
    tokens: int
    cost_usd: Decimal
    p50_ms: float | None
    p95_ms: float | None


@strawberry.type(name="ModelCost")
class ModelCostType:
    model: str
    provider: str
    cost_usd: Decimal
    requests: int
    input_tokens: int
    output_tokens: int


@strawberry.type(name="DayCost")
class DayCostType:
    day: dt.date
    cost_usd: Decimal
    requests: int
    input_tokens: int
    output_tokens: int
    by_model: list[ModelCostType]
    by_provider: list[ModelCostType]


@strawberry.type(name="ProviderLoad")
class ProviderLoadType:
    provider: str
    requests: int
    share: float = strawberry.field(description="Fraction of all requests (0..1).")
    errors: int
    error_rate: float
    avg_latency_ms: float | None
    cost_usd: Decimal
    health: str | None = strawberry.field(
        description="healthy | degraded | recovering | down; null without a router."
    )


@strawberry.type
class TopSpender:
    user_id: int
    cost_usd: Decimal
    requests: int
    tokens: int

    @strawberry.field
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)


def _mc(m: svc.ModelCost) -> ModelCostType:
    return ModelCostType(
        model=m.model,
        provider=m.provider,
        cost_usd=m.cost_usd,
        requests=m.requests,
        input_tokens=m.input_tokens,
        output_tokens=m.output_tokens,
    )


def _bounded(value: int, name: str, hi: int) -> int:
    if not 1 <= value <= hi:
        raise InvalidInput(f"{name} must be from 1 to {hi}", field=name)
    return value


@strawberry.type
class Dashboard:
    @strawberry.field(
        permission_classes=[IsSuperAdmin],
        description="Per-minute traffic of the last `minutes` minutes (super_admin).",
    )
    async def live(self, info: Info, minutes: int = 60) -> LiveTraffic:
        res = await svc.live(info.context.gateway, viewer(info), _bounded(minutes, "minutes", 1440))
        return LiveTraffic(
            minutes=[
                LiveMinute(
                    minute=p.minute,
                    requests=p.requests,
                    errors=p.errors,
                    tokens=p.tokens,
                    cost_usd=p.cost_usd,
                    p50_ms=p.p50_ms,
                    p95_ms=p.p95_ms,
                )
                for p in res.points
            ],
            requests=res.requests,
            errors=res.errors,
            tokens=res.tokens,
            cost_usd=res.cost_usd,
            p50_ms=res.p50_ms,
            p95_ms=res.p95_ms,
        )

    @strawberry.field(description="Cost per UTC day, by model and provider (today included).")
    async def cost_trends(self, info: Info, days: int = 7) -> list[DayCostType]:
        rows = await svc.cost_trends(info.context.gateway, viewer(info), _bounded(days, "days", 90))
        return [
            DayCostType(
                day=d.day,
                cost_usd=d.cost_usd,
                requests=d.requests,
                input_tokens=d.input_tokens,
                output_tokens=d.output_tokens,
                by_model=[_mc(m) for m in d.by_model],
                by_provider=[_mc(m) for m in d.by_provider],
            )
            for d in rows
        ]

    @strawberry.field(description="Load and health per provider over the last `hours` hours.")
    async def provider_load(self, info: Info, hours: int = 24) -> list[ProviderLoadType]:
        rows = await svc.provider_load(
            info.context.gateway, viewer(info), _bounded(hours, "hours", 24 * 90)
        )
        return [
            ProviderLoadType(
                provider=p.provider,
                requests=p.requests,
                share=p.share,
                errors=p.errors,
                error_rate=p.error_rate,
                avg_latency_ms=p.avg_latency_ms,
                cost_usd=p.cost_usd,
                health=p.health,
            )
            for p in rows
        ]

    @strawberry.field(description="Users by spend over the last `days` days.")
    async def top_spenders(self, info: Info, days: int = 7, limit: int = 10) -> list[TopSpender]:
        rows = await svc.top_spenders(
            info.context.gateway,
            viewer(info),
            _bounded(days, "days", 90),
            _bounded(limit, "limit", 100),
        )
        return [
            TopSpender(user_id=s.user_id, cost_usd=s.cost_usd, requests=s.requests, tokens=s.tokens)
            for s in rows
        ]

    @strawberry.field(description="The routing strategy in force.")
    def routing_strategy(self, info: Info) -> str:
        return info.context.gateway.store.settings.routing_strategy


@strawberry.type
class DashboardQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Home dashboard numbers (org_admins: their organization; live: super_admin).",
    )
    def dashboard(self) -> Dashboard:
        return Dashboard()
