"""Analytics: spend and requests by model, provider, user, app, key, organization or tag over a
date range, as a chart, a sortable table with totals and a CSV (``analytics`` in GraphQL).

Every role may open it: the gateway answers members with their own requests and org_admins with
their organization's, so the page needs no scoping of its own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.ranges import RangeState

DIMENSIONS: list[tuple[str, str]] = [
    ("model", "Model"),
    ("provider", "Provider"),
    ("user", "User"),
    ("app", "App"),
    ("key", "API key"),
    ("org", "Organization"),
    ("tag", "Tag"),
]
#: Sortable numeric columns: (row key, header). The first column is the group's label.
COLUMNS: list[tuple[str, str]] = [
    ("requests", "Requests"),
    ("errors", "Errors"),
    ("error_rate", "Error rate"),
    ("input", "Input tokens"),
    ("output", "Output tokens"),
    ("cost", "Cost (USD)"),
    ("p50", "p50 latency"),
    ("p95", "p95 latency"),
]
#: API field of each column (the raw value sorts and goes into the CSV).
_RAW = {
    "requests": "requests",
    "errors": "errors",
    "error_rate": "errorRate",
    "input": "inputTokens",
    "output": "outputTokens",
    "cost": "costUsd",
    "p50": "p50Ms",
    "p95": "p95Ms",
}
CSV_FIELDS = [
    ("requests", "requests"),
    ("errors", "errors"),
    ("error_rate", "errorRate"),
    ("input_tokens", "inputTokens"),
    ("output_tokens", "outputTokens"),
    ("cached_tokens", "cachedTokens"),
    ("cost_usd", "costUsd"),
    ("unknown_cost_requests", "unknownCostRequests"),
    ("avg_latency_ms", "avgLatencyMs"),
    ("p50_ms", "p50Ms"),
    ("p95_ms", "p95Ms"),
]
CHART_GROUPS = 10


def _raw(value: Any) -> str:
    return "" if value is None else str(value)


def table_row(key: str, label: str, t: Mapping[str, Any]) -> dict[str, str]:
    """One table line: formatted cells, and ``raw_<col>`` values to sort on and export."""
    row = {
        "key": key,
        "label": label,
        "requests": fmt.number(t.get("requests")),
        "errors": fmt.number(t.get("errors")),
        "error_rate": fmt.percent(t.get("errorRate")),
        "input": fmt.number(t.get("inputTokens")),
        "output": fmt.number(t.get("outputTokens")),
        "cost": fmt.spend(t.get("costUsd"), t.get("unknownCostRequests")),
        "p50": fmt.ms(t.get("p50Ms")),
        "p95": fmt.ms(t.get("p95Ms")),
    }
    for col, field in _RAW.items():
        row[f"raw_{col}"] = _raw(t.get(field))
    for name, field in CSV_FIELDS:
        row[f"csv_{name}"] = _raw(t.get(field))
    return row


def rows_of(result: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        table_row(str(g.get("key")), str(g.get("label") or g.get("key")), g.get("totals") or {})
        for g in result.get("groups") or []
    ]


def sort_rows(rows: Sequence[dict[str, str]], col: str, desc: bool) -> list[dict[str, str]]:
    """By a numeric column (missing values last) or by the label."""
    if col == "label":
        return sorted(rows, key=lambda r: r["label"].lower(), reverse=desc)

    def key(r: dict[str, str]) -> tuple[int, float]:
        raw = r.get(f"raw_{col}", "")
        return (0, float(raw)) if raw != "" else (1, 0.0)

    present = [r for r in rows if r.get(f"raw_{col}", "") != ""]
    missing = [r for r in rows if r.get(f"raw_{col}", "") == ""]
    return sorted(present, key=key, reverse=desc) + missing


def chart_points(rows: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
    """The top groups by cost, for the bar chart (cost in USD, requests)."""
    top = sort_rows(rows, "cost", True)[:CHART_GROUPS]
    return [
        {
            "name": r["label"] if len(r["label"]) <= 28 else r["label"][:27] + "…",
            "cost": round(fmt.to_float(r["raw_cost"]), 6),
            "requests": int(fmt.to_float(r["raw_requests"])),
        }
        for r in top
    ]


def series_points(series: Sequence[Mapping[str, Any]], granularity: str) -> list[dict[str, Any]]:
    shown = fmt.when if granularity == "hour" else fmt.day
    return [
        {
            "t": shown(p.get("bucket"))[:16] if granularity == "hour" else shown(p.get("bucket")),
            "cost": round(fmt.to_float(p.get("costUsd")), 6),
            "requests": int(fmt.to_float(p.get("requests"))),
            "errors": int(fmt.to_float(p.get("errors"))),
        }
        for p in series
    ]


def csv_text(dimension: str, rows: Sequence[dict[str, str]], total: Mapping[str, str]) -> str:
    """The table as CSV: exact API values (cost to 8 decimals, rates 0..1), a TOTAL line last."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([dimension, "label", *[name for name, _ in CSV_FIELDS]])
    for r in [*rows, total] if total else rows:
        writer.writerow([r["key"], r["label"], *[r[f"csv_{name}"] for name, _ in CSV_FIELDS]])
    return out.getvalue()


class AnalyticsState(RangeState, AuthState):
    dimension: str = "model"
    rows: list[dict[str, str]] = []
    total: dict[str, str] = {}
    chart: list[dict[str, Any]] = []
    series: list[dict[str, Any]] = []
    sort_col: str = "cost"
    sort_desc: bool = True
    groups_note: str = ""
    loading: bool = False
    error: str = ""

    @rx.var
    def dimension_label(self) -> str:
        return dict(DIMENSIONS).get(self.dimension, self.dimension)

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard()
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._refresh()

    async def _refresh(self) -> Any:
        span = self._window()
        if span is None:
            self.loading = False
            return None
        try:
            data = await self._gql(*queries.analytics(self.dimension, *span, limit=500))
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)
        result = data.get("analytics") or {}
        rows = rows_of(result)
        self.rows = sort_rows(rows, self.sort_col, self.sort_desc)
        self.total = table_row("TOTAL", "Total", result.get("total") or {}) if rows else {}
        self.chart = chart_points(rows)
        self.series = series_points(result.get("series") or [], str(result.get("granularity")))
        count = int(fmt.to_float(result.get("groupCount")))
        self.groups_note = (
            f"The {len(rows)} costliest of {count} groups; the total counts them all."
            if count > len(rows)
            else ""
        )
        self.error = ""
        self.loading = False
        return None

    @rx.event
    async def set_dimension(self, value: str) -> Any:
        self.dimension = value if value in dict(DIMENSIONS) else "model"
        self.loading = True
        yield
        yield await self._refresh()

    @rx.event
    def sort(self, col: str) -> None:
        if col == self.sort_col:
            self.sort_desc = not self.sort_desc
        else:
            self.sort_col, self.sort_desc = col, col != "label"
        self.rows = sort_rows(self.rows, self.sort_col, self.sort_desc)

    @rx.event
    def download_csv(self) -> Any:
        name = f"analytics-{self.dimension}-{self.since_day}-to-{self.until_day}.csv"
        text = csv_text(self.dimension, self.rows, self.total)
        return rx.download(data=text, filename=name, mime_type="text/csv")

    @rx.event
    def download_series_csv(self) -> Any:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["period", "requests", "errors", "cost_usd"])
        for p in self.series:
            writer.writerow([p["t"], p["requests"], p["errors"], p["cost"]])
        name = f"analytics-over-time-{self.since_day}-to-{self.until_day}.csv"
        return rx.download(data=out.getvalue(), filename=name, mime_type="text/csv")
