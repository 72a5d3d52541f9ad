"""The home dashboard's numbers, read from rollups only (``MinuteStat``, hourly and daily usage).

Nothing here scans ``request_logs``: live reads one row per minute (per organization below
super_admin); trends, load and top
spenders read hourly rows for windows up to two days and the daily tables beyond
(``data.windows``: per day x organization x model x provider, or x user), so answers stay fast
with millions of log rows. Windows end at the gateway clock's current minute/hour/day, UTC.
"""

from __future__ import annotations

import datetime as dt
import inspect
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from backend.admin.access import Actor, org_scope
from backend.admin.logs import money
from backend.data import histogram, windows
from backend.data.models.logs import MinuteStat, OrgMinuteStat
from backend.gateway import Gateway


@dataclass(frozen=True, slots=True)
class MinutePoint:
    minute: dt.datetime
    requests: int
    errors: int
    tokens: int
    cost_usd: Decimal
    p50_ms: float | None
    p95_ms: float | None
    unknown_cost_requests: int = 0


@dataclass(frozen=True, slots=True)
class Live:
    points: list[MinutePoint]
    requests: int
    errors: int
    tokens: int
    cost_usd: Decimal
    p50_ms: float | None
    p95_ms: float | None
    unknown_cost_requests: int = 0


def _pct(hist: dict[str, int], q: float) -> float | None:
    p = histogram.percentile(hist, q)
    # "inf" (slower than the last bound) is not JSON: report the last finite bound instead.
    return None if p is None else min(p, histogram.BOUNDS_MS[-1])


async def live(gw: Gateway, actor: Actor, minutes: int = 60) -> Live:
    """Per-minute totals of the last ``minutes`` minutes (current minute included), gaps as 0:
    gateway-wide for a super_admin, requests made under their organization for an org_admin."""
    own = org_scope(actor, "view live traffic")
    end = gw.clock().replace(second=0, microsecond=0)
    start = end - dt.timedelta(minutes=minutes - 1)
    found: list[MinuteStat] | list[OrgMinuteStat] = (
        await MinuteStat.filter(bucket__gte=start, bucket__lte=end)
        if own is None
        else await OrgMinuteStat.filter(org_id=own, bucket__gte=start, bucket__lte=end)
    )
    rows = {_aware(r.bucket): r for r in found}
    points: list[MinutePoint] = []
    merged: dict[str, int] = {}
    for i in range(minutes):
        minute = start + dt.timedelta(minutes=i)
        r = rows.get(minute)
        if r is None:
            points.append(MinutePoint(minute, 0, 0, 0, money(0), None, None))
            continue
        hist = {k: int(n) for k, n in (r.latency_hist or {}).items()}
        histogram.merge(merged, hist)
        points.append(
            MinutePoint(
                minute,
                r.requests,
                r.errors,
                r.tokens,
                money(r.cost_usd),
                _pct(hist, 0.5),
                _pct(hist, 0.95),
                r.unknown_cost_requests,
            )
        )
    return Live(
        points,
        sum(p.requests for p in points),
        sum(p.errors for p in points),
        sum(p.tokens for p in points),
        money(sum((p.cost_usd for p in points), Decimal(0))),
        _pct(merged, 0.5),
        _pct(merged, 0.95),
        sum(p.unknown_cost_requests for p in points),
    )


@dataclass
class ModelCost:
    model: str
    provider: str
    cost_usd: Decimal = Decimal(0)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unknown_cost_requests: int = 0


@dataclass
class DayCost:
    day: dt.date
    cost_usd: Decimal = Decimal(0)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unknown_cost_requests: int = 0
    by_model: list[ModelCost] = field(default_factory=list)
    by_provider: list[ModelCost] = field(default_factory=list)


def _scope(actor: Actor, what: str) -> dict[str, Any]:
    """Rollup filters of what ``actor`` may see: their organization below super_admin."""
    own = org_scope(actor, what)
    return {} if own is None else {"org_id": own}


_SUMS = ("cost_usd", "requests", "input_tokens", "output_tokens", "unknown_cost_requests")


def _aware(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


async def cost_trends(gw: Gateway, actor: Actor, days: int = 7) -> list[DayCost]:
    """Cost per UTC day of the last ``days`` days (today included), split by model/provider."""
    today = gw.clock().astimezone(dt.UTC).date()
    first_day = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first_day, dt.time(), dt.UTC)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
    rows = await windows.grouped(
        "usage",
        start,
        end,
        group_by=("bucket", "model", "provider"),
        sums=_SUMS,
        filters=_scope(actor, "view cost trends"),
        now=gw.clock(),
    )
    out = {
        first_day + dt.timedelta(days=i): DayCost(first_day + dt.timedelta(days=i))
        for i in range(days)
    }
    models: dict[tuple[dt.date, str, str], ModelCost] = {}
    providers: dict[tuple[dt.date, str], ModelCost] = {}
    for r in rows:
        day = _aware(r["bucket"]).date()
        cost, n, i, o = r["cost_usd"], r["requests"], r["input_tokens"], r["output_tokens"]
        for agg in (
            out[day],
            models.setdefault(
                (day, r["model"], r["provider"]), ModelCost(r["model"], r["provider"])
            ),
            providers.setdefault((day, r["provider"]), ModelCost("", r["provider"])),
        ):
            agg.cost_usd += cost
            agg.requests += n
            agg.input_tokens += i
            agg.output_tokens += o
            agg.unknown_cost_requests += r["unknown_cost_requests"]
    for (day, _, _), mc in models.items():
        out[day].by_model.append(mc)
    for (day, _), pc in providers.items():
        out[day].by_provider.append(pc)
    for d in out.values():
        d.by_model.sort(key=lambda m: (-m.cost_usd, m.model, m.provider))
        d.by_provider.sort(key=lambda m: (-m.cost_usd, m.provider))
    return [out[k] for k in sorted(out)]


