"""Model Router, Agent Configurations and Available Models."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import (
    SELECT_STYLE,
    error_text,
    field,
    loading,
    ok_text,
    section,
    text_input,
)
from frontend_reflex.components.confirm import confirm_dialog, unknown_target
from frontend_reflex.components.forms import choice_note, find_box, row_button, submit
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table, num, pager
from frontend_reflex.permissions import control, may
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.routing import AgentsState, ModelsState, RouterState

ROUTER_TEXT = (
    "Configure model aliases to override what LLM is actually used when clients request a "
    "specific model via the OpenAI or Anthropic gateway endpoints. Org-specific aliases take "
    "priority over global ones."
)
AGENT_EXAMPLE = """agents:
  - agent_id: coder
    name: Coding agent
    role: writes and reviews code
    models:
      normal: openai/gpt-4o-mini
      heavy: openai/gpt-4o
      max: anthropic/claude-opus-4"""


def _scope_select() -> rx.Component:
    """Where the alias applies; "global" is offered only to roles the table lets change global
    aliases (an org_admin's aliases are their organization's)."""
    global_ok = may(AuthState.role, "Mutation.createModelAlias", global_row=True)
    return field(
        "Scope",
        rx.el.select(
            rx.cond(
                global_ok,
                rx.el.option(
                    "global",
                    value="",
                    custom_attrs={"data-op": "Mutation.createModelAlias", "data-global": "1"},
                ),
            ),
            rx.foreach(
                RouterState.choice_options, lambda o: rx.el.option(o["label"], value=o["value"])
            ),
            name="org_id",
            id="alias-scope",
            class_name="sb-select",
            # The pick stays offered when Find narrows the organizations (Choices).
            on_change=RouterState.pick_choice,
            **SELECT_STYLE,
        ),
    )


def router_page() -> rx.Component:
    form = rx.form(
        rx.hstack(
            text_input("requested", "Requested Model", placeholder="gpt-4", id="alias-requested"),
            rx.text("→", size="5", padding_bottom="0.2em"),
            text_input("target", "Routed To", placeholder="openai/gpt-4o-mini", id="alias-target"),
            _scope_select(),
            find_box(RouterState, "Find organization", "alias-scope-find", "11em"),
            rx.button(
                "Add alias",
                type="submit",
                id="create-alias",
                **control("Mutation.createModelAlias"),
            ),
            align="end",
            wrap="wrap",
            spacing="3",
        ),
        on_submit=RouterState.create,
    )
    return shell(
        "Model Router",
        rx.text(ROUTER_TEXT, color_scheme="gray"),
        rx.cond(
            may(AuthState.role, "Mutation.createModelAlias"),
            rx.vstack(form, choice_note(RouterState, "alias-scope-note"), spacing="1"),
        ),
        unknown_target(
            RouterState.unknown_warning,
            RouterState.save_anyway,
            RouterState.drop_pending,
            prefix="alias",
        ),
        error_text(RouterState.create_error),
        ok_text(RouterState.create_ok),
        error_text(RouterState.error),
        error_text(RouterState.table_error),
        loading(RouterState.loading),
        data_table(
            ["Requested Model", "→", "Routed To", "Scope", "Actions"],
            RouterState.page_rows,
            lambda r: rx.table.row(
                rx.table.cell(rx.code(r["requested"])),
                rx.table.cell("→"),
                rx.table.cell(rx.code(r["target"])),
                rx.table.cell(r["scope"]),
                rx.table.cell(
                    rx.cond(
                        may(
                            AuthState.role,
                            "Mutation.deleteModelAlias",
                            global_row=r["global"] == "yes",
                        ),
                        row_button(
                            "Delete",
                            RouterState.ask,
                            "delete",
                            r,
                            color="red",
                            custom_attrs={
                                "data-op": "Mutation.deleteModelAlias",
                                "data-global": r["global"],
                            },
                        ),
                        rx.text("global: super_admin", size="1", color_scheme="gray"),
                    )
                ),
            ),
            empty="No aliases: clients get the model they ask for.",
            is_loading=RouterState.loading,
            table_id="aliases-table",
        ),
        pager(
            RouterState.page_label,
            RouterState.has_prev,
            RouterState.has_next,
            RouterState.prev_page,
            RouterState.next_page,
        ),
        confirm_dialog(RouterState),
    )


def agent_dialog() -> rx.Component:
    e = AgentsState.editing
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Edit agent ", e["agent_id"]),
            rx.form(
                rx.vstack(
                    text_input("name", "Name", default_value=e["name"], id="edit-agent-name"),
                    text_input("role", "Role", default_value=e["role_raw"], id="edit-agent-role"),
                    text_input(
                        "normal", "Normal Model", default_value=e["normal"], id="edit-agent-normal"
                    ),
                    text_input(
                        "heavy", "Heavy Model", default_value=e["heavy_raw"], id="edit-agent-heavy"
                    ),
                    text_input("max", "Max Model", default_value=e["max_raw"], id="edit-agent-max"),
                    error_text(AgentsState.edit_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", type="button")),
                        submit("Save", "save-agent"),
                    ),
                    spacing="3",
                ),
                on_submit=AgentsState.save_edit,
            ),
        ),
        open=AgentsState.edit_open,
        on_open_change=AgentsState.close_edit,
    )


def agents_page() -> rx.Component:
    can_edit = may(AuthState.role, "Mutation.updateAgentConfig")
    return shell(
        "Agent Configurations",
        rx.text(
            "Agents and their model per tier (normal, heavy, max), loaded from a ",
            rx.code("model_config.yaml."),
            color_scheme="gray",
        ),
        error_text(AgentsState.error),
        loading(AgentsState.loading),
        data_table(
            ["Name", "Agent ID", "Role", "Normal Model", "Heavy Model", "Max Model", ""],
            AgentsState.page_rows,
            lambda r: rx.table.row(
                rx.table.cell(r["name"]),
                rx.table.cell(rx.code(r["agent_id"])),
                rx.table.cell(r["role"]),
                rx.table.cell(r["normal"]),
                rx.table.cell(r["heavy"]),
                rx.table.cell(r["max"]),
                rx.table.cell(
                    rx.cond(
                        can_edit,
                        row_button(
                            "Edit",
                            AgentsState.open_edit,
                            r,
                            **control("Mutation.updateAgentConfig"),
                        ),
                    )
                ),
            ),
            empty="No agents yet.",
            is_loading=AgentsState.loading,
        ),
        pager(
            AgentsState.page_label,
            AgentsState.has_prev,
            AgentsState.has_next,
            AgentsState.prev_page,
            AgentsState.next_page,
        ),
        rx.cond(
            may(AuthState.role, "Mutation.importAgentConfigs"),
            section(
                "Import model_config.yaml",
                rx.text_area(
                    value=AgentsState.yaml_text,
                    on_change=AgentsState.set_yaml,
                    placeholder=AGENT_EXAMPLE,
                    rows="9",
                    width="100%",
                    font_family="monospace",
                    id="agents-yaml",
                ),
                error_text(AgentsState.import_error),
                ok_text(AgentsState.import_ok),
                rx.button(
                    "Import",
                    on_click=AgentsState.import_yaml,
                    id="import-agents",
                    **control("Mutation.importAgentConfigs"),
                ),
            ),
            rx.text(
                "Agents are imported and edited by a super_admin.", size="1", color_scheme="gray"
            ),
        ),
        agent_dialog(),
    )


def price_dialog() -> rx.Component:
    e = ModelsState.editing
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Price of ", rx.code(e["model"])),
            rx.dialog.description(
                "USD per million tokens. An override beats the built-in price table on every "
                "gateway instance at once; costs of past requests keep the price they were "
                "charged at.",
                size="2",
            ),
            rx.form(
                rx.vstack(
                    text_input("input", "Input", default_value=e["in_raw"], id="price-input"),
                    text_input("output", "Output", default_value=e["out_raw"], id="price-output"),
                    text_input(
                        "cached",
                        "Cached input",
                        default_value=e["cached_raw"],
                        placeholder="the input price",
                        id="price-cached",
                    ),
                    text_input(
                        "window",
                        "Context window (tokens)",
                        default_value=e["window_raw"],
                        placeholder="unknown",
                        id="price-window",
                    ),
                    error_text(ModelsState.edit_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", type="button")),
                        submit("Save price", "save-price"),
                    ),
                    spacing="3",
                ),
                on_submit=ModelsState.save_edit,
            ),
            max_width="30em",
        ),
        open=ModelsState.edit_open,
        on_open_change=ModelsState.close_edit,
    )


def _price_actions(r: Any) -> rx.Component:
    return rx.cond(
        may(AuthState.role, "Mutation.setPriceOverride"),
        rx.hstack(
            row_button(
                rx.cond(r["overridden"] == "yes", "Edit price", "Set price"),
                ModelsState.open_edit,
                r,
                **control("Mutation.setPriceOverride"),
            ),
            rx.cond(
                r["overridden"] == "yes",
                row_button(
                    "Remove override",
                    ModelsState.ask,
                    "delete",
                    r,
                    color="red",
                    **control("Mutation.deletePriceOverride"),
                ),
            ),
            spacing="1",
        ),
    )


def models_page() -> rx.Component:
    filters = rx.flex(
        rx.input(
            placeholder="Search models…",
            value=ModelsState.search,
            on_change=ModelsState.set_search,
            id="models-search",
            width=rx.breakpoints(initial="100%", sm="20em"),
        ),
        rx.el.select(
            rx.el.option("All providers", value=""),
            rx.foreach(ModelsState.providers, lambda p: rx.el.option(p, value=p)),
            value=ModelsState.provider,
            on_change=ModelsState.set_provider,
            id="models-provider",
            class_name="sb-select",
            **SELECT_STYLE,
        ),
        wrap="wrap",
        gap="3",
        align="center",
    )
    return shell(
        "Available Models",
        rx.text(
            "Every model the gateway can serve, with prices in USD per million tokens. "
            'A model without a known price shows "unknown"; Ollama models cost nothing.',
            color_scheme="gray",
        ),
        filters,
        error_text(ModelsState.error),
        error_text(ModelsState.table_error),
        loading(ModelsState.loading),
        data_table(
            [
                "Model",
                "Provider",
                "Context Window",
                "Input / MTok",
                "Output / MTok",
                "Cached / MTok",
                "Reachable",
                "",
            ],
            ModelsState.page_rows,
            lambda r: rx.table.row(
                rx.table.cell(
                    rx.vstack(
                        rx.code(r["model"]),
                        rx.cond(
                            r["overridden"] == "yes",
                            rx.badge("price override", color_scheme="amber", size="1"),
                        ),
                        spacing="1",
                    )
                ),
                rx.table.cell(r["provider"]),
                num(r["context"]),
                num(r["input"]),
                num(r["output"]),
                num(r["cached"]),
                rx.table.cell(
                    rx.badge(
                        r["reachable"],
                        color_scheme=rx.cond(r["reachable"] == "yes", "green", "gray"),
                    )
                ),
                rx.table.cell(_price_actions(r)),
                class_name="sb-model-row",
            ),
            empty="No models match: clear the search, or configure a provider or Ollama.",
            is_loading=ModelsState.loading,
            table_id="models-table",
            numeric=("Context Window", "Input / MTok", "Output / MTok", "Cached / MTok"),
        ),
        pager(
            ModelsState.page_label,
            ModelsState.has_prev,
            ModelsState.has_next,
            ModelsState.prev_page,
            ModelsState.next_page,
        ),
        price_dialog(),
        confirm_dialog(ModelsState),
    )
