"""My Account: what every signed-in user sees of their own (keys, usage, feature opt-ins)."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components.common import (
    error_text,
    loading,
    secret_once,
    section,
    stat_card,
)
from frontend_reflex.components.confirm import confirm_dialog
from frontend_reflex.components.forms import row_button, submit
from frontend_reflex.components.guard import op_button
from frontend_reflex.components.layout import shell
from frontend_reflex.components.limits import limits_button, limits_dialog
from frontend_reflex.components.table import data_table
from frontend_reflex.state.limits import LimitsState
from frontend_reflex.state.me import MeState


def keys_section() -> rx.Component:
    return section(
        "My API keys",
        rx.form(
            rx.hstack(
                rx.input(name="name", placeholder="Key name, e.g. laptop", id="my-key-name"),
                submit("Create key", "create-my-key"),
            ),
            on_submit=MeState.create_key,
        ),
        error_text(MeState.keys_error),
        data_table(
            ["Name", "Key", "Created", "Last used", "Status", ""],
            MeState.keys,
            lambda k: rx.table.row(
                rx.table.cell(k["name"]),
                rx.table.cell(rx.code(k["prefix"], "…")),
                rx.table.cell(k["created"]),
                rx.table.cell(k["last_used"]),
                rx.table.cell(
                    rx.badge(
                        k["status"], color_scheme=rx.cond(k["status"] == "active", "green", "gray")
                    )
                ),
                rx.table.cell(
                    rx.cond(
                        k["status"] == "active",
                        rx.hstack(
                            limits_button(
                                LimitsState.open_key, k, custom_attrs={"data-op": "Query.limits"}
                            ),
                            op_button(
                                "Revoke", MeState.revoke, k, color="red", op="Mutation.revokeApiKey"
                            ),
                            spacing="1",
                        ),
                    )
                ),
            ),
            empty="No keys yet: create one to call the gateway with an OpenAI or Anthropic SDK.",
            table_id="my-keys-table",
        ),
    )


def usage_section() -> rx.Component:
    u = MeState.usage
    return section(
        "My usage",
        error_text(MeState.usage_error),
        rx.cond(
            u.length() > 0,  # type: ignore[attr-defined]
            rx.vstack(
                rx.text("Last 30 days", weight="bold", size="2"),
                rx.hstack(
                    stat_card("Requests", u["requests"]),
                    stat_card("Input tokens", u["input"]),
                    stat_card("Output tokens", u["output"]),
                    stat_card("Cost", u["cost"]),
                    stat_card("This week", u["week"], rx.text("cap: ", u["cap"])),
                    wrap="wrap",
                ),
            ),
        ),
    )


def features_section() -> rx.Component:
    return section(
        "Features",
        error_text(MeState.features_error),
        data_table(
            ["Feature", "What it does", "Status", ""],
            MeState.features,
            lambda f: rx.table.row(
                rx.table.cell(rx.code(f["feature"])),
                rx.table.cell(rx.text(f["description"], size="1")),
                rx.table.cell(
                    rx.badge(
                        f["enabled"], color_scheme=rx.cond(f["enabled"] == "on", "green", "gray")
                    )
                ),
                rx.table.cell(
                    row_button(
                        rx.cond(f["enabled"] == "on", "Opt out", "Opt in"),
                        MeState.toggle_feature,
                        f,
                        color="indigo",
                    )
                ),
            ),
            empty="The gateway offers no optional features right now.",
        ),
        description="Features the administrators offer; turn them on for your own requests.",
    )


def page() -> rx.Component:
    return shell(
        "My Account",
        loading(MeState.loading),
        keys_section(),
        usage_section(),
        features_section(),
        secret_once(MeState.secret, MeState.hide_secret),
        limits_dialog(),
        confirm_dialog(MeState),
        who="all",
    )
