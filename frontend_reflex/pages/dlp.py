"""DLP: what it does, the switch per organization/app, and recent activity (never values)."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components.common import error_text, loading, section
from frontend_reflex.components.guard import op_button
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table, num, pager, pager_of
from frontend_reflex.state.dlp import DlpActivityState, DlpState

INTRO = (
    "Sensitive values — email addresses, phone numbers, card numbers, IBANs, national ids, IP "
    "addresses, API keys and private keys, and your own patterns — are replaced with numbered "
    "placeholders such as "
)
INTRO_END = (
    " before reaching the LLM provider — the model can still reason about them by reference, "
    "but the raw value never leaves your infrastructure. Answers are restored before they reach "
    "the caller, streaming included."
)


def page() -> rx.Component:
    return shell(
        "DLP",
        rx.text(INTRO, rx.code("[EMAIL_1]"), INTRO_END, color_scheme="gray"),
        rx.text(
            "Turn protection on per-organization (for user keys) or per-app (for app keys).",
            weight="medium",
        ),
        error_text(DlpState.error),
        error_text(DlpState.table_error),
        loading(DlpState.loading),
        data_table(
            ["Name", "Status", "Rules enabled", "Last activity", ""],
            DlpState.rows,
            lambda r: rx.table.row(
                rx.table.cell(r["name"]),
                rx.table.cell(
                    rx.badge(
                        r["status"],
                        color_scheme=rx.cond(r["status"] == "protected", "green", "gray"),
                    )
                ),
                rx.table.cell(r["rules"]),
                rx.table.cell(r["last"]),
                rx.table.cell(
                    op_button(
                        rx.cond(r["status"] == "protected", "Turn off", "Turn on"),
                        DlpState.toggle,
                        r,
                        color="indigo",
                        op="Mutation.setDlpProtection",
                    )
                ),
            ),
            empty="No organizations or apps yet: create one, then turn protection on here.",
            is_loading=DlpState.loading,
            table_id="dlp-table",
        ),
        pager_of(DlpState, "dlp-pager"),
        section(
            "Recent activity",
            error_text(DlpActivityState.error),
            data_table(
                ["When", "Kind", "Scope", "Rule", "Matches", "Size", "Request", "Detail"],
                DlpActivityState.rows,
                lambda a: rx.table.row(
                    rx.table.cell(a["when"], white_space="nowrap"),
                    rx.table.cell(a["kind"]),
                    rx.table.cell(a["scope"]),
                    rx.table.cell(a["rule"]),
                    num(a["matches"]),
                    num(a["size"]),
                    rx.table.cell(
                        rx.link(rx.code(a["request"]), href=a["href"], class_name="sb-request-link")
                    ),
                    rx.table.cell(a["detail"]),
                ),
                empty=(
                    "Enable protection for an organization or app, then make a request — "
                    "activity will appear here."
                ),
                is_loading=DlpActivityState.loading,
                table_id="dlp-activity-table",
                numeric=("Matches", "Size"),
            ),
            pager(
                DlpActivityState.page_label,
                DlpActivityState.has_prev,
                DlpActivityState.has_next,
                DlpActivityState.prev_page,
                DlpActivityState.next_page,
            ),
        ),
    )
