"""Per-User Usage, User Activity Export and Error Reports."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import SELECT_STYLE, error_text, loading, ok_text, section
from frontend_reflex.components.forms import choice_note, find_box, row_button
from frontend_reflex.components.layout import shell
from frontend_reflex.components.ranges import range_picker
from frontend_reflex.components.table import data_table, num, pager, pager_of
from frontend_reflex.state.usage import ErrorsState, ExportState, UsageAppsState, UsageState

EXPORT_TEXT = (
    "Export all API activity for a specific user as a downloadable CSV. Includes input/output "
    "conversations, token counts, model used, cost, and latency. Useful for auditing and "
    "debugging user-side issues."
)


def _usage_cells(r: Any) -> list[rx.Component]:
    return [num(r["requests"]), num(r["errors"]), num(r["input"]), num(r["output"]), num(r["cost"])]


_NUMERIC = ("Requests", "Errors", "Input Tokens", "Output Tokens", "Cost")


def usage_page() -> rx.Component:
    return shell(
        "Per-User Usage",
        range_picker(UsageState, "usage"),
        error_text(UsageState.error),
        error_text(UsageState.export_error),
        ok_text(UsageState.export_ok),
        loading(UsageState.loading),
        section(
            "Users",
            data_table(
                ["User", *_NUMERIC, "Actions"],
                UsageState.rows,
                lambda r: rx.table.row(
                    rx.table.cell(
                        rx.vstack(
                            rx.text(r["user"]),
                            rx.text(r["email"], size="1", color_scheme="gray"),
                            spacing="0",
                        )
                    ),
                    *_usage_cells(r),
                    # Group 0 (app keys: no user) has no user to export.
                    rx.table.cell(
                        rx.cond(r["id"] != "", row_button("Export CSV", UsageState.export, r))
                    ),
                ),
                empty="No user requests in this window.",
                is_loading=UsageState.loading,
                table_id="usage-table",
                numeric=_NUMERIC,
            ),
            pager_of(UsageState, "usage-pager"),
        ),
        section(
            "Apps",
            data_table(
                ["App", *_NUMERIC],
                UsageAppsState.rows,
                lambda r: rx.table.row(rx.table.cell(r["user"]), *_usage_cells(r)),
                empty="No app requests in this window.",
                is_loading=UsageAppsState.loading,
                table_id="usage-apps-table",
                numeric=_NUMERIC,
            ),
            error_text(UsageAppsState.error),
            pager_of(UsageAppsState, "usage-apps-pager"),
            description="Requests made with app keys.",
        ),
    )


def export_page() -> rx.Component:
    return shell(
        "User Activity Export",
        rx.text(EXPORT_TEXT, color_scheme="gray"),
        error_text(ExportState.error),
        loading(ExportState.loading),
        rx.hstack(
            find_box(ExportState, "Find a user by name or email", "export-find", "16em"),
            rx.el.select(
                rx.el.option("Pick a user…", value=""),
                rx.foreach(
                    ExportState.choice_options, lambda o: rx.el.option(o["label"], value=o["value"])
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
            wrap="wrap",
            max_width="100%",
        ),
        choice_note(ExportState, "export-note"),
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
            ErrorsState.rows,
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
