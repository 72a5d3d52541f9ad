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
