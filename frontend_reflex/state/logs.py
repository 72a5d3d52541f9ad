"""Gateway Logs: recent requests, and new ones as they complete (no reload).

New rows arrive through the ``gatewayLogs`` GraphQL subscription, consumed by a Reflex background
task for as long as this tab shows the page. If the subscription cannot be opened, the task falls
back to polling the first page every two seconds, and says so on the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import api, fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.paging import Paged

ROUTE = "/logs"
#: The doors the endpoint filter offers: GraphQL ``GatewayEndpoint`` name -> (label, the paths
#: rows through it are logged with; live rows are filtered by them). The dashboard does not
#: import the backend: ``tests/browser/test_logs_filter_units.py`` keeps this equal to it.
DOORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "CHAT_COMPLETIONS": ("Chat completions", ("/v1/chat/completions",)),
    "MESSAGES": ("Messages", ("/v1/messages",)),
    "COUNT_TOKENS": ("Count tokens", ("/v1/messages/count_tokens",)),
    "RESPONSES": ("Responses", ("/v1/responses",)),
    "STORED_RESPONSES": (
        "Stored responses",
        ("/v1/responses/{id}", "/v1/responses/{id}/input_items"),
    ),
    "GEMINI": (
        "Gemini",
        tuple(
            f"/{version}/models/{{model}}{method}"
            for version in ("v1beta", "v1")
            for method in (
                "",
                ":generateContent",
                ":streamGenerateContent",
                ":countTokens",
                ":embedContent",
                ":batchEmbedContents",
            )
        ),
    ),
    "EMBEDDINGS": ("Embeddings", ("/v1/embeddings",)),
    "MODELS": ("Model lists", ("/v1/models", "/v1beta/models")),
}
ALL_DOORS = "All endpoints"
DOOR_LABELS = [ALL_DOORS, *(label for label, _ in DOORS.values())]
MAX_ROWS = 500
POLL_S = 2.0
# The page sends a heartbeat every 10 s; a tab that stopped sending one is gone.
STALE_S = 45.0


def log_row(r: Mapping[str, Any]) -> dict[str, str]:
    user = r.get("user")
    status = int(fmt.to_float(r.get("status")))
    return {
        # The stream's events carry no row id: the request id (and the model and deployment
        # that answered, for fallback attempts) names a row in both the stream and the query.
        "id": f"{r.get('requestId')}:{r.get('actualModel')}:{r.get('deployment')}:{status}",
        "time": fmt.when(r.get("createdAt")),
        "key": fmt.text(r.get("keyPrefix")),
        "user": _caller(user, r.get("app")),
        "endpoint": fmt.text(r.get("endpoint")),
        "requested": fmt.text(r.get("requestedModel")),
        "actual": fmt.text(r.get("actualModel")),
        # The provider deployment (account) that answered; "" for the provider's own.
        "deployment": str(r.get("deployment") or ""),
        "tokens": f"{fmt.number(r.get('inputTokens'))} / {fmt.number(r.get('outputTokens'))}",
        "cost": fmt.money(r.get("costUsd")),
        "status": str(status or ""),
        "failed": "yes" if status >= 400 else "",
    }


def _caller(user: Any, app: Any) -> str:
    if isinstance(user, Mapping) and user:
        return fmt.name_of(user)
    if isinstance(app, Mapping) and app:
        return f"app: {fmt.name_of(app)}"
    return "—"


def door_of(label: str) -> str:
    """The ``GatewayEndpoint`` name of a filter label ("" for all endpoints)."""
    return next((name for name, (shown, _) in DOORS.items() if shown == label), "")


def matches(door: str, row: Mapping[str, Any]) -> bool:
    """Whether a live row passes the endpoint filter ``door`` ("" passes everything)."""
    if not door:
        return True
    paths = DOORS[door][1] if door in DOORS else ()
    return row.get("endpoint") in paths


def merge_new(rows: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """New rows on top, without duplicates (a row can come from both a poll and the stream)."""
    seen = {r["id"] for r in rows}
    fresh = [r for r in new if r["id"] not in seen]
    return (fresh + rows)[:MAX_ROWS]


class LogsState(Paged, AuthState):
    cursor: str = ""
    #: The endpoint filter: a ``GatewayEndpoint`` name, "" for all.
    door: str = ""
    door_label: str = ALL_DOORS
    live_status: str = ""
    live_gen: int = 0
    beat: float = 0.0
    fresh_ids: list[str] = []

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        self.page = 0
        yield
        try:
            conn = (await self._gql(queries.LOGS, _variables(self.door))).get("gatewayLogs")
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            yield self._on_api_error(exc)
            return
        self.rows = [log_row(r) for r in fmt.nodes(conn)]
        self.cursor = fmt.next_cursor(conn)
        self.error = ""
        self.loading = False
        self.beat = time.monotonic()
        yield LogsState.follow

    @rx.event
    async def load_older(self) -> Any:
        if not self.cursor:
            return None
        try:
            variables = _variables(self.door) | {"after": self.cursor}
            conn = (await self._gql(queries.LOGS, variables)).get("gatewayLogs")
        except ApiError as exc:
            self.error = exc.message
            return self._on_api_error(exc)
        seen = {r["id"] for r in self.rows}
        self.rows = self.rows + [r for r in map(log_row, fmt.nodes(conn)) if r["id"] not in seen]
        self.cursor = fmt.next_cursor(conn)
        return None

    @rx.event
    def set_door(self, label: str) -> Any:
        self.door_label = label
        self.door = door_of(label)
        return LogsState.load

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
                    elif isinstance(item, dict) and matches(self.door, item):
                        _add(self, [log_row(item)])
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


def _add(state: Any, new: list[dict[str, str]]) -> None:
    rows = list(state.rows)
    merged = merge_new(rows, new)
    added = len(merged) - len(rows)
    if added > 0:
        state.fresh_ids = [r["id"] for r in merged[:added]]
        state.rows = merged


def _variables(door: str) -> dict[str, Any]:
    return {"first": 50, "f": {"endpoint": door} if door else None}


async def _poll(state: Any, gen: int) -> None:
    async with state:
        token = state.token
        door = state.door
    try:
        data = await api.execute(queries.LOGS, _variables(door), token=token)
    except ApiError as exc:
        async with state:
            if state.live_gen == gen:
                state.live_status = f"reconnecting: {exc.message}"
        return
    async with state:
        if _still_wanted(state, gen):
            _add(state, [log_row(r) for r in fmt.nodes(data.get("gatewayLogs"))])
