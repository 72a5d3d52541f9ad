"""Charts (recharts through rx.recharts): people would rather look than read."""

from __future__ import annotations

from typing import Any

import reflex as rx

PALETTE = ["#3e63dd", "#12a594", "#e54666", "#f76b15", "#8e4ec6", "#ffc53d", "#0090ff"]


def _empty(text: str) -> rx.Component:
    return rx.center(rx.text(text, color_scheme="gray", size="2"), height="100%")


def live_chart(data: Any) -> rx.Component:
    """Requests and errors per minute over the last hour."""
    return rx.cond(
        data.length() > 0,  # type: ignore[attr-defined]
        rx.recharts.composed_chart(
            rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
            rx.recharts.x_axis(data_key="minute"),
            rx.recharts.y_axis(allow_decimals=False),
            rx.recharts.graphing_tooltip(),
            rx.recharts.legend(),
            rx.recharts.area(
                data_key="requests",
                name="Requests",
                stroke=PALETTE[0],
                fill=PALETTE[0],
                fill_opacity=0.25,
                type_="monotone",
            ),
            rx.recharts.bar(data_key="errors", name="Errors", fill=PALETTE[2]),
            data=data,
            width="100%",
            height=220,
        ),
        _empty("No requests in the last 60 minutes."),
    )


def cost_trend_chart(data: Any, series: Any) -> rx.Component:
    """Cost per day for the last 7 days, stacked by provider."""
    colors = rx.Var.create(PALETTE)
    return rx.cond(
        data.length() > 0,  # type: ignore[attr-defined]
        rx.recharts.bar_chart(
            rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
            rx.recharts.x_axis(data_key="day"),
            rx.recharts.y_axis(width=80),
            rx.recharts.graphing_tooltip(),
            rx.recharts.legend(),
            rx.foreach(
                series,
                lambda name, i: rx.recharts.bar(
                    data_key=name, name=name, stack_id="cost", fill=colors[i % len(PALETTE)]
                ),
            ),
            data=data,
            width="100%",
            height=240,
        ),
        _empty("No spend in the last 7 days."),
    )


def provider_load_chart(data: Any) -> rx.Component:
    return rx.cond(
        data.length() > 0,  # type: ignore[attr-defined]
        rx.recharts.bar_chart(
            rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
            rx.recharts.x_axis(data_key="provider"),
            rx.recharts.y_axis(allow_decimals=False),
            rx.recharts.graphing_tooltip(),
            rx.recharts.legend(),
            rx.recharts.bar(data_key="requests", name="Requests", fill=PALETTE[1]),
            rx.recharts.bar(data_key="errors", name="Errors", fill=PALETTE[2]),
            data=data,
            width="100%",
            height=220,
        ),
        _empty("No provider traffic yet."),
    )
