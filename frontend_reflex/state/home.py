"""Home: the live last hour, cost trends over 7 days, provider load, top spenders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.ranges import window


def live_points(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "minute": fmt.minute(r.get("minute")),
            "requests": int(fmt.to_float(r.get("requests"))),
            "tokens": int(fmt.to_float(r.get("tokens"))),
            "cost": round(fmt.to_float(r.get("costUsd")), 6),
            "errors": int(fmt.to_float(r.get("errors"))),
            "p95": round(fmt.to_float(r.get("p95Ms")), 1),
        }
        for r in rows
    ]


def trend_points(days: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One point per day with a cost series per provider (stacked in the chart)."""
    providers: list[str] = []
    points: list[dict[str, Any]] = []
    for d in days:
        point: dict[str, Any] = {"day": fmt.day(d.get("day"))}
        for p in d.get("byProvider") or []:
            name = str(p.get("provider") or "other")
            if name not in providers:
                providers.append(name)
            point[name] = round(point.get(name, 0.0) + fmt.to_float(p.get("costUsd")), 6)
        points.append(point)
    points.sort(key=lambda pt: str(pt["day"]))
    return points, providers


def load_rows(rows: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "provider": fmt.text(r.get("provider")),
            "requests": fmt.number(r.get("requests")),
            "share": f"{fmt.to_float(r.get('share')) * 100:.0f}%",
            "errors": fmt.number(r.get("errors")),
            "latency": (
                f"{fmt.to_float(r.get('avgLatencyMs')):.0f} ms"
                if r.get("avgLatencyMs") is not None
                else "—"
            ),
            "health": queries.stored(r.get("health"), "unknown"),
        }
        for r in rows
    ]


def spender_row(r: Mapping[str, Any]) -> dict[str, str]:
    user = r.get("user") or {}
    return {
        "user": fmt.text(user.get("name") or f"user {r.get('userId')}"),
        "email": fmt.text(user.get("email")),
        "cost": fmt.spend(r.get("costUsd"), r.get("unknownCostRequests")),
        "requests": fmt.number(r.get("requests")),
        "tokens": fmt.number(r.get("tokens")),
    }


def app_spender_row(g: Mapping[str, Any]) -> dict[str, str]:
    """An app among the top spenders (an ``analytics`` APP group)."""
    t = g.get("totals") or {}
    tokens = int(fmt.to_float(t.get("inputTokens"))) + int(fmt.to_float(t.get("outputTokens")))
    return {
        "app": str(g.get("label") or ""),
        "cost": fmt.spend(t.get("costUsd"), t.get("unknownCostRequests")),
        "requests": fmt.number(t.get("requests")),
        "tokens": fmt.number(tokens),
    }


class HomeState(AuthState):
    live: list[dict[str, Any]] = []
    app_spenders: list[dict[str, str]] = []
    trends: list[dict[str, Any]] = []
    trend_series: list[str] = []
    load_chart: list[dict[str, Any]] = []
    load_table: list[dict[str, str]] = []
    spenders: list[dict[str, str]] = []
    total_requests: str = "0"
    total_tokens: str = "0"
    total_cost: str = "$0.00"
    total_errors: str = "0"
    worst_p95: str = "—"
    strategy: str = ""
    loading: bool = False
    error: str = ""

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._fetch()

    @rx.event
    async def tick(self, _value: Any = None) -> Any:
        if self.is_admin and self.router.url.path == "/":
            return await self._fetch()
        return None

    async def _fetch(self) -> Any:
        try:
            doc = queries.dashboard(with_live=True)
            data = (await self._gql(doc)).get("dashboard") or {}
            # The same 7 days as topSpenders (today included), for apps.
            since, until = window("7d")
            apps = await self._gql(*queries.analytics("app", since, until, limit=11))
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)
        live = data.get("live") or {}
        self.live = live_points(live.get("minutes") or [])
        self.total_requests = fmt.number(live.get("requests"))
        self.total_tokens = fmt.number(live.get("tokens"))
        self.total_cost = fmt.spend(live.get("costUsd"), live.get("unknownCostRequests"))
        self.total_errors = fmt.number(live.get("errors"))
        p95 = live.get("p95Ms")
        self.worst_p95 = f"{fmt.to_float(p95):.0f} ms" if p95 is not None else "—"
        self.trends, self.trend_series = trend_points(data.get("costTrends") or [])
        load = data.get("providerLoad") or []
        self.load_chart = [
            {
                "provider": str(r.get("provider") or "?"),
                "requests": int(fmt.to_float(r.get("requests"))),
                "errors": int(fmt.to_float(r.get("errors"))),
            }
            for r in load
        ]
        self.load_table = load_rows(load)
        self.spenders = [spender_row(r) for r in data.get("topSpenders") or []]
        groups = (apps.get("analytics") or {}).get("groups") or []
        self.app_spenders = [app_spender_row(g) for g in groups if g.get("entityId")][:10]
        self.strategy = queries.stored(data.get("routingStrategy"))
        self.error = ""
        self.loading = False
        return None
