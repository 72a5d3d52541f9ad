"""Audit Log: every administrative change, newest first, with filters."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components.common import error_text, loading, native_select, text_input
from frontend_reflex.components.forms import choice_note, find_box
from frontend_reflex.components.layout import shell
from frontend_reflex.components.ranges import range_picker
from frontend_reflex.components.table import data_table, pager_of
from frontend_reflex.state.audit import AuditState as S


def page() -> rx.Component:
    filters = rx.form(
        rx.flex(
            text_input(
                "action",
                "Action starts with",
                placeholder="user., alias.delete",
                id="audit-action",
                value=S.filters["action"],
                on_change=lambda v: S.set_field("action", v),
            ),
            text_input(
                "target",
                "Target starts with",
                placeholder="user:42, alias",
                id="audit-target",
                value=S.filters["target"],
                on_change=lambda v: S.set_field("target", v),
            ),
            native_select(
                "actor",
                "Who",
                dynamic=S.choice_options,
                blank="anyone",
                id="audit-actor",
                default=None,
                value=S.filters["actor"],
                on_change=lambda v: S.choose("actor", v),
            ),
            find_box(S, "Find who by name or email", "audit-find"),
            rx.button("Filter", type="submit", id="audit-filter"),
            wrap="wrap",
            gap="3",
            align="end",
        ),
        on_submit=S.apply_filters,
        reset_on_submit=False,
    )
    return shell(
        "Audit Log",
        rx.text(
            "Who changed what, and when. Details name the fields changed, never their values.",
            color_scheme="gray",
        ),
        range_picker(S, "audit"),
        filters,
        choice_note(S, "audit-note"),
        error_text(S.error),
        loading(S.loading),
        data_table(
            ["When", "Who", "Action", "Target", "Fields"],
            S.rows,
            lambda r: rx.table.row(
                rx.table.cell(r["when"], white_space="nowrap"),
                rx.table.cell(r["who"]),
                rx.table.cell(rx.code(r["action"])),
                rx.table.cell(rx.code(r["target"])),
                rx.table.cell(rx.text(r["detail"], size="1")),
                class_name="sb-audit-row",
            ),
            empty="No changes match these filters.",
            is_loading=S.loading,
            table_id="audit-table",
        ),
        pager_of(S, "audit-pager"),
        who="super",
    )
