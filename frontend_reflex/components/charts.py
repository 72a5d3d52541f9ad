"""Charts (recharts through rx.recharts): people would rather look than read."""

from __future__ import annotations

from typing import Any

import reflex as rx

PALETTE = ["#3e63dd", "#12a594", "#e54666", "#f76b15", "#8e4ec6", "#ffc53d", "#0090ff"]


def cost_axis(**props: Any) -> rx.Component:
    """The y axis of a cost: its unit said on the axis (every cost chart uses this one)."""
    return rx.recharts.y_axis(unit=" USD", width=90, **props)


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
            cost_axis(),
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


def group_chart(data: Any, empty: str) -> rx.Component:
    """Cost (left axis, USD) and requests (right axis) of the costliest groups."""
    return rx.cond(
        data.length() > 0,  # type: ignore[attr-defined]
        rx.recharts.bar_chart(
            rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
            rx.recharts.x_axis(
                data_key="name", interval=0, angle=-20, text_anchor="end", height=70
            ),
            cost_axis(y_axis_id="cost"),
            rx.recharts.y_axis(y_axis_id="requests", orientation="right", allow_decimals=False),
            rx.recharts.graphing_tooltip(),
            rx.recharts.legend(),
            rx.recharts.bar(data_key="cost", name="Cost (USD)", y_axis_id="cost", fill=PALETTE[0]),
            rx.recharts.bar(
                data_key="requests", name="Requests", y_axis_id="requests", fill=PALETTE[1]
            ),
            data=data,
            width="100%",
            height=300,
        ),
        _empty(empty),
    )


def series_chart(data: Any) -> rx.Component:
    """Cost (USD) and requests per hour or day of the window."""
    return rx.cond(
        data.length() > 0,  # type: ignore[attr-defined]
        rx.recharts.composed_chart(
            rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
            rx.recharts.x_axis(data_key="t"),
            cost_axis(y_axis_id="cost"),
            rx.recharts.y_axis(y_axis_id="requests", orientation="right", allow_decimals=False),
            rx.recharts.graphing_tooltip(),
            rx.recharts.legend(),
            rx.recharts.bar(data_key="cost", name="Cost (USD)", y_axis_id="cost", fill=PALETTE[0]),
            rx.recharts.line(
                data_key="requests",
                name="Requests",
                y_axis_id="requests",
                stroke=PALETTE[1],
                type_="monotone",
            ),
            data=data,
            width="100%",
            height=240,
        ),
        _empty("No requests in this window."),
    )
