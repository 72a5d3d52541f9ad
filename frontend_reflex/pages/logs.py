"""Gateway Logs: recent API requests, new ones appearing live."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import error_text
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table, pager
from frontend_reflex.state.logs import DOOR_LABELS, LogsState

HEADERS = ["Time", "Key", "User", "Endpoint", "Requested", "Actual", "Tokens", "Cost"]


def row(r: Any) -> rx.Component:
    fresh = LogsState.fresh_ids.contains(r["id"])  # type: ignore[attr-defined]
    return rx.table.row(
        rx.table.cell(r["time"], white_space="nowrap"),
        rx.table.cell(rx.code(r["key"])),
        rx.table.cell(r["user"]),
        rx.table.cell(r["endpoint"]),
        rx.table.cell(r["requested"]),
        rx.table.cell(
            rx.hstack(
                rx.text(r["actual"]),
                rx.cond(
                    r["deployment"] != "",
                    rx.text("via ", r["deployment"], size="1", color_scheme="gray"),
                ),
                rx.cond(r["failed"] == "yes", rx.badge(r["status"], color_scheme="red")),
                spacing="1",
                align="center",
            )
        ),
        rx.table.cell(r["tokens"]),
        rx.table.cell(r["cost"]),
        background=rx.cond(fresh, "var(--accent-a3)", "transparent"),
        class_name="sb-log-row",
    )


def live_badge() -> rx.Component:
    status = LogsState.live_status
    return rx.badge(
        rx.cond(status == "live", "● live", status),
        color_scheme=rx.cond(status == "live", "green", "amber"),
        id="live-status",
    )


def page() -> rx.Component:
    return shell(
        "Gateway Logs",
        rx.moment(
            interval=10_000, format="HH:mm:ss", on_change=LogsState.heartbeat, display="none"
        ),
        rx.hstack(
            rx.text(
                "Recent API requests through the gateway's OpenAI, Anthropic and Gemini "
                "endpoints (chat completions, messages, responses, generateContent...).",
                color_scheme="gray",
            ),
            rx.spacer(),
            rx.select(
                DOOR_LABELS,
                value=LogsState.door_label,
                on_change=LogsState.set_door,
                size="1",
                id="logs-endpoint",
            ),
            live_badge(),
            width="100%",
        ),
        error_text(LogsState.error),
        data_table(
            HEADERS,
            LogsState.page_rows,
            row,
            empty="No requests yet. Point an SDK at the gateway with an API key.",
            is_loading=LogsState.loading,
            table_id="logs-table",
        ),
        rx.hstack(
            pager(
                LogsState.page_label,
                LogsState.has_prev,
                LogsState.has_next,
                LogsState.prev_page,
                LogsState.next_page,
            ),
            rx.spacer(),
            rx.button(
                "Load older",
                size="1",
                variant="soft",
                on_click=LogsState.load_older,
                disabled=LogsState.cursor == "",
            ),
            width="100%",
        ),
    )
