"""Keys: every API key the viewer may manage, with revoke, rotate, limits and expiry."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import SELECT_STYLE, error_text, ok_text, secret_once
from frontend_reflex.components.forms import choice_note, find_box, row_button
from frontend_reflex.components.layout import shell
from frontend_reflex.components.limits import limits_button, limits_dialog
from frontend_reflex.components.table import data_table, pager
from frontend_reflex.state.keys import GRACE_OPTIONS, KeysState
from frontend_reflex.state.limits import LimitsState

HEADERS = [
    "Name",
    "Owner",
    "Key",
    "Status",
    "Created",
    "Expires",
    "Last used",
    "Spend this period",
    "Rate limit",
    "",
]


def _status(value: Any) -> rx.Component:
    return rx.badge(value, color_scheme=rx.cond(value == "active", "green", "gray"))


def row(k: Any) -> rx.Component:
    active = k["status"] == "active"
    return rx.table.row(
        rx.table.cell(k["name"]),
        rx.table.cell(
            rx.vstack(
                rx.text(k["owner"], size="2"),
                rx.text(k["org"], size="1", color_scheme="gray"),
                spacing="0",
            )
        ),
        rx.table.cell(rx.code(k["prefix"], "…"), white_space="nowrap"),
        rx.table.cell(_status(k["status"])),
        rx.table.cell(k["created"], white_space="nowrap"),
        rx.table.cell(k["expires"], white_space="nowrap"),
        rx.table.cell(k["last_used"], white_space="nowrap", class_name="sb-last-used"),
        rx.table.cell(k["spend"], class_name="sb-spend"),
        rx.table.cell(
            rx.hstack(
                rx.text(k["rate"]),
                rx.cond(k["locked"] == "yes", rx.icon("lock", size=12)),
                align="center",
                spacing="1",
            )
        ),
        rx.table.cell(
            rx.cond(
                active,
                rx.hstack(
                    limits_button(LimitsState.open_key, k),
                    row_button("Rotate", KeysState.open_action, "rotate", k, color="indigo"),
                    row_button("Expiry", KeysState.open_action, "expiry", k),
                    row_button("Revoke", KeysState.open_action, "revoke", k, color="red"),
                    spacing="1",
                    wrap="wrap",
                ),
            )
        ),
        class_name="sb-key-row",
    )


def _select(
    name: str, label: str, options: list[tuple[str, str]], dynamic: Any = None
) -> rx.Component:
    items: list[rx.Component] = [rx.el.option(label, value="")]
    items.extend(rx.el.option(text, value=value) for value, text in options)
    if dynamic is not None:
        items.append(rx.foreach(dynamic, lambda o: rx.el.option(o["label"], value=o["value"])))
    return rx.el.select(
        *items,
        value=KeysState.filters[name],
        on_change=lambda v: KeysState.choose(name, v),
        id=f"keys-{name}",
        name=name,
        class_name="sb-select",
        **SELECT_STYLE,
    )


def filter_bar() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.input(
                value=KeysState.filters["q"],
                on_change=lambda v: KeysState.set_field("q", v),
                placeholder="Search name or prefix",
                id="keys-q",
                name="q",
                width="16em",
            ),
            _select("kind", "User and app keys", [("USER", "User keys"), ("APP", "App keys")]),
            _select(
                "status",
                "Any status",
                [("ACTIVE", "Active"), ("REVOKED", "Revoked"), ("EXPIRED", "Expired")],
            ),
            rx.cond(KeysState.is_super, find_box(KeysState, "Find organization", "keys-find")),
            rx.cond(
                KeysState.is_super,
                _select("org", "All organizations", [], KeysState.choice_options),
            ),
            rx.button("Search", type="submit", size="2", id="keys-apply"),
            wrap="wrap",
            gap="2",
            align="center",
        ),
        on_submit=KeysState.apply_filters,
        reset_on_submit=False,
        width="100%",
    )


def _rotate_form() -> rx.Component:
    return rx.vstack(
        rx.text(
            "A new key with the same owner, name, limits and expiry is issued; its secret is "
            "shown once. The old key stops working now, or after the grace period you choose "
            "(so clients can switch without an outage).",
            size="2",
        ),
        rx.el.select(
            *[rx.el.option(text, value=value) for value, text in GRACE_OPTIONS],
            value=KeysState.grace,
            on_change=KeysState.set_grace,
            id="rotate-grace",
            class_name="sb-select",
            **SELECT_STYLE,
        ),
        rx.cond(
            KeysState.grace == "custom",
            rx.input(
                value=KeysState.grace_custom,
                on_change=KeysState.set_grace_custom,
                placeholder="Seconds",
                id="rotate-grace-seconds",
            ),
        ),
        spacing="2",
        width="100%",
    )


def _expiry_form() -> rx.Component:
    return rx.vstack(
        rx.text(
            "Requests with the key are refused from then on. Empty: it never expires.", size="2"
        ),
        rx.hstack(
            rx.input(
                type="datetime-local",
                value=KeysState.expiry,
                on_change=KeysState.set_expiry,
                id="key-expiry",
            ),
            rx.text("UTC", size="1", color_scheme="gray"),
            align="center",
        ),
        spacing="2",
    )


def action_dialog() -> rx.Component:
    action = KeysState.action
    title = rx.match(
        action,
        ("revoke", "Revoke key "),
        ("rotate", "Rotate key "),
        ("expiry", "Expiry of key "),
        "Key ",
    )
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(
                title, KeysState.chosen["name"], " (", KeysState.chosen["prefix"], "…)"
            ),
            rx.dialog.description(KeysState.chosen["owner"], size="2"),
            rx.box(
                rx.match(
                    action,
                    (
                        "revoke",
                        rx.text(
                            "Requests with this key are refused from now on, on every gateway "
                            "instance. This cannot be undone.",
                            size="2",
                        ),
                    ),
                    ("rotate", _rotate_form()),
                    ("expiry", _expiry_form()),
                    rx.fragment(),
                ),
                padding_y="0.75em",
            ),
            error_text(KeysState.action_error),
            rx.hstack(
                rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.button(
                    rx.match(action, ("revoke", "Revoke"), ("rotate", "Rotate"), "Save"),
                    color_scheme=rx.cond(action == "revoke", "red", "indigo"),
                    on_click=KeysState.confirm_action,
                    id="confirm-key-action",
                ),
                justify="end",
                spacing="2",
            ),
        ),
        open=action != "",
        on_open_change=KeysState.close_action,
    )


def page() -> rx.Component:
    return shell(
        "Keys",
        rx.text(
            "Every API key you may manage: users' keys and apps' keys. Spend is this period's "
            "(the key's cap period, or the month), from the request log.",
            color_scheme="gray",
        ),
        filter_bar(),
        choice_note(KeysState, "keys-org-note"),
        error_text(KeysState.error),
        ok_text(KeysState.action_ok),
        rx.text(KeysState.page_label, id="keys-total", size="2", weight="medium"),
        rx.box(
            data_table(
                HEADERS,
                KeysState.rows,
                row,
                empty="No keys match.",
                is_loading=KeysState.loading,
                table_id="keys-table",
            ),
            width="100%",
            overflow_x="auto",
        ),
        pager(
            KeysState.page_label,
            KeysState.has_prev,
            KeysState.has_next,
            KeysState.prev_page,
            KeysState.next_page,
        ),
        action_dialog(),
        limits_dialog(),
        secret_once(KeysState.secret, KeysState.forget_secret, "New key (rotated)"),
        who="all",
    )
