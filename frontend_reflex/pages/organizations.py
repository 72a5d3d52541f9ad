"""Organizations: create, and the table with owner, members, spend cap, rollover, DLP and
whether members sign in with SSO only."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import (
    error_text,
    expand,
    loading,
    native_select,
    ok_text,
    text_input,
)
from frontend_reflex.components.forms import PERIODS, checkbox, choice_select, submit
from frontend_reflex.components.guard import guarded, op_button
from frontend_reflex.components.layout import shell
from frontend_reflex.components.limits import limits_button, limits_dialog
from frontend_reflex.components.table import data_table, num, pager_of, search_box
from frontend_reflex.state.limits import LimitsState
from frontend_reflex.state.orgs import OrgsState

HEADERS = [
    "Name",
    "Slug",
    "Owner",
    "Members",
    "API Spend Cap",
    "Rollover",
    "DLP",
    "Sign-in",
    "Created",
    "Actions",
]


def owner_select(select_id: str, *, editing: bool = False) -> rx.Component:
    return choice_select(OrgsState, "owner_id", "Owner", select_id, editing=editing)


def create_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                text_input("name", "Name", placeholder="Acme Corp", id="org-name"),
                text_input(
                    "slug", "Slug", placeholder="acme (from the name if empty)", id="org-slug"
                ),
                owner_select("org-owner"),
                wrap="wrap",
                spacing="3",
                align="end",
            ),
            rx.hstack(
                text_input("spend_cap", "API Spend Cap (USD)", placeholder="no cap", id="org-cap"),
                native_select(
                    "cap_period", "Cap period", PERIODS, default="monthly", id="org-period"
                ),
                checkbox("rollover", "Roll unused budget over", id="org-rollover"),
                checkbox("dlp", "DLP protection", id="org-dlp"),
                checkbox("sso_only", "SSO only (no passwords)", id="org-sso-only"),
                wrap="wrap",
                spacing="3",
                align="end",
            ),
            error_text(OrgsState.create_error),
            ok_text(OrgsState.create_ok),
            submit("Create organization", "create-org"),
            spacing="3",
        ),
        on_submit=OrgsState.create,
    )


def edit_dialog() -> rx.Component:
    e = OrgsState.editing
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Edit ", e["name"]),
            rx.form(
                rx.vstack(
                    text_input("name", "Name", default_value=e["name"], id="edit-org-name"),
                    owner_select("edit-org-owner", editing=True),
                    text_input(
                        "spend_cap",
                        "API Spend Cap (USD)",
                        default_value=e["cap_raw"],
                        placeholder="no cap",
                        id="edit-org-cap",
                    ),
                    native_select(
                        "cap_period",
                        "Cap period",
                        PERIODS,
                        default=e["period"],
                        id="edit-org-period",
                    ),
                    checkbox(
                        "rollover",
                        "Roll unused budget over",
                        default=e["rollover"] == "on",
                        id="edit-org-rollover",
                    ),
                    checkbox("dlp", "DLP protection", default=e["dlp"] == "on", id="edit-org-dlp"),
                    checkbox(
                        "sso_only",
                        "SSO only (no passwords)",
                        default=e["sso_only"] == "on",
                        id="edit-org-sso-only",
                    ),
                    error_text(OrgsState.edit_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", type="button")),
                        submit("Save", "save-org"),
                    ),
                    spacing="3",
                ),
                on_submit=OrgsState.save_edit,
            ),
        ),
        open=OrgsState.edit_open,
        on_open_change=OrgsState.close_edit,
    )


def row(r: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r["name"]),
        rx.table.cell(rx.code(r["slug"])),
        rx.table.cell(r["owner"]),
        num(r["members"]),
        num(r["cap"]),
        rx.table.cell(r["rollover"]),
        rx.table.cell(rx.badge(r["dlp"], color_scheme=rx.cond(r["dlp"] == "on", "green", "gray"))),
        rx.table.cell(rx.cond(r["sso_only"] == "on", rx.badge("SSO only"), "password or SSO")),
        rx.table.cell(r["created"]),
        rx.table.cell(
            rx.hstack(
                op_button("Edit", OrgsState.open_edit, r, op="Mutation.updateOrganization"),
                op_button(
                    rx.cond(r["dlp"] == "on", "Disable DLP", "Enable DLP"),
                    OrgsState.toggle_dlp,
                    r,
                    color="indigo",
                    op="Mutation.setDlpProtection",
                ),
                limits_button(LimitsState.open_org, r, custom_attrs={"data-op": "Query.limits"}),
                spacing="1",
                wrap="nowrap",
            )
        ),
    )


def page() -> rx.Component:
    return shell(
        "Organizations",
        guarded("Mutation.createOrganization", expand("Create Organization", create_form())),
        search_box(OrgsState, "Search name or slug", "orgs-q"),
        error_text(OrgsState.error),
        error_text(OrgsState.table_error),
        loading(OrgsState.loading),
        data_table(
            HEADERS,
            OrgsState.rows,
            row,
            empty=rx.cond(OrgsState.filtered, "No organizations match.", "No organizations yet."),
            is_loading=OrgsState.loading,
            table_id="orgs-table",
            numeric=("Members", "API Spend Cap"),
        ),
        pager_of(OrgsState, "orgs-pager"),
        edit_dialog(),
        limits_dialog(),
    )
