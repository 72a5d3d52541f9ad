"""The "Provider Deployments" section of the settings page: table with live load and a form."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import error_text, ok_text, section, text_input
from frontend_reflex.components.forms import checkbox, row_button, submit
from frontend_reflex.components.table import data_table
from frontend_reflex.state.deployments import DeploymentsState

D = DeploymentsState
HEALTH_COLORS = {
    "healthy": "green",
    "degraded": "orange",
    "rate_limited": "amber",
    "down": "red",
    "broken": "red",
}


def _health(value: Any) -> rx.Component:
    color = rx.match(value, *HEALTH_COLORS.items(), "gray")
    return rx.badge(value, color_scheme=color, class_name="sb-dep-health")


def _row(d: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(d["provider"], "/", d["name"])),
        rx.table.cell(d["endpoint"]),
        rx.table.cell(rx.code(d["secret"], class_name="sb-masked")),
        rx.table.cell(d["weight"]),
        rx.table.cell(d["limits"]),
        rx.table.cell(d["models"]),
        rx.table.cell(rx.vstack(rx.text(d["load"], size="1"), rx.text(d["totals"], size="1"))),
        rx.table.cell(
            rx.vstack(_health(d["health"]), rx.text(d["detail"], size="1", color_scheme="gray"))
        ),
        rx.table.cell(
            rx.hstack(
                row_button(rx.cond(d["enabled"] == "yes", "Disable", "Enable"), D.toggle, d),
                row_button("Delete", D.delete, d, color="red"),
                spacing="2",
            )
        ),
        class_name="sb-dep-row",
    )


def deployments_section() -> rx.Component:
    form = rx.form(
        rx.hstack(
            text_input("provider", "Provider", placeholder="openai", id="dep-provider"),
            text_input("name", "Name", placeholder="account-b", id="dep-name"),
            text_input("base_url", "Base URL", placeholder="provider's", id="dep-url"),
            text_input(
                "api_key",
                "API key",
                type="password",
                placeholder="write-only; empty: keep",
                id="dep-key",
                auto_complete="off",
            ),
            text_input("weight", "Weight", placeholder="1", id="dep-weight"),
            text_input("rpm_limit", "RPM limit", placeholder="none", id="dep-rpm"),
            text_input("tpm_limit", "TPM limit", placeholder="none", id="dep-tpm"),
            text_input("models", "Models", placeholder="all (or gpt-4o, ...)", id="dep-models"),
            checkbox("enabled", "Enabled", default=True, id="dep-enabled"),
            submit("Save deployment", "save-deployment"),
            align="end",
            wrap="wrap",
            spacing="3",
        ),
        on_submit=D.save,
    )
    return rx.box(
        section(
            "Provider Deployments",
            # Live load and health: re-read every 10 s while the page is open.
            rx.moment(interval=10_000, format="HH:mm:ss", on_change=D.tick, display="none"),
            data_table(
                [
                    "Deployment",
                    "Endpoint",
                    "API key",
                    "Weight",
                    "Limits",
                    "Models",
                    "Load",
                    "Health",
                    "",
                ],
                D.deployments,
                _row,
                empty="No deployments: each provider uses its one connection above.",
                table_id="deployments-table",
            ),
            form,
            error_text(D.deployment_error),
            ok_text(D.deployment_ok),
            description=(
                "Several accounts or endpoints for one provider (two OpenAI accounts, Azure in "
                "two regions, two Ollama hosts). Requests are spread by weight and remaining "
                "headroom under each deployment's own requests/tokens per minute; a 429 or an "
                "outage moves the request to the next deployment before any fallback model. "
                "Empty fields inherit the provider's credential. Load and health are this "
                "gateway instance's view, limits count every instance."
            ),
        ),
        on_mount=D.load,
        width="100%",
    )
