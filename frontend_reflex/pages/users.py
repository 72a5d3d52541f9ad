"""Users: Create User (expand), the users table and its actions."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import (
    error_text,
    expand,
    loading,
    ok_text,
    secret_once,
    stat_card,
    text_input,
)
from frontend_reflex.components.confirm import confirm_dialog
from frontend_reflex.components.forms import choice_select, role_select, row_button, submit
from frontend_reflex.components.guard import guarded, op_button
from frontend_reflex.components.layout import shell
from frontend_reflex.components.limits import limits_button, limits_dialog
from frontend_reflex.components.table import data_table, num, pager_of, search_box
from frontend_reflex.state.limits import LimitsState
from frontend_reflex.state.users import UsersState

HEADERS = ["Name", "Status", "Role", "Weekly Cap", "Organization", "Actions"]


def create_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                text_input("name", "Name", placeholder="Grace Hopper", id="user-name"),
                text_input("email", "Email", placeholder="grace@example.com", id="user-email"),
                text_input(
                    "password",
                    "Password (for dashboard sign-in)",
                    type="password",
                    placeholder="optional",
                    id="user-password",
                ),
                wrap="wrap",
                spacing="3",
            ),
            rx.hstack(
                role_select(id="user-role"),
                text_input("weekly_cap", "Weekly Cap (USD)", placeholder="no cap", id="user-cap"),
                choice_select(UsersState, "organization_id", "Organization", "user-org"),
                wrap="wrap",
                spacing="3",
                align="end",
            ),
            error_text(UsersState.create_error),
            ok_text(UsersState.create_ok),
            submit("Create user", "create-user"),
            spacing="3",
        ),
        on_submit=UsersState.create,
        id="create-user-form",
    )


def edit_dialog() -> rx.Component:
    e = UsersState.editing
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Edit ", e["name"]),
            rx.form(
                rx.vstack(
                    text_input("name", "Name", default_value=e["name"], id="edit-name"),
                    role_select(default=e["role"], id="edit-role"),
                    text_input(
                        "weekly_cap",
                        "Weekly Cap (USD)",
                        default_value=e["weekly_cap_raw"],
                        placeholder="no cap",
                        id="edit-cap",
                    ),
                    choice_select(
                        UsersState, "organization_id", "Organization", "edit-org", editing=True
                    ),
                    text_input(
                        "password",
                        "New password",
                        type="password",
                        placeholder="leave empty to keep",
                        id="edit-password",
                    ),
                    error_text(UsersState.edit_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", type="button")),
                        submit("Save", "save-user"),
                    ),
                    spacing="3",
                ),
                on_submit=UsersState.save_edit,
            ),
        ),
        open=UsersState.edit_open,
        on_open_change=UsersState.close_edit,
    )


def usage_dialog() -> rx.Component:
    s = UsersState.usage_summary
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(UsersState.usage_title),
            error_text(UsersState.usage_error),
            rx.cond(
                s.length() > 0,  # type: ignore[attr-defined]
                rx.vstack(
                    rx.text("Last 30 days", weight="bold", size="2"),
                    rx.hstack(
                        stat_card("Requests", s["requests"]),
                        stat_card("Input tokens", s["input"]),
                        stat_card("Output tokens", s["output"]),
                        stat_card("Cost", s["cost"]),
                        wrap="wrap",
                    ),
                    rx.text(
                        "This week (UTC): ",
                        s["week"],
                        " of ",
                        s["cap"],
                        " over ",
                        s["week_requests"],
                        " request(s).",
                        size="2",
                    ),
                    rx.text("Errors in 30 days: ", s["errors"], size="1", color_scheme="gray"),
                ),
                rx.cond(UsersState.usage_error == "", rx.spinner()),
            ),
            rx.dialog.close(rx.button("Close", variant="soft", margin_top="1em")),
            max_width="48em",
        ),
        open=UsersState.usage_open,
        on_open_change=UsersState.close_usage,
    )


def row(r: Any) -> rx.Component:
    suspended = r["status"] == "suspended"
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(r["name"]), rx.text(r["email"], size="1", color_scheme="gray"), spacing="0"
            )
        ),
        rx.table.cell(rx.badge(r["status"], color_scheme=rx.cond(suspended, "red", "green"))),
        rx.table.cell(r["role"]),
        num(r["weekly_cap"]),
        rx.table.cell(r["organization"]),
        rx.table.cell(
            rx.hstack(
                op_button("Edit", UsersState.open_edit, r, op="Mutation.updateUser"),
                op_button(
                    rx.cond(suspended, "Activate", "Suspend"),
                    UsersState.toggle_status,
                    r,
                    color="amber",
                    op="Mutation.updateUser",
                ),
                op_button(
                    "Issue key", UsersState.issue_key, r, color="indigo", op="Mutation.createApiKey"
                ),
                limits_button(LimitsState.open_user, r, custom_attrs={"data-op": "Query.limits"}),
                op_button("Usage", UsersState.view_usage, r, op="Query.userUsage"),
                row_button("Export", UsersState.export, r),
                spacing="1",
                wrap="nowrap",
            )
        ),
    )


def page() -> rx.Component:
    return shell(
        "Users",
        guarded("Mutation.createUser", expand("Create User", create_form())),
        search_box(UsersState, "Search name or email", "users-q"),
        error_text(UsersState.error),
        error_text(UsersState.table_error),
        loading(UsersState.loading),
        data_table(
            HEADERS,
            UsersState.rows,
            row,
            empty=rx.cond(UsersState.filtered, "No users match.", "No users yet."),
            is_loading=UsersState.loading,
            table_id="users-table",
            numeric=("Weekly Cap",),
        ),
        pager_of(UsersState, "users-pager"),
        edit_dialog(),
        usage_dialog(),
        limits_dialog(),
        secret_once(UsersState.secret, UsersState.hide_secret),
        confirm_dialog(UsersState),
    )
