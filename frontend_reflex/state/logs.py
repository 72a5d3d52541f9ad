"""Gateway Logs: the log explorer (every filter of the API, kept in the URL; server pages with
the API's true total), and new requests as they complete (no reload).

New rows arrive through the ``gatewayLogs`` GraphQL subscription, consumed by a Reflex background
task for as long as this tab shows the page; they are added to the first page when they pass the
filter (``log_rows.live_matches``). If the subscription cannot be opened, the task falls back to
polling the first page every two seconds, and says so on the page. Members see their own
requests (the API scopes every read).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import reflex as rx

from frontend_reflex import api, fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import OPTION_LIMIT, cut_note, known, option_of, with_kept
from frontend_reflex.state.filters import FilterField
from frontend_reflex.state.log_rows import (  # noqa: F401  (the page's and tests' imports)
    ALL_DOORS,
    DOOR_LABELS,
    DOOR_OPTIONS,
    DOORS,
    LOG_FIELDS,
    door_of,
    live_matches,
    live_possible,
    log_row,
    matches,
)
from frontend_reflex.state.pager import ListQuery, ServerList

ROUTE = "/logs"
MAX_ROWS = 500
POLL_S = 2.0
# The page sends a heartbeat every 10 s; a tab that stopped sending one is gone.
STALE_S = 45.0


def merge_new(rows: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """New rows on top, without duplicates (a row can come from both a poll and the stream)."""
    seen = {r["id"] for r in rows}
    fresh = [r for r in new if r["id"] not in seen]
    return (fresh + rows)[:MAX_ROWS]


def options_note(counts: Mapping[str, int], search: str) -> str:
    """Which of the three selects show only part of what matches (``choices.cut_note``)."""
    return cut_note({k: counts[k] for k in ("organizations", "users", "apps")}, search)


class LogsState(ServerList, AuthState):
    FIELDS: ClassVar[tuple[FilterField, ...]] = LOG_FIELDS
    ROUTE: ClassVar[str] = ROUTE
    PAGE_SIZE: ClassVar[int] = 50

    org_options: list[dict[str, str]] = []
    user_options: list[dict[str, str]] = []
    app_options: list[dict[str, str]] = []
    option_search: str = ""
    option_note: str = ""
    live_status: str = ""
    live_gen: int = 0
    beat: float = 0.0
    fresh_ids: list[str] = []

    def _query(self) -> ListQuery:
        return ListQuery(
            queries.LOGS, {"f": self._graphql_filter() or None}, "gatewayLogs", "gatewayLogCount"
        )

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return log_row(node)

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard()
        if redirect is not None:
            yield redirect
            return
        self._read_url()
        self.loading = True
        yield
        if self.is_admin:
            await self._load_options()
        failed = await self._first_page()
        if failed is not None:
            yield failed
            return
        self.beat = time.monotonic()
        yield LogsState.follow

    async def _load_options(self) -> None:
        """Who and what the selects offer: the first ``OPTION_LIMIT`` by name of each list
        matching the Find box, plus what the filter has chosen (an org_admin's API answers
        their organization's)."""
        search = self.option_search.strip()
        try:
            data = await self._gql(
                queries.LOG_FILTER_OPTIONS, {"q": search or None, "n": OPTION_LIMIT}
            )
        except ApiError:
            return  # the selects keep what they had; typing an id in the address still filters
        before = {"org": self.org_options, "user": self.user_options, "app": self.app_options}
        found = {}
        for name, field in (("org", "organizations"), ("user", "users"), ("app", "apps")):
            options = [option_of(n) for n in fmt.nodes(data.get(field))]
            # The chosen org, user or app stays offered (first) when the search left it out.
            kept = await known(self, name, self.filters.get(name, ""), before[name])
            found[name] = with_kept(options, kept)
        self.org_options, self.user_options, self.app_options = (
            found["org"],
            found["user"],
            found["app"],
        )
        counts = {
            k: int(fmt.to_float((data.get(k) or {}).get("totalCount")))
            for k in ("organizations", "users", "apps")
        }
        self.option_note = options_note(counts, search)

    @rx.event
    async def find_options(self, value: str) -> None:
        """The Find box: narrow the organization, user and app selects (not a filter)."""
        self.option_search = str(value)[:100]
        await self._load_options()

    @rx.event
    def heartbeat(self, _value: Any = None) -> Any:
        self.beat = time.monotonic()
        if self.live_status.startswith("reconnecting"):
            return LogsState.follow
        return None

    @rx.event(background=True)
    async def follow(self) -> None:
        async with self:
            self.live_gen += 1
            gen = self.live_gen
            token = self.token
            self.live_status = "connecting"
        queue: asyncio.Queue[dict[str, Any] | ApiError | str] = asyncio.Queue()
        reader = asyncio.create_task(_read_subscription(token, queue))
        polling = False
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), POLL_S)
                except TimeoutError:
                    item = None
                async with self:
                    if not _still_wanted(self, gen):
                        return
                    if isinstance(item, ApiError):
                        if item.auth:
                            self.live_status = "stopped: your session has expired"
                            return
                        polling = True
                        self.live_status = f"polling every 2 s ({item.message})"
                    elif item == CONNECTED:
                        self.live_status = "live"
                    elif isinstance(item, dict):
                        _add(self, [item])
                if polling:
                    await _poll(self, gen)
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader


CONNECTED = "connected"


async def _read_subscription(token: str, queue: asyncio.Queue[Any]) -> None:
    async def connected() -> None:
        await queue.put(CONNECTED)

    try:
        async for data in api.subscribe(queries.LOGS_SUBSCRIPTION, token=token, on_ack=connected):
            row = data.get("gatewayLogs")
            if isinstance(row, Mapping):
                await queue.put(dict(row))
        await queue.put(ApiError("the gateway ended the live stream"))
    except ApiError as exc:
        await queue.put(exc)
    except Exception as exc:  # any other failure means: fall back to polling
        await queue.put(ApiError(f"live stream failed: {type(exc).__name__}"))


# Module functions, not methods: a background task's ``self`` is a proxy, and a method looked up
# through it would be bound to the state behind the proxy (without its lock).
def _still_wanted(state: Any, gen: int) -> bool:
    return bool(
        state.live_gen == gen
        and state.router.url.path.rstrip("/") == ROUTE
        and time.monotonic() - state.beat < STALE_S
    )


def _add(state: Any, events: list[dict[str, Any]]) -> None:
    """Live rows that pass the filter go on top of the first page; the total counts them."""
    now = dt.datetime.now(dt.UTC)
    if state.page_no != 0 or not live_possible(state.filters, now):
        return
    new = [log_row(e) for e in events if live_matches(state.filters, e, now)]
    rows = list(state.rows)
    merged = merge_new(rows, new)
    added = len(merged) - len(rows)
    if added > 0:
        state.fresh_ids = [r["id"] for r in merged[:added]]
        state.rows = merged
        state.total = state.total + added


async def _poll(state: Any, gen: int) -> None:
    async with state:
        token = state.token
        variables = {"f": state._graphql_filter() or None, "first": state.PAGE_SIZE}
    try:
        data = await api.execute(queries.LOGS, variables, token=token)
    except ApiError as exc:
        async with state:
            if state.live_gen == gen:
                state.live_status = f"reconnecting: {exc.message}"
        return
    async with state:
        if _still_wanted(state, gen):
            _add(state, fmt.nodes(data.get("gatewayLogs")))
