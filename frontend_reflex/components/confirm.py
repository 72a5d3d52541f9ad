"""The confirmation every destructive action goes through (``state.entity.Confirmable``)."""

from __future__ import annotations

from typing import Any

import reflex as rx


def confirm_dialog(state: Any) -> rx.Component:
    """Asks "Delete X?" with Cancel and a red confirm button; nothing happens until "Yes"."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(state.confirm_title),
            rx.alert_dialog.description(state.confirm_body, size="2"),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", color_scheme="gray", id="confirm-no")
                ),
                # Not an alert_dialog.action: the dialog closes when the state says so, after
                # the action ran (so its error, if any, is on the page when it closes).
                rx.button(
                    state.confirm_button,
                    color_scheme="red",
                    on_click=state.confirmed,
                    id="confirm-yes",
                ),
                justify="end",
                spacing="3",
                margin_top="1em",
            ),
            max_width="28em",
        ),
        open=state.confirm_open,
        on_open_change=state.cancel_confirm,
    )


def unknown_target(message: Any, save: Any, drop: Any, *, prefix: str) -> rx.Component:
    """The gateway did not know a model name (alias target, chain): its words, "Save anyway"
    (``confirmUnknownTarget``) and "Fix the name". Ids: ``<prefix>-unknown``,
    ``<prefix>-save-anyway``."""
    return rx.cond(
        message != "",
        rx.callout(
            rx.vstack(
                rx.text(message),
                rx.hstack(
                    rx.button(
                        "Save anyway",
                        size="1",
                        color_scheme="amber",
                        on_click=save,
                        id=f"{prefix}-save-anyway",
                    ),
                    rx.button("Fix the name", size="1", variant="soft", on_click=drop),
                ),
                spacing="2",
            ),
            icon="triangle_alert",
            color_scheme="amber",
            id=f"{prefix}-unknown",
        ),
    )
