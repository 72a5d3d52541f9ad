"""Tables with a header row, an empty state, a loading row and client-side pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx


def data_table(
    headers: list[str],
    rows: Any,
    render_row: Callable[[Any], rx.Component],
    *,
    empty: str,
    is_loading: Any = False,
    table_id: str = "",
    numeric: tuple[str, ...] = (),
) -> rx.Component:
    """A table over ``rows`` (a Var of dicts); ``empty`` says in words why there are none.

    Headers named in ``numeric`` are right-aligned, like their cells (``num``)."""
    span = len(headers)
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                *[
                    rx.table.column_header_cell(h, class_name="sb-num" if h in numeric else "")
                    for h in headers
                ]
            )
        ),
        rx.table.body(
            rx.cond(
                is_loading & (rows.length() == 0),  # type: ignore[attr-defined, operator]
                rx.table.row(rx.table.cell("Loading…", col_span=span)),
                rx.cond(
                    rows.length() == 0,  # type: ignore[attr-defined]
                    rx.table.row(
                        rx.table.cell(
                            rx.text(empty, color_scheme="gray", size="2"),
                            col_span=span,
                            class_name="sb-empty",
                        )
                    ),
                    rx.foreach(rows, render_row),
                ),
            )
        ),
        variant="surface",
        size="1",
        width="100%",
        id=table_id or None,
    )


def cell(value: Any, **props: Any) -> rx.Component:
    return rx.table.cell(value, **props)


def num(value: Any, **props: Any) -> rx.Component:
    """A numeric cell: right-aligned, digits of equal width, never wrapped."""
    return rx.table.cell(value, class_name="sb-num", **props)


def pager(label: Any, has_prev: Any, has_next: Any, prev: Any, nxt: Any) -> rx.Component:
    return rx.hstack(
        rx.button("‹ Previous", size="1", variant="soft", disabled=~has_prev, on_click=prev),
        rx.text(label, size="1", color_scheme="gray"),
        rx.button("Next ›", size="1", variant="soft", disabled=~has_next, on_click=nxt),
        align="center",
        spacing="3",
        class_name="sb-pager",
    )
