"""Server-side pages of a list that can grow without bound (audit log, DLP activity): one page
is fetched at a time with the API's cursors, and the label says the true total ("26–50 of 312")."""

from __future__ import annotations

from typing import Any

import reflex as rx

from frontend_reflex import fmt
from frontend_reflex.api import ApiError

CURSOR_PAGE = 25


class CursorPaged(rx.State, mixin=True):
    """A page declares ``_query()`` -> (document, variables, list field) and ``_row(node)``."""

    rows: list[dict[str, str]] = []
    #: The ``after`` cursor of each page seen so far ("" for the first).
    cursors: list[str] = [""]
    page_no: int = 0
    next_cursor: str = ""
    total: int = 0
    loading: bool = False
    error: str = ""

    def _query(self) -> tuple[str, dict[str, Any], str]:
        raise NotImplementedError

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        raise NotImplementedError

    @rx.var
    def page_label(self) -> str:
        if self.total == 0:
            return "0 rows"
        start = self.page_no * CURSOR_PAGE
        return f"{start + 1}–{start + len(self.rows)} of {self.total:,}"

    @rx.var
    def has_prev(self) -> bool:
        return self.page_no > 0

    @rx.var
    def has_next(self) -> bool:
        return self.next_cursor != ""

    async def _read_page(self) -> Any:
        doc, variables, field = self._query()
        after = self.cursors[self.page_no] or None
        try:
            data = await self._gql(  # type: ignore[attr-defined]
                doc, {**variables, "first": CURSOR_PAGE, "after": after}
            )
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        conn = data.get(field) or {}
        self.rows = [self._row(n) for n in fmt.nodes(conn)]
        self.next_cursor = fmt.next_cursor(conn)
        self.total = int(fmt.to_float(conn.get("totalCount")))
        self.error = ""
        self.loading = False
        return None

    async def _first_page(self) -> Any:
        self.cursors, self.page_no = [""], 0
        return await self._read_page()

    @rx.event
    async def next_page(self) -> Any:
        if not self.next_cursor:
            return None
        self.cursors = [*self.cursors[: self.page_no + 1], self.next_cursor]
        self.page_no += 1
        return await self._read_page()

    @rx.event
    async def prev_page(self) -> Any:
        if self.page_no == 0:
            return None
        self.page_no -= 1
        return await self._read_page()
