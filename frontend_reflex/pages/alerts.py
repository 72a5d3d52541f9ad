"""The "Alerts" section of the settings page: channels with "send test", rules, deliveries."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import (
    error_text,
    native_select,
    ok_text,
    section,
    text_input,
)
from frontend_reflex.components.forms import checkbox, row_button, submit
from frontend_reflex.components.table import data_table
from frontend_reflex.state.alerts import AlertsState

A = AlertsState
CHANNEL_KINDS = [("webhook", "Webhook (JSON)"), ("slack", "Slack webhook"), ("email", "Email")]
RULE_KINDS = [("cap", "Spend cap"), ("circuit", "Circuit open"), ("error_rate", "Error rate")]
SCOPES = [
    ("", "every cap"),
    ("user", "users"),
    ("org", "organizations"),
    ("app", "apps"),
    ("key", "keys"),
]
SECURITIES = [("none", "none"), ("starttls", "STARTTLS"), ("tls", "TLS")]
STATUS_COLORS = {"sent": "green", "pending": "amber", "failed": "red"}


def _channel(c: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(c["name"])),
        rx.table.cell(c["kind"]),
        rx.table.cell(c["target"]),
        rx.table.cell(rx.code(c["secret"], class_name="sb-masked")),
        rx.table.cell(c["enabled"]),
        rx.table.cell(
            rx.hstack(
                row_button("Send test", A.send_test, c, color="blue"),
                row_button("Delete", A.delete_channel, c, color="red"),
                spacing="2",
            )
        ),
        class_name="sb-alert-channel",
    )


def _rule(r: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(r["name"])),
        rx.table.cell(r["kind"]),
        rx.table.cell(r["watches"]),
        rx.table.cell(r["channels"]),
        rx.table.cell(r["enabled"]),
        rx.table.cell(row_button("Delete", A.delete_rule, r, color="red")),
    )


def _delivery(d: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(d["when"]),
        rx.table.cell(d["title"]),
        rx.table.cell(d["channel"]),
        rx.table.cell(
            rx.badge(
                d["status"],
                color_scheme=rx.match(d["status"], *STATUS_COLORS.items(), "gray"),
                class_name="sb-alert-status",
            )
        ),
        rx.table.cell(d["attempts"]),
        rx.table.cell(rx.text(d["error"], size="1", color_scheme="gray")),
        class_name="sb-alert-delivery",
    )


def _channel_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            text_input("name", "Channel", placeholder="ops", id="alert-channel-name"),
            native_select("kind", "Kind", CHANNEL_KINDS, default="webhook", id="alert-kind"),
            text_input("url", "URL (webhook)", placeholder="https://...", id="alert-url"),
            text_input(
                "secret",
                "Signing secret / SMTP password",
                type="password",
                placeholder="write-only; empty: keep",
                id="alert-secret",
                auto_complete="off",
            ),
            text_input("smtp_host", "SMTP host", placeholder="email only", id="alert-smtp-host"),
            text_input("smtp_port", "Port", placeholder="25", id="alert-smtp-port"),
            native_select("smtp_security", "Security", SECURITIES, default="none"),
            text_input("sender", "From", placeholder="gateway@...", id="alert-sender"),
            text_input("recipients", "To", placeholder="a@x, b@x", id="alert-recipients"),
            checkbox("enabled", "Enabled", default=True, id="alert-channel-enabled"),
            submit("Save channel", "save-alert-channel"),
            align="end",
            wrap="wrap",
            spacing="3",
        ),
        on_submit=A.save_channel,
    )


def _rule_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            text_input("name", "Rule", placeholder="caps", id="alert-rule-name"),
            native_select("kind", "Watches", RULE_KINDS, default="cap", id="alert-rule-kind"),
            text_input("thresholds", "Thresholds %", placeholder="50, 80, 100", id="alert-th"),
            native_select("scope_kind", "Caps of", SCOPES, default="", id="alert-scope"),
            text_input("provider", "Provider", placeholder="any", id="alert-provider"),
            text_input("error_rate", "Error rate %", placeholder="20", id="alert-rate"),
            text_input("channels", "Channels", placeholder="ops, mail", id="alert-channels"),
            checkbox("enabled", "Enabled", default=True, id="alert-rule-enabled"),
            submit("Save rule", "save-alert-rule"),
            align="end",
            wrap="wrap",
            spacing="3",
        ),
        on_submit=A.save_rule,
    )


def alerts_section() -> rx.Component:
    return rx.box(
        section(
            "Alerts",
            rx.moment(interval=10_000, format="HH:mm:ss", on_change=A.tick, display="none"),
            data_table(
                ["Channel", "Kind", "Target", "Secret", "Status", ""],
                A.channels,
                _channel,
                empty="No channels: alerts have nowhere to go.",
                table_id="alert-channels-table",
            ),
            _channel_form(),
            data_table(
                ["Rule", "Kind", "Watches", "Channels", "Status", ""],
                A.rules,
                _rule,
                empty="No rules: nothing is watched.",
                table_id="alert-rules-table",
            ),
            _rule_form(),
            error_text(A.alert_error),
            ok_text(A.alert_ok),
            rx.heading("Recent alerts", size="3", as_="h3"),
            data_table(
                ["When", "Alert", "Channel", "Delivery", "Attempts", "Last error"],
                A.deliveries,
                _delivery,
                empty="Nothing has fired yet.",
                table_id="alert-deliveries-table",
            ),
            description=(
                "Spend reaching 50/80/100% of a cap, a provider's circuit opening or its error "
                "rate crossing a bound: sent once per threshold and period to a signed webhook, a "
                "Slack webhook or email, retried with backoff until delivered."
            ),
        ),
        on_mount=A.load,
        width="100%",
    )
