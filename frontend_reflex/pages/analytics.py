"""Analytics: who spent what, on which model, over a date range — chart, sortable table, CSV."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components import charts
from frontend_reflex.components.common import SELECT_STYLE, error_text, loading, section, stat_card
from frontend_reflex.components.layout import shell
from frontend_reflex.components.ranges import range_picker
from frontend_reflex.components.table import pager_of
from frontend_reflex.state.analytics import COLUMNS, DIMENSIONS, AnalyticsState

S = AnalyticsState


def sort_header(col: str, title: Any, *, numeric: bool = True) -> rx.Component:
    """A column header that sorts the table by it (again: the other way)."""
    arrow = rx.cond(S.sort_col == col, rx.cond(S.sort_desc, " ↓", " ↑"), "")
    return rx.table.column_header_cell(
        rx.el.button(
            title,
            arrow,
            on_click=S.sort(col),
            type="button",
            background="none",
            border="none",
            padding="0",
            cursor="pointer",
            font_weight="bold",
            color="inherit",
            class_name=f"sb-sort sb-sort-{col}",
        ),
        class_name="sb-num" if numeric else "",
    )


def _cells(r: Any) -> list[rx.Component]:
    return [rx.table.cell(r[col], class_name=f"sb-num sb-col-{col}") for col, _ in COLUMNS]


def breakdown_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                sort_header("label", S.dimension_label, numeric=False),
                *[sort_header(col, title) for col, title in COLUMNS],
            )
        ),
        rx.table.body(
            rx.cond(
                S.rows.length() == 0,  # type: ignore[attr-defined]
                rx.table.row(
                    rx.table.cell(
                        rx.text(
                            rx.cond(S.loading, "Loading…", "No requests in this window."),
                            color_scheme="gray",
                            size="2",
                        ),
                        col_span=len(COLUMNS) + 1,
                        class_name="sb-empty",
                    )
                ),
                rx.foreach(
                    S.rows,
                    lambda r: rx.table.row(
                        rx.table.cell(rx.text(r["label"], title=r["key"])),
                        *_cells(r),
                        class_name="sb-analytics-row",
                    ),
                ),
            ),
            rx.cond(
                S.sum_row.length() > 0,  # type: ignore[attr-defined]
                rx.table.row(
                    rx.table.row_header_cell("Total"),
                    *_cells(S.sum_row),
                    font_weight="bold",
                    id="analytics-total",
                ),
            ),
        ),
        variant="surface",
        size="1",
        width="100%",
        id="analytics-table",
    )


def page() -> rx.Component:
    t = S.sum_row
    return shell(
        "Analytics",
        rx.flex(
            range_picker(S, "analytics"),
            rx.vstack(
                rx.text("Group by", size="1", weight="medium"),
                rx.el.select(
                    *[rx.el.option(label, value=value) for value, label in DIMENSIONS],
                    value=S.dimension,
                    on_change=S.set_dimension,
                    id="analytics-dimension",
                    class_name="sb-select",
                    **SELECT_STYLE,
                ),
                spacing="1",
            ),
            wrap="wrap",
            gap="4",
            align="start",
        ),
        error_text(S.error),
        loading(S.loading),
        rx.hstack(
            stat_card("Requests", rx.cond(t.length() > 0, t["requests"], "0")),  # type: ignore[attr-defined]
            stat_card("Cost", rx.cond(t.length() > 0, t["cost"], "$0.00")),  # type: ignore[attr-defined]
            stat_card("Errors", rx.cond(t.length() > 0, t["errors"], "0"), t["error_rate"]),
            wrap="wrap",
            spacing="3",
        ),
        section(
            "Spend and requests by " + S.dimension_label.lower(),  # type: ignore[attr-defined]
            charts.group_chart(S.chart, "No requests in this window."),
            rx.hstack(
                pager_of(S, "analytics-pager"),
                rx.spacer(),
                rx.button(
                    rx.icon("download", size=14),
                    "CSV",
                    size="1",
                    variant="soft",
                    on_click=S.download_csv,
                    id="analytics-csv",
                ),
                width="100%",
                align="center",
            ),
            breakdown_table(),
            description=(
                "Click a column to sort every group by it (the chart shows the costliest). The "
                "CSV holds every group, not just this page. Cost counts requests with a known "
                "price; requests without one are shown as unknown, never as $0. p50/p95 "
                "latency: per model and provider. Tags: a request with several tags counts "
                "under each."
            ),
        ),
        section(
            "Over time",
            charts.series_chart(S.series),
            rx.button(
                rx.icon("download", size=14),
                "CSV",
                size="1",
                variant="soft",
                on_click=S.download_series_csv,
                id="analytics-series-csv",
            ),
        ),
    )
