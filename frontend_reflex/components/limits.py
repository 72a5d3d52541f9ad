"""The limits dialog (``state.limits``): rates, tokens, allowed models and the spend cap of a
user, an app, an organization or a key, with the limits an administrator locked on a key."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import error_text, native_select, ok_text, text_input
from frontend_reflex.components.forms import row_button, submit
from frontend_reflex.state.limits import LimitsState

PERIOD_OPTIONS = [("daily", "Daily"), ("weekly", "Weekly"), ("monthly", "Monthly")]


def limits_button(handler: Any, row: Any, **props: Any) -> rx.Component:
    """The "Limits" button of a table row; ``handler`` is one of ``LimitsState.open_*``."""
    return row_button("Limits", handler, row, color="indigo", class_name="sb-limits", **props)


def _lock(lock: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(lock["limit"]),
        rx.table.cell(rx.code(lock["ceiling"])),
        rx.table.cell(lock["who"]),
        rx.table.cell(rx.text(lock["when"], size="1", color_scheme="gray")),
        class_name="sb-lock",
    )


def _locks() -> rx.Component:
    return rx.cond(
        LimitsState.locks.length() > 0,  # type: ignore[attr-defined]
        rx.vstack(
            rx.text(
                "Set by an administrator: the key's owner may lower these but not raise or "
                "remove them.",
                size="2",
                weight="medium",
            ),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[rx.table.column_header_cell(h) for h in ("Limit", "At most", "By", "On")]
                    )
                ),
                rx.table.body(rx.foreach(LimitsState.locks, _lock)),
                size="1",
                variant="surface",
                width="100%",
                id="limit-locks",
            ),
            spacing="2",
            width="100%",
        ),
    )


def _form() -> rx.Component:
    v = LimitsState.values
    return rx.form(
        rx.vstack(
            _locks(),
            rx.hstack(
                text_input(
                    "rpm",
                    "Requests per minute",
                    default_value=v["rpm"],
                    placeholder="no limit",
                    id="limit-rpm",
                ),
                text_input(
                    "tpm",
                    "Tokens per minute",
                    default_value=v["tpm"],
                    placeholder="no limit",
                    id="limit-tpm",
                ),
                wrap="wrap",
                spacing="3",
            ),
            text_input(
                "models",
                "Allowed models or aliases (comma-separated; patterns like gpt-4o* or openai/*)",
                default_value=v["models"],
                placeholder="any model",
                id="limit-models",
                width="100%",
            ),
            rx.cond(
                v["no_models"] == "yes",
                rx.text("The allowlist is empty now: no model may be used.", size="1"),
            ),
            rx.hstack(
                text_input(
                    "cap",
                    "Spend cap (USD)",
                    default_value=v["cap"],
                    placeholder="no cap",
                    id="limit-cap",
                ),
                rx.cond(
                    LimitsState.is_user,
                    rx.text("per ISO week (a user's cap is weekly)", size="2"),
                    native_select(
                        "period",
                        "Cap period",
                        PERIOD_OPTIONS,
                        default=v["period"],
                        id="limit-period",
                    ),
                ),
                wrap="wrap",
                spacing="3",
                align="end",
            ),
            rx.hstack(
                rx.dialog.close(rx.button("Close", variant="soft", type="button")),
                rx.cond(LimitsState.can_edit, submit("Save limits", "save-limits")),
                rx.cond(
                    ~LimitsState.can_edit,
                    rx.text("Only a super_admin may change an organization's limits.", size="2"),
                ),
                align="center",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=LimitsState.save,
        id="limits-form",
    )


def limits_dialog() -> rx.Component:
    """Put once on a page that has ``limits_button`` rows."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(LimitsState.title),
            rx.dialog.description(
                "A request must fit the limits of its key, of its user or app, and of its "
                "organization: the tightest applies. Leave a box empty for no limit.",
                size="2",
            ),
            rx.box(
                rx.cond(
                    LimitsState.loaded,
                    _form(),
                    rx.cond(LimitsState.error == "", rx.spinner()),
                ),
                padding_y="0.75em",
            ),
            rx.box(error_text(LimitsState.error), id="limits-error"),
            ok_text(LimitsState.ok),
            rx.cond(
                ~LimitsState.loaded,
                rx.dialog.close(rx.button("Close", variant="soft", margin_top="0.5em")),
            ),
            max_width="44em",
        ),
        open=LimitsState.is_open,
        on_open_change=LimitsState.close,
    )
