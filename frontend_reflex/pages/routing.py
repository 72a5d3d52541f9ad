"""Model Router, Agent Configurations and Available Models."""

from __future__ import annotations

import reflex as rx

from frontend_reflex.components.common import (
    error_text,
    loading,
    native_select,
    ok_text,
    section,
    text_input,
)
from frontend_reflex.components.forms import row_button, submit
from frontend_reflex.components.layout import shell
from frontend_reflex.components.table import data_table, pager
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


def router_page() -> rx.Component:
    form = rx.form(
        rx.hstack(
            text_input("requested", "Requested Model", placeholder="gpt-4", id="alias-requested"),
            rx.text("→", size="5", padding_bottom="0.2em"),
            text_input("target", "Routed To", placeholder="openai/gpt-4o-mini", id="alias-target"),
            native_select(
                "org_id", "Scope", dynamic=RouterState.org_options, blank="global", id="alias-scope"
            ),
            submit("Add alias", "create-alias"),
            align="end",
            wrap="wrap",
            spacing="3",
        ),
        on_submit=RouterState.create,
    )
    return shell(
        "Model Router",
        rx.text(ROUTER_TEXT, color_scheme="gray"),
        form,
        error_text(RouterState.form_error),
        ok_text(RouterState.form_ok),
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
                rx.table.cell(row_button("Delete", RouterState.delete, r, color="red")),
            ),
            empty="No aliases: clients get the model they ask for.",
            is_loading=RouterState.loading,
        ),
        pager(
            RouterState.page_label,
            RouterState.has_prev,
            RouterState.has_next,
            RouterState.prev_page,
            RouterState.next_page,
        ),
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
                rx.table.cell(row_button("Edit", AgentsState.open_edit, r)),
            ),
            empty="No agents yet: import a model_config.yaml below.",
            is_loading=AgentsState.loading,
        ),
        pager(
            AgentsState.page_label,
            AgentsState.has_prev,
            AgentsState.has_next,
            AgentsState.prev_page,
            AgentsState.next_page,
        ),
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
            rx.button("Import", on_click=AgentsState.import_yaml, id="import-agents"),
        ),
        agent_dialog(),
    )


def models_page() -> rx.Component:
    return shell(
        "Available Models",
        rx.text(
            "Every model the gateway can serve, with prices in USD per million tokens. "
            'A model without a known price shows "unknown"; Ollama models cost nothing.',
            color_scheme="gray",
        ),
        error_text(ModelsState.error),
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
            ],
            ModelsState.page_rows,
            lambda r: rx.table.row(
                rx.table.cell(rx.code(r["model"])),
                rx.table.cell(r["provider"]),
                rx.table.cell(r["context"]),
                rx.table.cell(r["input"]),
                rx.table.cell(r["output"]),
                rx.table.cell(r["cached"]),
                rx.table.cell(
                    rx.badge(
                        r["reachable"],
                        color_scheme=rx.cond(r["reachable"] == "yes", "green", "gray"),
                    )
                ),
            ),
            empty="No models: configure a provider credential or an Ollama connection.",
            is_loading=ModelsState.loading,
        ),
        pager(
            ModelsState.page_label,
            ModelsState.has_prev,
            ModelsState.has_next,
            ModelsState.prev_page,
            ModelsState.next_page,
        ),
    )
