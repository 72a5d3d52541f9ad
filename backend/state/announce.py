"""Announcer: tells the other instances which config domains changed, until the bus takes it.

An admin change is committed to the database before it is announced, so a failed publish (Redis
down) must neither fail the change nor be forgotten: the domain stays pending and a background task
retries with capped exponential backoff until the bus accepts it. Pending domains are a set —
a reload reads a whole domain, so one announcement covers every change made before it was sent.

This is half of the guarantee; the other half is on the receiving side: an instance whose
subscription was lost reloads its whole snapshot when it subscribes again (``ConfigStore``), since
it may have missed announcements that did go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from backend.data.events import EventBus

log = logging.getLogger("switchboard.config")


class Announcer:
    def __init__(
        self,
        bus: EventBus,
        origin: str,
        *,
        attempt_timeout_s: float = 2.0,
        first_delay_s: float = 0.2,
        max_delay_s: float = 5.0,
    ) -> None:
        self._bus = bus
        self._origin = origin
        self._attempt_timeout_s = attempt_timeout_s
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        #: Insertion-ordered set of domains not yet accepted by the bus.
        self._pending: dict[str, None] = {}
        self._retry: asyncio.Task[None] | None = None

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(self._pending)

    async def announce(self, domain: str) -> None:
        """Publish ``domain`` now if the bus takes it, else leave it to the retry task.

        A bus failure never reaches the caller (the change is already committed)."""
        self._pending[domain] = None
        if self._retry is not None and not self._retry.done():
            return  # the bus is known to be failing: the retry task sends it with the rest
        try:
            await self._send_pending()
        finally:
            # The bus refused, or the caller was cancelled mid-publish: it still gets out.
            if self._pending:
                self._start_retry()

    def _start_retry(self) -> None:
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._retry_until_sent(), name="config-announcer")

    async def close(self, final_attempt_s: float = 2.0) -> None:
        """Stop retrying after one last bounded attempt (a clean stop should not drop a change)."""
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send_pending(), final_attempt_s)
        if self._pending:
            log.error(
                "config changes to %s were never announced; other instances pick them up when "
                "their subscription reconnects or they restart",
                ", ".join(self._pending),
            )

    async def _send_pending(self) -> bool:
        """Publish every pending domain; False at the first failure (that domain stays pending)."""
        while self._pending:
            # Taken off before the publish: a change committed while it is in flight pends again
            # and gets an announcement of its own.
            domain = next(iter(self._pending))
            del self._pending[domain]
            try:
                await asyncio.wait_for(
                    self._bus.publish("config", {"domain": domain, "origin": self._origin}),
                    self._attempt_timeout_s,
                )
            except BaseException as exc:
                self._pending[domain] = None
                if not isinstance(exc, Exception):
                    raise  # cancelled: it stays pending
                log.warning(
                    "announcing a %s config change failed (%s); retrying in the background",
                    domain,
                    type(exc).__name__,
                )
                return False
        return True

    async def _retry_until_sent(self) -> None:
        delay = self._first_delay_s
        while True:
            await asyncio.sleep(delay)
            if await self._send_pending():
                log.info("config changes announced after the bus came back")
                return
            delay = min(delay * 2, self._max_delay_s)
