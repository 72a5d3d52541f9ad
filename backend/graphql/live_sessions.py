"""WebSocket handlers whose operations live no longer than the session that opened them.

A socket authenticates once, at ``connection_init``; without more, its subscriptions would keep
running after a logout, and a deleted or suspended user could still subscribe on it. So:

- every ``subscribe`` (``start`` on the legacy protocol) re-authenticates the socket's token
  first and runs with the user as they are now;
- a watcher per socket re-checks the session whenever it may have changed: a ``sessions`` event
  for this user (logout, a revoked admin token: ``announce_session_change``) or a ``tenancy`` config
  change (suspension, deletion, role or organization change: ``backend.admin.tenancy``), both
  from the event bus, so every instance hears them; at the moment the session's token expires
  (its ``expires_at``); and every ``RECHECK_S`` in case an event was lost (Redis down).

A session that is no longer valid closes the socket with 4403. A valid session whose role or
organization changed ends the running operations with an error (``SESSION_CHANGED``), since
they were scoped for the old role; the client subscribes again and gets the new scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from graphql import GraphQLFormattedError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage as TransportInitMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage as TransportErrorMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ErrorMessage as LegacyErrorMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from backend.data.events import EventBus
from backend.data.models.tenancy import User
from backend.graphql.context import Context
from backend.security.sessions import SESSIONS_CHANNEL, token_row

log = logging.getLogger("switchboard.graphql")

#: Longest a subscription outlives its session when no event says it ended (a lost event).
RECHECK_S = 60.0
#: Checked this long after the token's expiry, so the check sees it expired.
_EXPIRY_MARGIN_S = 0.05
REVOKED_CODE = 4403
REVOKED_REASON = "session revoked, expired or suspended"
CHANGED_MESSAGE = "your role or organization changed: subscribe again"
CHANGED_CODE = "SESSION_CHANGED"


class SessionView(Protocol):
    async def authenticate(self, token: str | None) -> User | None: ...


def _scope(user: User) -> tuple[str, int | None]:
    return user.role, user.organization_id  # type: ignore[attr-defined]


class _SessionChecks:
    """What both protocol handlers share; each says how to end its running operations."""

    view: Any
    context: Context
    websocket: Any
    _watcher: asyncio.Task[None] | None = None
    _check_lock: asyncio.Lock | None = None
    #: When the socket's token expires (gateway clock); None: never (or not known).
    _expires_at: dt.datetime | None = None

    async def _stop_operations(self, message: str) -> None:
        raise NotImplementedError

    async def _session_still_valid(self) -> bool:
        """Re-authenticate the socket's token; False (socket closed) when the session ended."""
        if self._check_lock is None:
            self._check_lock = asyncio.Lock()
        async with self._check_lock:
            view: SessionView = self.view
            user = await view.authenticate(self.context.token)
            if user is None:
                # Closing ends the socket's handler, which cancels every running operation.
                with contextlib.suppress(Exception):
                    await self.websocket.close(code=REVOKED_CODE, reason=REVOKED_REASON)
                return False
            before = self.context.viewer
            self.context.viewer = user
            if before is not None and _scope(before) != _scope(user):
                await self._stop_operations(CHANGED_MESSAGE)
            return True

    def _until_next_check(self) -> float:
        """Seconds to the next periodic check: ``RECHECK_S``, or sooner if the token expires."""
        if self._expires_at is None:
            return RECHECK_S
        left = (self._expires_at - self.context.gateway.clock()).total_seconds()
        return min(RECHECK_S, max(0.0, left) + _EXPIRY_MARGIN_S)

    def _start_watching(self) -> None:
        if self._watcher is None and self.context.viewer is not None:
            self._watcher = asyncio.create_task(self._watch(), name="graphql-session-watch")

    async def _stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher

    async def _watch(self) -> None:
        bus: EventBus = self.context.gateway.bus
        wake = asyncio.Event()
        viewer = self.context.viewer
        user_id = viewer.id if viewer is not None else None

        async def relay(
            events: AsyncIterator[dict[str, Any]], relevant: Callable[[dict[str, Any]], bool]
        ) -> None:
            async for event in events:
                if relevant(event):
                    wake.set()

        # A token's expiry never moves (revocation is announced): read it once.
        try:
            row = await token_row(self.context.token or "")
            self._expires_at = row.expires_at if row is not None else None
        except Exception:
            log.warning("reading a WebSocket session's expiry failed", exc_info=True)
        async with bus.subscribe(SESSIONS_CHANNEL) as sessions, bus.subscribe("config") as config:
            relays = [
                asyncio.create_task(relay(sessions, lambda ev: ev.get("user_id") == user_id)),
                asyncio.create_task(relay(config, lambda ev: ev.get("domain") == "tenancy")),
            ]
            try:
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self._until_next_check())
                    wake.clear()
                    try:
                        if not await self._session_still_valid():
                            return
                    except Exception:
                        # The database is unreachable: keep watching, the next check may work.
                        log.warning("re-checking a WebSocket session failed", exc_info=True)
            finally:
                for task in relays:
                    task.cancel()
                await asyncio.gather(*relays, return_exceptions=True)


class TransportWSHandler(_SessionChecks, BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws (the current protocol)."""

    async def handle_connection_init(self, message: TransportInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self._start_watching()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and not await self._session_still_valid():
            return
        await super().handle_subscribe(message)

    async def _stop_operations(self, message: str) -> None:
        error: GraphQLFormattedError = {"message": message, "extensions": {"code": CHANGED_CODE}}
        for operation in list(self.operations.values()):
            if operation.task is not None:
                operation.task.cancel()
            with contextlib.suppress(Exception):
                # Marks the operation complete (nothing more is sent for it) and frees its id.
                await operation.send_operation_message(
                    TransportErrorMessage(id=operation.id, type="error", payload=[error])
                )

    async def shutdown(self) -> None:
        await self._stop_watching()
        await super().shutdown()


class LegacyWSHandler(_SessionChecks, BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (the legacy subscriptions-transport-ws protocol)."""

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self._start_watching()

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and not await self._session_still_valid():
            return
        await super().handle_start(message)

    async def _stop_operations(self, message: str) -> None:
        for operation_id in list(self.tasks):
            with contextlib.suppress(Exception):
                await self.send_message(
                    LegacyErrorMessage(
                        type="error",
                        id=operation_id,
                        payload={"message": message, "extensions": {"code": CHANGED_CODE}},
                    )
                )
            await self.cleanup_operation(operation_id)

    async def cleanup(self) -> None:
        await self._stop_watching()
        await super().cleanup()
