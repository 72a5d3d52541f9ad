"""The date-range control: a preset select and two dates (UTC), bound to a ``RangeState``."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex.components.common import SELECT_STYLE, error_text
from frontend_reflex.state.ranges import PRESETS


def range_picker(state: Any, prefix: str = "range") -> rx.Component:
    """Preset, from, to (both days included) and the window in words."""
    return rx.vstack(
        rx.hstack(
            rx.el.select(
                *[rx.el.option(label, value=value) for value, label in PRESETS],
                value=state.preset,
                on_change=state.set_preset,
                id=f"{prefix}-preset",
                aria_label="Date range",
                class_name="sb-select",
                **SELECT_STYLE,
            ),
            rx.hstack(
                rx.input(
                    type="date",
                    value=state.since_day,
                    on_change=state.set_since_day,
                    id=f"{prefix}-since",
                    aria_label="From (UTC)",
                ),
                rx.text("–"),
                rx.input(
                    type="date",
                    value=state.until_day,
                    on_change=state.set_until_day,
                    id=f"{prefix}-until",
                    aria_label="To (UTC, included)",
                ),
                align="center",
                spacing="1",
            ),
            wrap="wrap",
            align="center",
            spacing="2",
        ),
        rx.text(state.range_label, size="1", color_scheme="gray", id=f"{prefix}-label"),
        error_text(state.range_error),
        spacing="1",
    )