@dataclass(frozen=True, slots=True)
class ProviderLoad:
    provider: str
    requests: int
    share: float
    errors: int
    error_rate: float
    avg_latency_ms: float | None
    cost_usd: Decimal
    health: str | None
    unknown_cost_requests: int = 0


async def _health(gw: Gateway) -> dict[str, str] | None:
    router = gw.router
    if router is None or not hasattr(router, "health"):
        return None
    rows = router.health()
    if inspect.isawaitable(rows):
        rows = await rows
    states: dict[str, str] = {}
    for row in rows or ():
        provider, state = row.get("provider"), row.get("state")
        if not provider:
            continue
        if row.get("model") is None:
            states[provider] = {
                "closed": "healthy",
                "up": "healthy",
                "half_open": "recovering",
                "open": "down",
                "down": "down",
            }.get(str(state), str(state))
        elif state != "closed" and states.get(provider, "healthy") == "healthy":
            states[provider] = "degraded"
    return states


#: Error rates at which a provider reads degraded / down, whatever its breakers say: the
#: health badge must agree with the error counts next to it (22 of 22 failed is not healthy).
DEGRADED_RATE = 0.05
DOWN_RATE = 0.5
_SEVERITY = ("healthy", "recovering", "degraded", "down")


def health_of(error_rate: float, breaker: str | None) -> str:
    """The worse of what the error rate says and what the provider's breakers say."""
    by_rate = (
        "down" if error_rate >= DOWN_RATE else "degraded" if error_rate >= DEGRADED_RATE else ""
    )
    states = [s for s in (by_rate, breaker or "healthy") if s]
    return max(states, key=lambda s: _SEVERITY.index(s) if s in _SEVERITY else 0)


async def provider_load(gw: Gateway, actor: Actor, hours: int = 24) -> list[ProviderLoad]:
    """Requests, share, errors, mean latency and health per provider, last ``hours``: health is
    the worse of the window's error rate (``health_of``) and the breakers' state."""
    now = gw.clock()
    hour = now.replace(minute=0, second=0, microsecond=0)
    rows = await windows.grouped(
        "usage",
        hour - dt.timedelta(hours=hours - 1),
        hour + dt.timedelta(hours=1),
        group_by=("provider",),
        sums=("requests", "errors", "latency_ms_sum", "cost_usd", "unknown_cost_requests"),
        filters=_scope(actor, "view provider load"),
        now=now,
    )
    total = sum(r["requests"] for r in rows)
    health = await _health(gw)
    out = []
    for r in rows:
        n, e = r["requests"], r["errors"]
        name = r["provider"] or "unknown"
        rate = round(e / n, 6) if n else 0.0
        out.append(
            ProviderLoad(
                provider=name,
                requests=n,
                share=round(n / total, 6) if total else 0.0,
                errors=e,
                error_rate=rate,
                avg_latency_ms=round(r["latency_ms_sum"] / n, 3) if n else None,
                cost_usd=r["cost_usd"],
                health=health_of(rate, None if health is None else health.get(name)),
                unknown_cost_requests=r["unknown_cost_requests"],
            )
        )
    out.sort(key=lambda p: (-p.requests, p.provider))
    return out


@dataclass(frozen=True, slots=True)
class Spender:
    user_id: int
    cost_usd: Decimal
    requests: int
    tokens: int
    unknown_cost_requests: int = 0


async def top_spenders(gw: Gateway, actor: Actor, days: int = 7, limit: int = 10) -> list[Spender]:
    today = gw.clock().astimezone(dt.UTC).date()
    start = dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time(), dt.UTC)
    rows = await windows.grouped(
        "usage",
        start,
        dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC),
        group_by=("user_id",),
        sums=_SUMS,
        filters=_scope(actor, "view top spenders"),
        narrow=lambda qs: qs.exclude(user_id=0),
        now=gw.clock(),
    )
    rows.sort(key=lambda r: (-r["cost_usd"], r["user_id"]))
    return [
        Spender(
            r["user_id"],
            r["cost_usd"],
            r["requests"],
            r["input_tokens"] + r["output_tokens"],
            r["unknown_cost_requests"],
        )
        for r in rows[:limit]
    ]
