"""Filters kept in the page's address, and server-side pages with the API's true total.

A list page (Gateway Logs, Keys...) declares its filter fields once (``FilterField``) and mixes
``FilteredList`` into its state. The filter then:

- lives in the URL's query string (``?org=3&model=gpt-4o&errors=1&range=24h``), so a view can
  be shared or bookmarked: the page reads it on load (``_read_url``) and rewrites the address,
  without a reload, whenever it changes (``_url_script``);
- is cleaned the same way whether it came from a link or a form (unknown names dropped, a
  non-number in a number field dropped, a choice outside its choices dropped);
- becomes the GraphQL filter input (``to_graphql``), typed per field.

Pages are read one at a time with the API's cursors; the total is the API's own count (a
``{count exact}`` field beside the list), never the number of rows loaded.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import reflex as rx

from frontend_reflex import fmt
from frontend_reflex.api import ApiError

#: Time windows a list offers: (value, label); "custom" takes a start and an end (UTC).
TIME_PRESETS: list[tuple[str, str]] = [
    ("", "Any time"),
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom range"),
]
_PRESET_SPAN = {
    "15m": dt.timedelta(minutes=15),
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
#: How a custom start or end is typed: an HTML datetime-local value, read as UTC.
TIME_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True, slots=True)
class FilterField:
    """One filter: its URL parameter (and key in the state's ``filters``), and how it is sent.

    ``kind``: ``text``; ``int`` (an id); ``bool`` ("1" when on); ``choice`` (one of
    ``choices``, e.g. an enum's names); ``time`` (``TIME_FORMAT``, UTC); ``range`` (a
    ``TIME_PRESETS`` value: sent as ``since``/``until`` by ``to_graphql``, not as itself).
    ``gql``: the GraphQL input field ("" for the same name; "-" when not sent directly).
    """

    name: str
    kind: str = "text"
    gql: str = ""
    choices: tuple[str, ...] = ()

    @property
    def input_name(self) -> str:
        return self.gql or self.name


def parse_time(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value, TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _clean_one(field: FilterField, raw: Any) -> str:
    value = str(raw if raw is not None else "").strip()[:200]
    if not value:
        return ""
    if field.kind == "int":
        return value if value.isdigit() else ""
    if field.kind == "bool":
        return "1" if value.lower() in ("1", "true", "on", "yes") else ""
    if field.kind == "choice":
        return value if value in field.choices else ""
    if field.kind == "range":
        return value if value in dict(TIME_PRESETS) else ""
    if field.kind == "time":
        return value[:16] if parse_time(value[:16]) else ""
    return value


def clean(fields: Iterable[FilterField], raw: Mapping[str, Any]) -> dict[str, str]:
    """Every field's value ("" when absent or unfit): a link and a form are read alike."""
    return {f.name: _clean_one(f, raw.get(f.name)) for f in fields}


def query_string(fields: Iterable[FilterField], values: Mapping[str, str]) -> str:
    """``?a=1&b=x`` of the fields that are set, in declaration order ("" when none is)."""
    pairs = [(f.name, values[f.name]) for f in fields if values.get(f.name)]
    return f"?{urlencode(pairs)}" if pairs else ""


def window(
    values: Mapping[str, str], now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[since, until)`` of the ``range`` preset, or of ``since``/``until`` when custom."""
    preset = values.get("range", "")
    if preset in _PRESET_SPAN:
        return now - _PRESET_SPAN[preset], None
    if preset == "custom":
        return parse_time(values.get("since", "")), parse_time(values.get("until", ""))
    return None, None


def to_graphql(
    fields: Iterable[FilterField], values: Mapping[str, str], now: dt.datetime
) -> dict[str, Any]:
    """The GraphQL filter input of ``values`` (only what is set)."""
    out: dict[str, Any] = {}
    for f in fields:
        value = values.get(f.name, "")
        if not value or f.gql == "-" or f.kind in ("range", "time"):
            continue
        if f.kind == "int":
            out[f.input_name] = int(value)
        elif f.kind == "bool":
            out[f.input_name] = True
        else:
            out[f.input_name] = value
    since, until = window(values, now)
    if since is not None:
        out["since"] = since.isoformat()
    if until is not None:
        out["until"] = until.isoformat()
    return out


def window_error(values: Mapping[str, str]) -> str:
    """A custom range that cannot be read, in words ("" when fine)."""
    if values.get("range") != "custom":
        return ""
    since, until = parse_time(values.get("since", "")), parse_time(values.get("until", ""))
    if since is None and until is None:
        return "Pick a start or an end for the custom range."
    if since is not None and until is not None and until <= since:
        return "The end of the range is before its start."
    return ""


def count_label(start: int, shown: int, total: int, exact: bool) -> str:
    """``1–50 of 1,234`` (``of more than 10,000`` when the API stopped counting)."""
    if total == 0 and shown == 0:
        return "0 rows"
    of = f"{total:,}" if exact else f"more than {total:,}"
    return f"{start + 1:,}–{start + shown:,} of {of}"


class FilteredList(rx.State, mixin=True):
    """Server pages of a filtered list. A page's state declares ``FIELDS`` and ``ROUTE`` and
    implements ``_query()`` -> (document, variables, list field, count field) and ``_row``.

    The document takes ``$first`` and ``$after``; the count field answers ``{count exact}``
    (or is "" when the list has ``totalCount``).
    """

    FIELDS: ClassVar[tuple[FilterField, ...]] = ()
    ROUTE: ClassVar[str] = ""
    PAGE_SIZE: ClassVar[int] = 50

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

    def _query(self) -> tuple[str, dict[str, Any], str, str]:
        raise NotImplementedError

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        raise NotImplementedError

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

    def _read_url(self) -> None:
        self.filters = clean(self.FIELDS, self.router.url.query_parameters)

    def _url_script(self) -> Any:
        """Put the filter in the address bar (no reload, no new history entry)."""
        target = self.ROUTE + query_string(self.FIELDS, self.filters)
        return rx.call_script(f"window.history.replaceState(null, '', {json.dumps(target)})")

    def _graphql_filter(self) -> dict[str, Any]:
        return to_graphql(self.FIELDS, self.filters, dt.datetime.now(dt.UTC))

    async def _read_page(self) -> Any:
        problem = window_error(self.filters)
        if problem:
            self.error, self.rows, self.total, self.loading = problem, [], 0, False
            return None
        doc, variables, list_field, count_field = self._query()
        after = self.cursors[self.page_no] or None
        self.loading = True
        try:
            data = await self._gql(  # type: ignore[attr-defined]
                doc, {**variables, "first": self.PAGE_SIZE, "after": after}
            )
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        conn = data.get(list_field) or {}
        self.rows = [self._row(n) for n in fmt.nodes(conn)]
        self.next_cursor = fmt.next_cursor(conn)
        if count_field:
            counted = data.get(count_field) or {}
            self.total = int(fmt.to_float(counted.get("count")))
            self.total_exact = bool(counted.get("exact", True))
        else:
            self.total, self.total_exact = int(fmt.to_float(conn.get("totalCount"))), True
        self.error = ""
        self.loading = False
        return None

    async def _first_page(self) -> Any:
        self.cursors, self.page_no = [""], 0
        return await self._read_page()

    async def _refilter(self) -> Any:
        """After a filter change: page one again, and the address follows."""
        failed = await self._first_page()
        return failed if failed is not None else self._url_script()

    @rx.event
    def set_field(self, name: str, value: str) -> None:
        """Typing in a text filter (applied with ``apply_filters``)."""
        self.filters = {**self.filters, name: str(value)}

    @rx.event
    async def choose(self, name: str, value: Any) -> Any:
        """A select or checkbox: applied at once."""
        known = {f.name for f in self.FIELDS}
        if name not in known:
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
