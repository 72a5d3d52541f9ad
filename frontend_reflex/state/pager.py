"""Server pages of a list that can grow: the one pager every list page's state mixes in.

One page is read at a time (``PAGE_SIZE`` rows, the API's ``first``/``after`` cursors), and the
label says the API's true total ("26–50 of 1,312"), never the number of rows loaded. A page's
state declares::

    class UsersState(ServerList, AuthState):
        def _query(self) -> ListQuery: ...      # the document, its variables, the list field
        def _row(self, node) -> dict[str, str]: ...

A filtered list is the same pager plus ``FIELDS`` (``filters.FilterField``) and ``ROUTE``: the
filter lives in the address (``?org=3&errors=1``, read by ``_read_url``, rewritten by
``_refilter``) and becomes the GraphQL filter input (``_graphql_filter``). A list the API pages
another way (``analytics``: limit/offset) overrides ``_page`` and keeps the rest.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar, NamedTuple

import reflex as rx

from frontend_reflex import fmt
from frontend_reflex.api import ApiError
from frontend_reflex.state.filters import (
    FilterField,
    clean,
    count_label,
    query_string,
    to_graphql,
    window_error,
)


class ListQuery(NamedTuple):
    """What ``_query`` returns. The document takes ``$first`` and ``$after``; ``count_field``
    names a ``{count exact}`` field beside the list ("": the list's own ``totalCount``)."""

    doc: str
    variables: dict[str, Any]
    field: str
    count_field: str = ""


class Page(NamedTuple):
    """One page as read: its nodes, the cursor of the next page ("" at the end), the total."""

    nodes: list[dict[str, Any]]
    next_cursor: str
    total: int
    exact: bool = True


class ServerList(rx.State, mixin=True):
    """Server pages (module docstring); with ``FIELDS``, filters kept in the URL."""

    FIELDS: ClassVar[tuple[FilterField, ...]] = ()
    ROUTE: ClassVar[str] = ""
    PAGE_SIZE: ClassVar[int] = 25

    filters: dict[str, str] = {}
    rows: list[dict[str, str]] = []
    #: The ``after`` cursor of each page seen so far ("" for the first).
    cursors: list[str] = [""]
    page_no: int = 0
    next_cursor: str = ""
    total: int = 0
    total_exact: bool = True
    loading: bool = False
    error: str = ""

    # -- declarations (overridden by each page) -----------------------------------------------
    def _query(self) -> ListQuery:
        raise NotImplementedError

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        raise NotImplementedError

    async def _page(self, first: int, after: str) -> Page:
        """Read one page (a connection with cursors; overridden for lists paged otherwise)."""
        q = self._query()
        data = await self._gql(  # type: ignore[attr-defined]
            q.doc, {**q.variables, "first": first, "after": after or None}
        )
        conn = data.get(q.field) or {}
        if q.count_field:
            counted = data.get(q.count_field) or {}
            total, exact = int(fmt.to_float(counted.get("count"))), bool(counted.get("exact", True))
        else:
            total, exact = int(fmt.to_float(conn.get("totalCount"))), True
        return Page(fmt.nodes(conn), fmt.next_cursor(conn), total, exact)

    # -- what the page shows ------------------------------------------------------------------
    @rx.var
    def page_label(self) -> str:
        return count_label(
            self.page_no * self.PAGE_SIZE, len(self.rows), self.total, self.total_exact
        )

    @rx.var
    def has_prev(self) -> bool:
        return self.page_no > 0

    @rx.var
    def has_next(self) -> bool:
        return self.next_cursor != ""

    @rx.var
    def filtered(self) -> bool:
        return any(self.filters.values())

    # -- reading pages ------------------------------------------------------------------------
    async def _read_page(self) -> Any:
        """Read the current page (``page_no``); None, or the redirect a lost session needs."""
        problem = window_error(self.filters)
        if problem:
            self.error, self.rows, self.total, self.loading = problem, [], 0, False
            return None
        self.loading = True
        try:
            page = await self._page(self.PAGE_SIZE, self.cursors[self.page_no])
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        if not page.nodes and self.page_no > 0:
            # The page emptied under us (its last rows deleted elsewhere): show the one before.
            self.page_no -= 1
            return await self._read_page()
        self.rows = [self._row(n) for n in page.nodes]
        self.next_cursor = page.next_cursor
        self.total, self.total_exact = page.total, page.exact
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

    # -- filters (lists that declare FIELDS) --------------------------------------------------
    def _read_url(self) -> None:
        self.filters = clean(self.FIELDS, self.router.url.query_parameters)

    def _url_script(self) -> Any:
        """Put the filter in the address bar (no reload, no new history entry)."""
        target = self.ROUTE + query_string(self.FIELDS, self.filters)
        return rx.call_script(f"window.history.replaceState(null, '', {json.dumps(target)})")

    def _graphql_filter(self) -> dict[str, Any]:
        return to_graphql(self.FIELDS, self.filters, dt.datetime.now(dt.UTC))

    async def _refilter(self) -> Any:
        """After a filter change: page one again, and the address follows (when it has one)."""
        failed = await self._first_page()
        if failed is not None or not self.ROUTE:
            return failed
        return self._url_script()

    @rx.event
    def set_field(self, name: str, value: str) -> None:
        """Typing in a text filter (applied with ``apply_filters``)."""
        self.filters = {**self.filters, name: str(value)}

    @rx.event
    async def choose(self, name: str, value: Any) -> Any:
        """A select or checkbox: applied at once."""
        if name not in {f.name for f in self.FIELDS}:
            return None
        raw = "1" if value is True else ("" if value is False else value)
        self.filters = clean(self.FIELDS, {**self.filters, name: raw})
        return await self._refilter()

    @rx.event
    async def apply_filters(self, _form: dict[str, Any] | None = None) -> Any:
        """Apply what was typed. The inputs are controlled (``set_field``), and events run in
        order, so the state already holds every keystroke; the submitted form is not read (its
        values may lag behind a filter change still on its way to the browser)."""
        self.filters = clean(self.FIELDS, self.filters)
        return await self._refilter()

    @rx.event
    async def clear_filters(self) -> Any:
        self.filters = clean(self.FIELDS, {})
        return await self._refilter()
