"""Analytics: spend and requests by model, provider, user, app, key, organization or tag over a
date range, as a chart, a table paged and sorted by the API with totals, and a CSV of every
group (``analytics`` in GraphQL).

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
from frontend_reflex.state.pager import Page, ServerList
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


#: The API's sort column of each table column (``AnalyticsSort``: <COLUMN>_DESC / _ASC).
SORT_NAMES = {
    "label": "LABEL",
    "requests": "REQUESTS",
    "errors": "ERRORS",
    "error_rate": "ERROR_RATE",
    "input": "INPUT_TOKENS",
    "output": "OUTPUT_TOKENS",
    "cost": "COST",
    "p50": "P50",
    "p95": "P95",
}
#: Groups per request when the CSV reads every page (the API's largest ``limit``).
CSV_PAGE = 1000


def api_sort(col: str, desc: bool) -> str:
    """The ``AnalyticsSort`` value of a table column and direction."""
    return f"{SORT_NAMES.get(col, 'COST')}_{'DESC' if desc else 'ASC'}"


class AnalyticsState(RangeState, ServerList, AuthState):
    """The table is one server page at a time (``ServerList`` with ``_page`` over
    ``analytics(limit, offset, sort)``: a page's "cursor" is its offset) in the order of the
    column clicked, sorted by the API; the charts, the totals and the series come from one
    overview read of the top groups by cost."""

    dimension: str = "model"
    #: The Total line (every group, from the API).
    sum_row: dict[str, str] = {}
    chart: list[dict[str, Any]] = []
    series: list[dict[str, Any]] = []
    sort_col: str = "cost"
    sort_desc: bool = True

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

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return table_row(
            str(node.get("key")),
            str(node.get("label") or node.get("key")),
            node.get("totals") or {},
        )

    async def _page(self, first: int, after: str) -> Page:
        span = self._window()
        if span is None:
            return Page([], "", 0)
        offset = int(after or 0)
        op = queries.analytics_page(
            self.dimension,
            *span,
            limit=first,
            offset=offset,
            sort=api_sort(self.sort_col, self.sort_desc),
        )
        result = (await self._gql(*op)).get("analytics") or {}
        total = int(fmt.to_float(result.get("groupCount")))
        following = str(offset + first) if offset + first < total else ""
        return Page(list(result.get("groups") or []), following, total)

    async def _refresh(self) -> Any:
        span = self._window()
        if span is None:
            self.loading = False
            return None
        try:
            op = queries.analytics(self.dimension, *span, limit=CHART_GROUPS)
            data = await self._gql(*op)
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)
        result = data.get("analytics") or {}
        top = rows_of(result)
        self.sum_row = table_row("TOTAL", "Total", result.get("total") or {}) if top else {}
        self.chart = chart_points(top)
        self.series = series_points(result.get("series") or [], str(result.get("granularity")))
        return await self._first_page()

    @rx.event
    async def set_dimension(self, value: str) -> Any:
        self.dimension = value if value in dict(DIMENSIONS) else "model"
        self.loading = True
        yield
        yield await self._refresh()

    @rx.event
    async def sort(self, col: str) -> Any:
        """Page one in the column's order, as the API sorts every group (not just a page)."""
        if col == self.sort_col:
            self.sort_desc = not self.sort_desc
        else:
            self.sort_col, self.sort_desc = col, col != "label"
        return await self._first_page()

    async def _all_rows(self) -> list[dict[str, str]]:
        """Every group in the table's order. There is no server CSV route for analytics, so
        the CSV reads every page here, ``groupCount`` the bound (groups number a few
        thousand at most: a handful of reads of ``CSV_PAGE``)."""
        rows: list[dict[str, str]] = []
        after = ""
        while True:
            page = await self._page(CSV_PAGE, after)
            rows.extend(self._row(n) for n in page.nodes)
            if not page.next_cursor or not page.nodes or len(rows) >= page.total:
                return rows
            after = page.next_cursor

    @rx.event
    async def download_csv(self) -> Any:
        """The whole table (every group, not just the page shown) and the Total line."""
        try:
            rows = await self._all_rows()
        except ApiError as exc:
            self.error = exc.message
            return self._on_api_error(exc)
        name = f"analytics-{self.dimension}-{self.since_day}-to-{self.until_day}.csv"
        text = csv_text(self.dimension, rows, self.sum_row)
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
