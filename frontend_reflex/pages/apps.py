"""Apps: Create App (expand), the apps table, and app keys shown once."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import (
    error_text,
    expand,
    loading,
    ok_text,
    secret_once,
    text_input,
)
from frontend_reflex.components.confirm import confirm_dialog
from frontend_reflex.components.forms import checkbox, choice_select, submit
from frontend_reflex.components.guard import guarded, op_button
from frontend_reflex.components.layout import shell
from frontend_reflex.components.limits import limits_button, limits_dialog
from frontend_reflex.components.table import data_table, pager_of, search_box
from frontend_reflex.state.apps import AppsState
from frontend_reflex.state.limits import LimitsState

HEADERS = ["Name", "Slug", "Contact", "Active", "DLP", "Created", "Actions"]


def create_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                text_input("name", "Name", placeholder="Billing bot", id="app-name"),
                text_input(
                    "slug",
                    "Slug",
                    placeholder="billing-bot (from the name if empty)",
                    id="app-slug",
                ),
                text_input("contact", "Contact", placeholder="team@example.com", id="app-contact"),
                choice_select(AppsState, "organization_id", "Organization", "app-org"),
                checkbox("dlp", "DLP protection", id="app-dlp"),
                wrap="wrap",
                spacing="3",
                align="end",
            ),
            error_text(AppsState.create_error),
            ok_text(AppsState.create_ok),
            submit("Create app", "create-app"),
            spacing="3",
        ),
        on_submit=AppsState.create,
    )


def edit_dialog() -> rx.Component:
    e = AppsState.editing
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Edit ", e["name"]),
            rx.form(
                rx.vstack(
                    text_input("name", "Name", default_value=e["name"], id="edit-app-name"),
                    text_input(
                        "contact", "Contact", default_value=e["contact_raw"], id="edit-app-contact"
                    ),
                    choice_select(
                        AppsState, "organization_id", "Organization", "edit-app-org", editing=True
                    ),
                    checkbox(
                        "active", "Active", default=e["active"] == "active", id="edit-app-active"
                    ),
                    checkbox("dlp", "DLP protection", default=e["dlp"] == "on", id="edit-app-dlp"),
                    error_text(AppsState.edit_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", type="button")),
                        submit("Save", "save-app"),
                    ),
                    spacing="3",
                ),
                on_submit=AppsState.save_edit,
            ),
        ),
        open=AppsState.edit_open,
        on_open_change=AppsState.close_edit,
    )


def row(r: Any) -> rx.Component:
    active = r["active"] == "active"
    return rx.table.row(
        rx.table.cell(r["name"]),
        rx.table.cell(rx.code(r["slug"])),
        rx.table.cell(r["contact"]),
        rx.table.cell(rx.badge(r["active"], color_scheme=rx.cond(active, "green", "red"))),
        rx.table.cell(rx.badge(r["dlp"], color_scheme=rx.cond(r["dlp"] == "on", "green", "gray"))),
        rx.table.cell(r["created"]),
        rx.table.cell(
            rx.hstack(
                op_button("Edit", AppsState.open_edit, r, op="Mutation.updateApp"),
                op_button(
                    rx.cond(active, "Deactivate", "Activate"),
                    AppsState.toggle_active,
                    r,
                    color="amber",
                    op="Mutation.updateApp",
                ),
                op_button(
                    rx.cond(r["dlp"] == "on", "Disable DLP", "Enable DLP"),
                    AppsState.toggle_dlp,
                    r,
                    op="Mutation.updateApp",
                ),
                op_button(
                    "Issue app key",
                    AppsState.issue_key,
                    r,
                    color="indigo",
                    op="Mutation.createApiKey",
                ),
                limits_button(LimitsState.open_app, r, custom_attrs={"data-op": "Query.limits"}),
                spacing="1",
                wrap="nowrap",
            )
        ),
    )


def page() -> rx.Component:
    return shell(
        "Apps",
        guarded("Mutation.createApp", expand("Create App", create_form())),
        search_box(AppsState, "Search name or slug", "apps-q"),
        error_text(AppsState.error),
        error_text(AppsState.table_error),
        loading(AppsState.loading),
        data_table(
            HEADERS,
            AppsState.rows,
            row,
            empty=rx.cond(AppsState.filtered, "No apps match.", "No apps yet."),
            is_loading=AppsState.loading,
            table_id="apps-table",
        ),
        pager_of(AppsState, "apps-pager"),
        edit_dialog(),
        limits_dialog(),
        confirm_dialog(AppsState),
        secret_once(AppsState.secret, AppsState.hide_secret, title="New app key"),
    )
