"""Ordered senders: one process's Redis scripts on their way, in the order they came.

Why one sender: settles (and the budget's releases) do no I/O of their own, they ride with the
next call that needs an answer (a cap's reserve, a rate limit's check). When each call used a
connection of its own, a reserve or check could reach Redis before a settle sent just before it
on another connection (a drain, or another request's call carrying it), and be decided against
counts that were already out of date: a cap refused against a hold already given back, a
tokens-per-minute limit letting a caller through before its real token count landed. Here a
single task sends everything, one pipelined call at a time: what is queued while a call is in
flight goes in the next one, settles first, then the calls awaiting answers in the order they
were queued. Redis runs one connection's commands in order, so a call sees every settle queued
before it.

``OrderedSender`` is that mechanism; ``ScriptSender`` is the spend caps' (settles are journaled,
and kept for ``retry_pending`` when Redis is unreachable); ``redis_ratelimit`` uses the plain
one for its checks and token settles (a settle Redis missed is dropped: it only lowers a count).

Round trips: an idle process sends a call at once with the settles queued so far (one round
trip, as before). A call queued while another is in flight waits for it and goes in the next
one: no round trip of its own is added, concurrent calls share one, and its latency is at most
that of the call in flight plus its own.

A call whose caller went away (cancelled) before it was sent is not sent; if it was sent and
Redis booked it, its ``abandoned`` callback gives the booking back with the next call instead of
leaving it to count. Settles never depend on their caller: they are applied, journaled, or kept
for ``retry_pending`` whatever happens to the request that queued or carried them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from backend.budget.base import Reservation, from_units
from backend.budget.journal import SpendJournal

log = logging.getLogger("switchboard.budget")

#: One script run: the registered script, its keys, its arguments.
ScriptCall = tuple[Any, list[Any], list[Any]]
#: Runs calls in one pipelined round trip; returns their answers and a tag for each (the
#: budget: the epoch it ran in), which ``_applied`` gets for the settles.
Runner = Callable[[list[ScriptCall]], Awaitable[tuple[list[Any], list[str]]]]
#: (reservation, actual units): a settle, or a release when the units are 0.
Settlement = tuple[Reservation, int]
S = TypeVar("S")


@dataclass(slots=True)
class _Queued:
    call: ScriptCall
    answer: asyncio.Future[Any]
    #: Gets the script's answer if it ran after its caller went away (gives a booking back).
    abandoned: Callable[[Any], None] | None


class OrderedSender(Generic[S]):
    """Sends this process's scripts in order: queued settles (``S``, turned into scripts by
    ``settle_call``) first, then the calls awaiting answers, one pipelined call at a time."""

    def __init__(self, run: Runner, settle_call: Callable[[S], ScriptCall]) -> None:
        self._run = run
        self._settle_call = settle_call
        #: Settlements not sent yet: they go first in the next call.
        self._outbox: list[S] = []
        #: Calls awaiting answers not sent yet, in the order they came.
        self._calls: list[_Queued] = []
        #: Waiters for "everything queued before me was sent" (``sent``).
        self._barriers: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None

    def queue(self, settlement: S) -> None:
        """Queue a settlement; no I/O here (it goes before any call queued after it)."""
        self._outbox.append(settlement)
        self._wake()

    async def call(self, call: ScriptCall, abandoned: Callable[[Any], None] | None = None) -> Any:
        """Send ``call`` after everything queued before it; returns the script's answer.

        If the caller is cancelled before the answer, the call is not sent, or, if it was,
        ``abandoned`` gets its answer."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls.append(_Queued(call, answer, abandoned))
        self._wake()
        # Cancelling the caller cancels this future: the sender then skips or abandons it.
        return await answer

    async def sent(self) -> None:
        """Wait until everything queued so far was sent (or kept for a retry)."""
        if not (self._outbox or self._calls or self._sending()):
            return
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append(barrier)
        self._wake()
        await barrier

    def _sending(self) -> bool:
        return self._task is not None and not self._task.done()

    def _wake(self) -> None:
        if not self._sending():
            self._task = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        """The only sender: one pipelined call at a time until nothing is queued."""
        while self._outbox or self._calls or self._barriers:
            batch, self._outbox = self._outbox, []
            queued = [q for q in self._calls if not q.answer.cancelled()]
            barriers, self._calls, self._barriers = self._barriers, [], []
            try:
                await self._send(batch, queued)
            finally:
                for barrier in barriers:
                    if not barrier.done():
                        barrier.set_result(None)

    async def _send(self, batch: list[S], queued: list[_Queued]) -> None:
        if not batch and not queued:
            return
        calls = [self._settle_call(s) for s in batch]
        calls += [q.call for q in queued]
        try:
            results, tags = await self._run(calls)
        except asyncio.CancelledError:  # the loop is closing: nothing will send these
            self._unsent(batch)
            for q in queued:
                q.answer.cancel()
            raise
        except Exception as exc:  # Redis unreachable mostly: fail the calls, keep charges
            self._unsent(batch)
            for q in queued:
                if not q.answer.done():
                    q.answer.set_exception(exc)
            return
        self._applied(batch, tags)
        for q, answer in zip(queued, results[len(batch) :], strict=True):
            if not q.answer.cancelled():
                q.answer.set_result(answer)
            elif q.abandoned is not None:  # ran for a caller that went away
                q.abandoned(answer)

    def _applied(self, batch: list[S], tags: list[str]) -> None:
        """Hook: ``batch`` reached Redis (``tags`` from the runner, one per settle)."""

    def _unsent(self, batch: list[S]) -> None:
        """Hook: Redis did not take ``batch`` (unreachable); by default it is dropped."""


class ScriptSender(OrderedSender[Settlement]):
    """The spend caps' sender: settles are journaled under the epoch they were applied in, and
    charges Redis missed wait in ``pending`` for ``retry_pending``; a reserve booked for a
    caller that went away is released with the next call."""

    def __init__(
        self,
        run: Runner,
        settle_call: Callable[[Reservation, int], ScriptCall],
        journal: SpendJournal,
        *,
        max_pending: int = 10_000,
    ) -> None:
        super().__init__(run, lambda s: settle_call(*s))
        self._journal = journal
        #: Charges Redis did not take (unreachable): sent again by ``retry_pending``.
        self.pending: deque[Settlement] = deque()
        self._max_pending = max_pending

    def settle_later(self, reservation: Reservation, units: int) -> None:
        """Queue a settle (``units`` > 0) or a release (0); no I/O here."""
        self.queue((reservation, units))

    async def reserve(self, reservation: Reservation, call: ScriptCall) -> Any:
        """Send ``call`` (the reserve script for ``reservation``) after everything queued
        before it; returns the script's answer."""

        def abandoned(answer: Any) -> None:
            if int(answer[0]) == 1:  # booked for a caller that went away: give it back
                reservation.state = "released"
                self._outbox.append((reservation, 0))

        return await self.call(call, abandoned)

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
