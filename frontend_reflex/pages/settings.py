"""Gateway Settings: every gateway-wide switch on one page (super-admin only)."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components.common import (
    SELECT_STYLE,
    error_text,
    loading,
    native_select,
    ok_text,
    section,
    text_input,
)
from frontend_reflex.components.confirm import confirm_dialog, unknown_target
from frontend_reflex.components.forms import checkbox, row_button, submit
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table
from frontend_reflex.pages.alerts import alerts_section
from frontend_reflex.pages.deployments import deployments_section
from frontend_reflex.pages.sso_settings import sso_section
from frontend_reflex.state.alerts import AlertsState
from frontend_reflex.state.deployments import DeploymentsState
from frontend_reflex.state.settings import SettingsState
from frontend_reflex.state.sso import SsoState

S = SettingsState
KINDS = [(k, k) for k in ("openai", "anthropic", "gemini", "azure", "ollama")]


def strategy_section() -> rx.Component:
    return section(
        "Routing Strategy",
        rx.hstack(
            rx.el.select(
                rx.foreach(S.strategies, lambda s: rx.el.option(s, value=s)),
                value=S.strategy_choice,
                on_change=S.pick_strategy,
                id="strategy-select",
                class_name="sb-select",
                **SELECT_STYLE,
            ),
            rx.button("Save strategy", on_click=S.save_strategy, id="save-strategy"),
            rx.text("Current: ", rx.code(S.strategy, id="current-strategy"), size="2"),
            align="center",
            spacing="3",
            wrap="wrap",
        ),
        rx.text(S.strategy_help, size="1", color_scheme="gray"),
        error_text(S.strategy_error),
        ok_text(S.strategy_ok),
        description=(
            "Controls how the gateway orders fallback models on each request. Takes effect "
            "immediately — no restart required. Super-admin only."
        ),
    )


def ollama_section() -> rx.Component:
    return section(
        "Ollama (Self-Hosted Models)",
        rx.form(
            rx.hstack(
                rx.input(
                    name="base_url",
                    default_value=S.ollama_url,
                    key=S.ollama_url,
                    placeholder="http://localhost:11434",
                    id="ollama-url",
                    width=rx.breakpoints(initial="100%", sm="24em"),
                ),
                submit("Save connection", "save-ollama"),
                rx.button(
                    "Refresh models", type="button", variant="soft", on_click=S.refresh_ollama
                ),
                rx.badge(
                    S.ollama_health,
                    color_scheme=rx.match(
                        S.ollama_health,
                        ("healthy", "green"),
                        ("unreachable", "red"),
                        ("configured", "blue"),
                        "gray",
                    ),
                    id="ollama-health",
                ),
                rx.text(S.ollama_source, size="1", color_scheme="gray", id="ollama-source"),
                align="center",
                wrap="wrap",
            ),
            on_submit=S.save_ollama,
        ),
        rx.cond(
            S.ollama_models.length() > 0,  # type: ignore[attr-defined]
            # Catalog names already read "ollama/<model>".
            rx.hstack(rx.foreach(S.ollama_models, lambda m: rx.badge(m)), wrap="wrap"),
        ),
        error_text(S.ollama_error),
        ok_text(S.ollama_ok),
        description=(
            "Connect a remote or local Ollama instance to route requests through self-hosted "
            "models at zero cost. Models are referenced as ollama/model-name."
        ),
    )


def credentials_section() -> rx.Component:
    form = rx.form(
        rx.hstack(
            native_select("provider", "Provider", KINDS, default="openai", id="cred-provider"),
            native_select("kind", "Kind", KINDS, default="openai", id="cred-kind"),
            text_input("base_url", "Base URL", placeholder="provider default", id="cred-url"),
            text_input(
                "api_key",
                "API key",
                type="password",
                placeholder="write-only",
                id="cred-key",
                auto_complete="off",
            ),
            text_input(
                "azure_deployment", "Azure deployment", placeholder="optional", id="cred-deployment"
            ),
            text_input("api_version", "API version", placeholder="optional", id="cred-version"),
            checkbox("enabled", "Enabled", default=True, id="cred-enabled"),
            submit("Save credential", "save-credential"),
            align="end",
            wrap="wrap",
            spacing="3",
        ),
        on_submit=S.save_credential,
    )
    return section(
        "LLM Provider Credentials",
        data_table(
            ["Provider", "Kind", "Base URL", "API key", "Status", "Updated"],
            S.credentials,
            lambda c: rx.table.row(
                rx.table.cell(c["provider"]),
                rx.table.cell(c["kind"]),
                rx.table.cell(c["base_url"]),
                rx.table.cell(rx.code(c["secret"], class_name="sb-masked")),
                rx.table.cell(c["enabled"]),
                rx.table.cell(c["updated"]),
            ),
            empty="No stored credentials: providers use the environment (.env).",
            table_id="credentials-table",
        ),
        form,
        error_text(S.credential_error),
        ok_text(S.credential_ok),
        description=(
            "Manage API keys and connection settings for each LLM provider without editing "
            ".env. Stored AES-256-GCM encrypted. Database values override environment variables "
            "at startup; changes hot-reload immediately. Super-admin only."
        ),
    )


def chains_section() -> rx.Component:
    form = rx.form(
        rx.hstack(
            text_input("primary", "Primary Model", placeholder="openai/gpt-4o", id="chain-primary"),
            text_input(
                "chain",
                "Fallback Chain (comma separated)",
                placeholder="anthropic/claude-sonnet-4, ollama/llama3",
                id="chain-models",
                width=rx.breakpoints(initial="100%", sm="28em"),
            ),
            submit("Save chain", "save-chain"),
            align="end",
            wrap="wrap",
        ),
        on_submit=S.save_chain,
    )
    return section(
        "Model Fallback Chains",
        data_table(
            ["Primary Model", "Fallback Chain", "Action"],
            S.chains,
            lambda c: rx.table.row(
                rx.table.cell(rx.code(c["primary"])),
                rx.table.cell(c["chain"]),
                rx.table.cell(
                    row_button(
                        "Delete",
                        S.delete_chain,
                        c,
                        color="red",
                        custom_attrs={"data-op": "Mutation.deleteFallbackChain"},
                    )
                ),
            ),
            empty="No fallback chains: a failing model returns its error.",
        ),
        form,
        unknown_target(S.chain_warning, S.save_chain_anyway, S.drop_chain_pending, prefix="chain"),
        error_text(S.chain_error),
        description=(
            "Configure which model steps in when a primary model fails (provider error, credit "
            "expired, or downtime)."
        ),
    )


def features_section() -> rx.Component:
    return section(
        "Features users may opt into",
        rx.form(
            rx.vstack(
                rx.foreach(
                    S.features,
                    lambda f: checkbox(
                        f["name"],
                        f["name"],
                        default=f["offered"] == "yes",
                        id="feature-" + f["name"],
                        key=S.features_key + f["name"],
                    ),
                ),
                rx.cond(
                    S.features.length() == 0,  # type: ignore[attr-defined]
                    rx.text("This gateway has no optional features.", size="2"),
                ),
                submit("Save features", "save-features"),
            ),
            on_submit=S.save_features,
        ),
        error_text(S.features_error),
        ok_text(S.features_ok),
        description="Users can opt-in to individual features from their dashboard.",
    )


def page() -> rx.Component:
    return shell(
        "Gateway Settings",
        rx.text(
            "Configure gateway-wide features. Users can opt-in to individual features from "
            "their dashboard.",
            color_scheme="gray",
        ),
        error_text(S.error),
        loading(S.loading),
        strategy_section(),
        rx.separator(),
        ollama_section(),
        rx.separator(),
        credentials_section(),
        rx.separator(),
        deployments_section(),
        rx.separator(),
        alerts_section(),
        rx.separator(),
        sso_section(),
        rx.separator(),
        chains_section(),
        rx.separator(),
        features_section(),
        # Each section's state asks before its deletes (deployments, alert channels and
        # rules, SSO rules, fallback chains).
        confirm_dialog(S),
        confirm_dialog(DeploymentsState),
        confirm_dialog(AlertsState),
        confirm_dialog(SsoState),
        who="super",
    )
