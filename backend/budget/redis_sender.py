"""ScriptSender: one process's budget scripts on their way to Redis, in the order they came.

Why one sender: settles and releases do no I/O of their own, they ride with the next reserve.
When each call used a connection of its own, a reserve could reach Redis before a release sent
just before it on another connection (a drain, or another request's reserve carrying it), and
be refused against a hold that was already given back. Here a single task sends everything,
one pipelined call at a time: what is queued while a call is in flight goes in the next one,
settles and releases first, then the reserves in the order they were queued. Redis runs one
connection's commands in order, so a reserve sees every settle and release queued before it.

Round trips: an idle process sends a reserve at once with the settles queued so far (one round
trip, as before). A reserve queued while a call is in flight waits for it and goes in the next
one: no round trip of its own is added, concurrent reserves share one, and its latency is at
most that of the call in flight plus its own.

A reserve whose caller went away (cancelled) before its call was sent is not sent; if it was
sent and Redis booked it, its hold is released with the next call instead of counting until the
reservation TTL. Settles never depend on their caller: they are applied, journaled, or kept for
``retry_pending`` whatever happens to the request that queued or carried them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from backend.budget.base import Reservation, from_units
from backend.budget.journal import SpendJournal

log = logging.getLogger("switchboard.budget")

#: One script run: the registered script, its keys, its arguments (the epoch is added on send).
ScriptCall = tuple[Any, list[str], list[str]]
#: Runs calls in one pipelined round trip; returns their answers and the epoch each ran in.
Runner = Callable[[list[ScriptCall]], Awaitable[tuple[list[Any], list[str]]]]
#: (reservation, actual units): a settle, or a release when the units are 0.
Settlement = tuple[Reservation, int]


@dataclass(slots=True)
class _Queued:
    reservation: Reservation
    call: ScriptCall
    answer: asyncio.Future[Any]


class ScriptSender:
    def __init__(
        self,
        run: Runner,
        settle_call: Callable[[Reservation, int], ScriptCall],
        journal: SpendJournal,
        *,
        max_pending: int = 10_000,
    ) -> None:
        self._run = run
        self._settle_call = settle_call
        self._journal = journal
        #: Settlements and releases not sent yet: they go first in the next call.
        self._outbox: list[Settlement] = []
        #: Reserves not sent yet, in the order they came.
        self._reserves: list[_Queued] = []
        #: Waiters for "everything queued before me was sent" (``sent``).
        self._barriers: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        #: Charges Redis did not take (unreachable): sent again by ``retry_pending``.
        self.pending: deque[Settlement] = deque()
        self._max_pending = max_pending

    def settle_later(self, reservation: Reservation, units: int) -> None:
        """Queue a settle (``units`` > 0) or a release (0); no I/O here."""
        self._outbox.append((reservation, units))
        self._wake()

    async def reserve(self, reservation: Reservation, call: ScriptCall) -> Any:
        """Send ``call`` (the reserve script for ``reservation``) after everything queued
        before it; returns the script's answer."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._reserves.append(_Queued(reservation, call, answer))
        self._wake()
        # Cancelling the caller cancels this future: the sender then skips or releases it.
        return await answer

    async def sent(self) -> None:
        """Wait until everything queued so far was sent (or kept for a retry)."""
        if not (self._outbox or self._reserves or self._sending()):
            return
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append(barrier)
        self._wake()
        await barrier

    async def retry_pending(self) -> None:
        """Send again the charges Redis missed (each applies once: its ``done`` marker)."""
        if not self.pending:
            return
        self._outbox.extend(self.pending)
        self.pending.clear()
        self._wake()
        await self.sent()

    @property
    def pending_settlements(self) -> int:
        """Charges Redis has not taken yet (queued to send, or waiting for Redis to return)."""
        return len(self.pending) + sum(1 for _, units in self._outbox if units)

    def _sending(self) -> bool:
        return self._task is not None and not self._task.done()

    def _wake(self) -> None:
        if not self._sending():
            self._task = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        """The only sender: one pipelined call at a time until nothing is queued."""
        while self._outbox or self._reserves or self._barriers:
            batch, self._outbox = self._outbox, []
            queued = [q for q in self._reserves if not q.answer.cancelled()]
            barriers, self._reserves, self._barriers = self._barriers, [], []
            try:
                await self._send(batch, queued)
            finally:
                for barrier in barriers:
                    if not barrier.done():
                        barrier.set_result(None)

    async def _send(self, batch: list[Settlement], queued: list[_Queued]) -> None:
        if not batch and not queued:
            return
        calls = [self._settle_call(r, u) for r, u in batch]
        calls += [q.call for q in queued]
        try:
            results, epochs = await self._run(calls)
        except asyncio.CancelledError:  # the loop is closing: nothing will send these
            self._unsent(batch)
            for q in queued:
                q.answer.cancel()
            raise
        except Exception as exc:  # BudgetUnavailable mostly: refuse the reserves, keep charges
            self._unsent(batch)
            for q in queued:
                if not q.answer.done():
                    q.answer.set_exception(exc)
            return
        self._applied(batch, epochs)
        for q, answer in zip(queued, results[len(batch) :], strict=True):
            if not q.answer.cancelled():
                q.answer.set_result(answer)
            elif int(answer[0]) == 1:  # booked for a caller that went away: give it back
                q.reservation.state = "released"
                self._outbox.append((q.reservation, 0))

    def _applied(self, batch: list[Settlement], epochs: list[str]) -> None:
        """Journal each charge under the epoch its script checked (applied there, once)."""
        for (reservation, units), epoch in zip(batch, epochs, strict=False):
            if units:
                for hold in reservation.holds:
                    self._journal.add(epoch, (hold.scope, hold.period_start), units)

    def _unsent(self, batch: list[Settlement]) -> None:
        """Redis did not take these: charges wait for ``retry_pending``, releases expire."""
        charges = [(reservation, units) for reservation, units in batch if units]
        # Warn when an outage starts; flush() retries every interval, so later ones are debug.
        level = logging.DEBUG if self.pending else logging.WARNING
        for charge in charges:
            if len(self.pending) >= self._max_pending:
                lost = self.pending.popleft()
                log.error("budget: settle queue full, dropped a charge of %s", from_units(lost[1]))
            self.pending.append(charge)
        if charges:
            log.log(level, "budget store unavailable: %d settles wait for a retry", len(charges))
