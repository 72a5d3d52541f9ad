"""LocalBudget: caps and rate limits in this process's memory, persisted by ``flush``.

``reserve`` checks every applicable cap and books the reservation without awaiting anything in
between, so on one event loop no two coroutines can both take the last dollar. This is the budget
for a single gateway process; several processes need ``RedisBudget`` (two LocalBudgets would each
see only their own traffic). Not thread-safe: use it from the event loop that owns it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from backend.budget.base import (
    DEFAULT_RESERVATION_TTL_S,
    NO_RESERVATION,
    Hold,
    Reservation,
    check_amount,
    from_units,
    new_reservation_id,
    quota_error,
    to_units,
)
from backend.budget.caps import Cap, Scope, applicable_caps, rollover_limit
from backend.budget.periods import (
    as_utc,
    earliest_relevant_start,
    next_period_start,
    period_start,
    previous_period_start,
    utc_now,
)
from backend.budget.persist import CounterKey, load_counters, store_counters
from backend.budget.ratelimit import LocalRateLimiter, RateTicket, applicable_limits
from backend.state.snapshot import Principal

if TYPE_CHECKING:
    from backend.gateway import Clock

log = logging.getLogger("switchboard.budget")


@dataclass(slots=True)
class _Counter:
    spent: int = 0
    reserved: int = 0
    #: reservation id -> (units, unix expiry)
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)

    def drop_expired(self, now_ts: float) -> None:
        for rid in [rid for rid, (_, exp) in self.holds.items() if exp <= now_ts]:
            self.reserved -= self.holds.pop(rid)[0]


class LocalBudget:
    def __init__(
        self,
        *,
        clock: Clock = utc_now,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
    ) -> None:
        # The clock only bounds which persisted periods load() reads and which counters are old.
        self._clock = clock
        self._ttl = reservation_ttl_s
        self._counters: dict[CounterKey, _Counter] = {}
        self._dirty: set[CounterKey] = set()
        self._rate = LocalRateLimiter()
        #: How many settlements had no price (charged 0).
        self.unpriced_settlements = 0

    async def reserve(self, principal: Principal, amount: Decimal, now: dt.datetime) -> Reservation:
        caps = applicable_caps(principal)
        if not caps:
            return NO_RESERVATION
        units = check_amount(amount, "amount")
        now = as_utc(now)
        now_ts = now.timestamp()
        booked: list[tuple[CounterKey, _Counter]] = []
        for cap in caps:
            key = (cap.scope, period_start(cap.period, now))
            counter = self._counters.get(key) or _Counter()
            limit = self._limit(cap, now)
            if counter.spent + counter.reserved + units > limit:
                counter.drop_expired(now_ts)
            used = counter.spent + counter.reserved
            if used + units > limit:
                raise quota_error(
                    cap,
                    limit_units=limit,
                    used_units=used,
                    amount_units=units,
                    resets_at=next_period_start(cap.period, now),
                )
            booked.append((key, counter))
        # Every cap admits the request: book it everywhere (still no await since the checks).
        rid = new_reservation_id()
        expires = now_ts + self._ttl
        for key, counter in booked:
            counter.reserved += units
            counter.holds[rid] = (units, expires)
            self._counters[key] = counter
        holds = tuple(Hold(scope, start) for (scope, start), _ in booked)
        return Reservation(rid, units, holds, expires)

    def _limit(self, cap: Cap, now: dt.datetime) -> int:
        cap_units = to_units(cap.amount)
        if not cap.rollover:
            return max(cap_units, 0)
        previous = self._counters.get((cap.scope, previous_period_start(cap.period, now)))
        return rollover_limit(cap_units, previous.spent if previous else 0)

    async def settle(self, reservation: Reservation, actual: Decimal | None) -> None:
        if reservation.state != "open":
            return
        units = check_amount(actual, "actual cost")
        reservation.state = "settled"
        reservation.settled_units = units
        if actual is None:
            reservation.unpriced = True
            self.unpriced_settlements += 1
            level = logging.WARNING if self.unpriced_settlements == 1 else logging.DEBUG
            log.log(level, "settled reservation %s with unknown price: charged 0", reservation.id)
        self._close(reservation, units)

    async def release(self, reservation: Reservation) -> None:
        if reservation.state != "open":
            return
        reservation.state = "released"
        self._close(reservation, 0)

    def _close(self, reservation: Reservation, units: int) -> None:
        for hold in reservation.holds:
            key = (hold.scope, hold.period_start)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = _Counter()
            entry = counter.holds.pop(reservation.id, None)
            if entry is not None:
                counter.reserved -= entry[0]
            if units:
                counter.spent += units
                self._dirty.add(key)

    async def acquire_rate(self, principal: Principal, tokens: int, now: dt.datetime) -> RateTicket:
        return self._rate.acquire(applicable_limits(principal), tokens, as_utc(now).timestamp())

    def settle_rate(self, ticket: RateTicket, tokens: int) -> None:
        if ticket.settled:
            return
        ticket.settled = True
        self._rate.settle(ticket, tokens)

    async def spent(self, scope: Scope, period_start: dt.datetime) -> Decimal:
        counter = self._counters.get((scope, as_utc(period_start)))
        return from_units(counter.spent if counter else 0)

    async def load(self) -> None:
        for key, units in (await load_counters(earliest_relevant_start(self._clock()))).items():
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = _Counter()
            counter.spent = max(counter.spent, units)

    async def flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        try:
            await store_counters((key, self._counters[key].spent) for key in dirty)
        except BaseException:
            self._dirty |= dirty
            raise
        self._prune()

    def _prune(self) -> None:
        horizon = earliest_relevant_start(self._clock())
        for key in [
            key
            for key, counter in self._counters.items()
            if key[1] < horizon and not counter.holds and key not in self._dirty
        ]:
            del self._counters[key]
