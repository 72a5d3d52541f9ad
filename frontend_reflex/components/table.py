"""Tables with a header row, an empty state and a loading row; pagers and a search box."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx


def data_table(
    headers: list[str],
    rows: Any,
    render_row: Callable[[Any], rx.Component],
    *,
    empty: Any,
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


def pager(
    label: Any, has_prev: Any, has_next: Any, prev: Any, nxt: Any, *, pager_id: str = ""
) -> rx.Component:
    """‹ Previous, "26–50 of 1,312", Next ›. ``pager_id``: the box's id, its label is
    ``<pager_id>-label`` and its buttons ``-prev`` / ``-next`` (for tests and links)."""
    return rx.hstack(
        rx.button(
            "‹ Previous",
            size="1",
            variant="soft",
            disabled=~has_prev,
            on_click=prev,
            id=f"{pager_id}-prev" if pager_id else None,
        ),
        rx.text(label, size="1", color_scheme="gray", id=f"{pager_id}-label" if pager_id else None),
        rx.button(
            "Next ›",
            size="1",
            variant="soft",
            disabled=~has_next,
            on_click=nxt,
            id=f"{pager_id}-next" if pager_id else None,
        ),
        align="center",
        spacing="3",
        class_name="sb-pager",
        id=pager_id or None,
    )


def pager_of(state: Any, pager_id: str = "") -> rx.Component:
    """The pager of a list state (``state.pager.ServerList`` or ``state.paging.Paged``)."""
    return pager(
        state.page_label,
        state.has_prev,
        state.has_next,
        state.prev_page,
        state.next_page,
        pager_id=pager_id,
    )


def search_box(state: Any, placeholder: str, box_id: str) -> rx.Component:
    """The search of a ``ServerList`` with a ``q`` filter field: typed, then applied by Enter
    or the button (page one again, the address follows)."""
    return rx.form(
        rx.hstack(
            rx.input(
                value=state.filters["q"],
                on_change=lambda v: state.set_field("q", v),
                placeholder=placeholder,
                id=box_id,
                name="q",
                width="16em",
            ),
            rx.button("Search", type="submit", size="2", id=f"{box_id}-apply"),
            rx.cond(
                state.filtered,
                rx.button(
                    "Clear",
                    type="button",
                    size="2",
                    variant="soft",
                    color_scheme="gray",
                    on_click=state.clear_filters,
                    id=f"{box_id}-clear",
                ),
            ),
            align="center",
            spacing="2",
            wrap="wrap",
        ),
        on_submit=state.apply_filters,
        reset_on_submit=False,
        width="100%",
    )
