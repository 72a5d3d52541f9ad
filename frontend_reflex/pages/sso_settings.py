"""The "Single Sign-On" section of the settings page: the OpenID provider and mapping rules."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import error_text, native_select, ok_text, section
from frontend_reflex.components.common import text_input as _text_input
from frontend_reflex.components.forms import (
    ROLES,
    checkbox,
    choice_note,
    find_box,
    row_button,
    submit,
)
from frontend_reflex.components.table import data_table
from frontend_reflex.state.sso import SsoDefaultOrgState, SsoState

S = SsoState
D = SsoDefaultOrgState
RULE_ROLES = ROLES


def text_input(name: str, label: str, **props: Any) -> rx.Component:
    # Keyed by the last load, so the stored values are drawn again after each save.
    return _text_input(name, label, default_value=S.sso[name], key=S.sso_key + name, **props)


def provider_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                text_input("display_name", "Display name", id="sso-name", width="10em"),
                text_input(
                    "issuer",
                    "Issuer",
                    placeholder="https://login.example.com/realms/acme",
                    id="sso-issuer",
                    # The whole line on a phone (390 px), 24em from small screens up.
                    width=rx.breakpoints(initial="100%", sm="24em"),
                ),
                text_input("client_id", "Client ID", id="sso-client-id"),
                rx.vstack(
                    rx.text("Client secret", size="1", weight="medium"),
                    rx.input(
                        name="client_secret",
                        id="sso-secret",
                        type="password",
                        placeholder="write-only; empty: keep",
                        auto_complete="off",
                    ),
                    spacing="1",
                ),
                rx.text("Stored: ", rx.code(S.sso["secret"], class_name="sb-masked"), size="2"),
                align="end",
                wrap="wrap",
                spacing="3",
            ),
            rx.hstack(
                text_input("scopes", "Scopes", id="sso-scopes", width="18em"),
                text_input("gateway_url", "Gateway URL (as browsers reach it)", id="sso-gateway"),
                text_input("dashboard_url", "Dashboard URL", id="sso-dashboard"),
                align="end",
                wrap="wrap",
                spacing="3",
            ),
            rx.hstack(
                native_select(
                    "default_role",
                    "Role when no rule matches",
                    RULE_ROLES,
                    default=S.sso["default_role"],
                    blank="(refuse sign-in)",
                    id="sso-default-role",
                    key=S.sso_key + "role",
                ),
                # Held by its own state (the stored default, kept offered as Find moves on).
                native_select(
                    "default_org",
                    "Organization when no rule matches",
                    dynamic=D.choice_options,
                    default=None,
                    value=D.choice_pick,
                    blank="(none)",
                    id="sso-default-org",
                    on_change=D.pick_choice,
                ),
                find_box(D, "Find organization", "sso-default-org-find", "11em"),
                checkbox(
                    "verified",
                    "Require a verified email",
                    default=S.sso["verified"] == "on",
                    id="sso-verified",
                    key=S.sso_key + "verified",
                ),
                checkbox(
                    "enabled",
                    "Enabled",
                    default=S.sso["enabled"] == "on",
                    id="sso-enabled",
                    key=S.sso_key + "enabled",
                ),
                submit("Save single sign-on", "save-sso"),
                align="end",
                wrap="wrap",
                spacing="3",
            ),
            choice_note(D, "sso-default-org-note"),
            rx.text(
                "Redirect URI to register at the provider: ",
                rx.code(S.sso["callback_url"], id="sso-callback"),
                size="2",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=S.save,
    )


def rules() -> rx.Component:
    form = rx.form(
        rx.hstack(
            _text_input("claim", "Claim", default_value="groups", id="sso-rule-claim"),
            _text_input(
                "value", "Value ('*': any)", placeholder="gateway-admins", id="sso-rule-value"
            ),
            native_select("role", "Role", RULE_ROLES, default="member", id="sso-rule-role"),
            native_select(
                "organization_id",
                "Organization",
                dynamic=S.choice_options,
                blank="(none)",
                id="sso-rule-org",
                on_change=S.pick_choice,
            ),
            find_box(S, "Find organization", "sso-rule-org-find", "11em"),
            submit("Add rule", "add-sso-rule"),
            align="end",
            wrap="wrap",
            spacing="3",
        ),
        on_submit=S.add_rule,
        reset_on_submit=True,
    )
    return rx.vstack(
        rx.heading("Mapping rules", size="3", as_="h3"),
        data_table(
            ["#", "Claim", "Value", "Role", "Organization", ""],
            S.sso_rules,
            lambda r: rx.table.row(
                rx.table.cell(r["position"]),
                rx.table.cell(rx.code(r["claim"])),
                rx.table.cell(rx.code(r["value"])),
                rx.table.cell(r["role"]),
                rx.table.cell(r["organization"]),
                rx.table.cell(row_button("Delete", S.delete_rule, r, color="red")),
                class_name="sb-sso-rule",
            ),
            empty="No rules: new people get the role above, or are refused.",
            table_id="sso-rules-table",
        ),
        form,
        error_text(S.rule_error),
        spacing="3",
        width="100%",
    )


def sso_section() -> rx.Component:
    return rx.box(
        section(
            "Single Sign-On (OpenID Connect)",
            provider_form(),
            error_text(S.sso_error),
            ok_text(S.sso_ok),
            rules(),
            description=(
                "People sign in with your identity provider (Okta, Entra ID, Google, Keycloak, "
                "Auth0... any OpenID Connect provider): authorization code with PKCE. Users are "
                "created at their first sign-in; the first matching rule gives their role and "
                "organization at every sign-in. An organization can require SSO for its members "
                "(Organizations page). Free, no seat limit."
            ),
        ),
        on_mount=S.load,
        width="100%",
    )
