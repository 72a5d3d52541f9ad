"""Per-User Usage, User Activity Export and Error Reports."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components.common import SELECT_STYLE, error_text, loading, ok_text
from frontend_reflex.components.forms import row_button
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table, pager
from frontend_reflex.state.usage import ErrorsState, ExportState, UsageState

EXPORT_TEXT = (
    "Export all API activity for a specific user as a downloadable CSV. Includes input/output "
    "conversations, token counts, model used, cost, and latency. Useful for auditing and "
    "debugging user-side issues."
)


def usage_page() -> rx.Component:
    return shell(
        "Per-User Usage",
        error_text(UsageState.error),
        error_text(UsageState.export_error),
        ok_text(UsageState.export_ok),
        loading(UsageState.loading),
        data_table(
            ["User", "Requests", "Input Tokens", "Output Tokens", "Cost", "Actions"],
            UsageState.page_rows,
            lambda r: rx.table.row(
                rx.table.cell(
                    rx.vstack(
                        rx.text(r["user"]),
                        rx.text(r["email"], size="1", color_scheme="gray"),
                        spacing="0",
                    )
                ),
                rx.table.cell(r["requests"]),
                rx.table.cell(r["input"]),
                rx.table.cell(r["output"]),
                rx.table.cell(r["cost"]),
                rx.table.cell(row_button("Export CSV", UsageState.export, r)),
            ),
            empty="No usage recorded yet.",
            is_loading=UsageState.loading,
            table_id="usage-table",
        ),
        pager(
            UsageState.page_label,
            UsageState.has_prev,
            UsageState.has_next,
            UsageState.prev_page,
            UsageState.next_page,
        ),
    )


def export_page() -> rx.Component:
    return shell(
        "User Activity Export",
        rx.text(EXPORT_TEXT, color_scheme="gray"),
        error_text(ExportState.error),
        loading(ExportState.loading),
        rx.hstack(
            rx.el.select(
                rx.el.option("Pick a user…", value=""),
                rx.foreach(
                    ExportState.user_options, lambda o: rx.el.option(o["label"], value=o["value"])
                ),
                value=ExportState.chosen,
                on_change=ExportState.choose,
                id="export-user",
                class_name="sb-select",
                **SELECT_STYLE,
            ),
            rx.button(
                "Download CSV",
                on_click=ExportState.export,
                id="export-download",
                disabled=ExportState.chosen == "",
            ),
            align="center",
            spacing="3",
        ),
        error_text(ExportState.export_error),
        ok_text(ExportState.export_ok),
    )


def errors_page() -> rx.Component:
    return shell(
        "Error Reports",
        rx.text(
            "Errors the gateway recorded (provider failures, timeouts, translation errors) "
            "and errors clients reported.",
            color_scheme="gray",
        ),
        error_text(ErrorsState.error),
        loading(ErrorsState.loading),
        data_table(
            ["Time", "Source", "Type", "Model", "Error", "User", "Agent", "Version"],
            ErrorsState.page_rows,
            lambda r: rx.table.row(
                rx.table.cell(
                    rx.cond(
                        r["href"] != "",
                        rx.link(r["time"], href=r["href"], class_name="sb-request-link"),
                        rx.text(r["time"]),
                    ),
                    white_space="nowrap",
                ),
                rx.table.cell(r["source"]),
                rx.table.cell(r["type"]),
                rx.table.cell(r["model"]),
                rx.table.cell(rx.text(r["error"], size="1")),
                rx.table.cell(r["user"]),
                rx.table.cell(r["agent"]),
                rx.table.cell(r["version"]),
            ),
            empty="No errors reported. Good.",
            is_loading=ErrorsState.loading,
        ),
        pager(
            ErrorsState.page_label,
            ErrorsState.has_prev,
            ErrorsState.has_next,
            ErrorsState.prev_page,
            ErrorsState.next_page,
        ),
    )
