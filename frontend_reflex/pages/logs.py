"""Gateway Logs: the log explorer. Every filter of the API (kept in the address, so a view can
be shared), a time range with presets, the API's true total, new requests live, and each row a
link to its request detail."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import SELECT_STYLE, error_text
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table, pager
from frontend_reflex.state.filters import TIME_PRESETS
from frontend_reflex.state.log_rows import DOOR_OPTIONS
from frontend_reflex.state.logs import LogsState

HEADERS = ["Time", "Key", "User", "Endpoint", "Requested", "Actual", "Tokens", "Cost", "Latency"]


def row(r: Any) -> rx.Component:
    fresh = LogsState.fresh_ids.contains(r["id"])  # type: ignore[attr-defined]
    return rx.table.row(
        rx.table.cell(
            rx.link(r["time"], href=r["href"], class_name="sb-log-link", white_space="nowrap")
        ),
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
                rx.cond(
                    r["failed"] == "yes",
                    rx.badge(r["status"], " · ", r["why"], color_scheme="red", class_name="sb-why"),
                ),
                spacing="1",
                wrap="wrap",
            )
        ),
        rx.table.cell(r["tokens"], white_space="nowrap"),
        rx.table.cell(r["cost"]),
        rx.table.cell(r["latency"], white_space="nowrap"),
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


def _select(
    name: str, label: str, options: Any, *, static: list[tuple[str, str]] | None = None
) -> rx.Component:
    items: list[rx.Component] = [rx.el.option(label, value="")]
    items.extend(rx.el.option(text, value=value) for value, text in static or [])
    if options is not None:
        items.append(rx.foreach(options, lambda o: rx.el.option(o["label"], value=o["value"])))
    return rx.el.select(
        *items,
        value=LogsState.filters[name],
        on_change=lambda v: LogsState.choose(name, v),
        id=f"logs-{name}",
        name=name,
        class_name="sb-select",
        **SELECT_STYLE,
    )


def _text(name: str, placeholder: str, width: str = "11em") -> rx.Component:
    return rx.input(
        value=LogsState.filters[name],
        on_change=lambda v: LogsState.set_field(name, v),
        placeholder=placeholder,
        name=name,
        id=f"logs-{name}",
        width=width,
    )


def find_box() -> rx.Component:
    """Narrows the organization, user and app selects as one types (the API's search); it is
    not a filter of the log and stays out of the address (Enter applies the filter as is)."""
    return rx.debounce_input(
        rx.input(
            value=LogsState.option_search,
            on_change=LogsState.find_options,
            placeholder="Find org, user or app",
            id="logs-find",
            width="13em",
        ),
        debounce_timeout=300,
    )


def filter_bar() -> rx.Component:
    custom = LogsState.filters["range"] == "custom"
    return rx.form(
        rx.flex(
            _text("q", "Search: request id, key prefix, model", "18em"),
            rx.cond(LogsState.is_admin, find_box()),
            rx.cond(LogsState.is_admin, _select("org", "All organizations", LogsState.org_options)),
            rx.cond(LogsState.is_admin, _select("user", "All users", LogsState.user_options)),
            rx.cond(LogsState.is_admin, _select("app", "All apps", LogsState.app_options)),
            _text("model", "Model"),
            _text("provider", "Provider", "8em"),
            _text("status", "Status", "6em"),
            _text("key", "Key prefix", "9em"),
            _select("endpoint", "All endpoints", None, static=DOOR_OPTIONS[1:]),
            rx.checkbox(
                "Errors only",
                checked=LogsState.filters["errors"] == "1",
                on_change=lambda v: LogsState.choose("errors", v),
                id="logs-errors",
                name="errors",
            ),
            _select("range", "Any time", None, static=TIME_PRESETS[1:]),
            rx.cond(
                custom,
                rx.hstack(
                    rx.input(
                        type="datetime-local",
                        value=LogsState.filters["since"],
                        on_change=lambda v: LogsState.set_field("since", v),
                        id="logs-since",
                        name="since",
                        title="From (UTC)",
                    ),
                    rx.text("to", size="2"),
                    rx.input(
                        type="datetime-local",
                        value=LogsState.filters["until"],
                        on_change=lambda v: LogsState.set_field("until", v),
                        id="logs-until",
                        name="until",
                        title="Until (UTC)",
                    ),
                    rx.text("UTC", size="1", color_scheme="gray"),
                    align="center",
                ),
            ),
            rx.button("Apply", type="submit", size="2", id="logs-apply"),
            rx.cond(
                LogsState.filtered,
                rx.button(
                    "Clear",
                    type="button",
                    size="2",
                    variant="soft",
                    on_click=LogsState.clear_filters,
                    id="logs-clear",
                ),
            ),
            wrap="wrap",
            gap="2",
            align="center",
        ),
        on_submit=LogsState.apply_filters,
        reset_on_submit=False,
        width="100%",
    )


def page() -> rx.Component:
    return shell(
        "Gateway Logs",
        rx.moment(
            interval=10_000, format="HH:mm:ss", on_change=LogsState.heartbeat, display="none"
        ),
        rx.hstack(
            rx.text(
                "Requests through the gateway's OpenAI, Anthropic and Gemini endpoints. "
                "Open a request for its attempts, tokens, cost and why it failed. "
                "The filter is in the address: copy it to share this view.",
                color_scheme="gray",
            ),
            rx.spacer(),
            live_badge(),
            width="100%",
        ),
        filter_bar(),
        rx.cond(
            LogsState.option_note != "",
            rx.text(LogsState.option_note, size="1", color_scheme="gray", id="logs-option-note"),
        ),
        error_text(LogsState.error),
        rx.text(LogsState.page_label, id="logs-total", size="2", weight="medium"),
        rx.box(
            data_table(
                HEADERS,
                LogsState.rows,
                row,
                empty="No requests match. Point an SDK at the gateway with an API key, or "
                "widen the filter.",
                is_loading=LogsState.loading,
                table_id="logs-table",
            ),
            width="100%",
            overflow_x="auto",
        ),
        pager(
            LogsState.page_label,
            LogsState.has_prev,
            LogsState.has_next,
            LogsState.prev_page,
            LogsState.next_page,
        ),
        who="all",
    )
