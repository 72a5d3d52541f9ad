"""RedisBudget: caps and rate limits shared by every gateway process through Redis.

One Lua script checks all caps of a request and books the reservation in the same atomic step
(Redis runs a script alone), so N processes cannot together overshoot a cap. Keys, all under
``key_prefix`` (put a hash tag in the prefix, e.g. ``"{sb}:"``, on Redis Cluster)::

    spent:<scope>:<id>:<yyyymmdd>   settled units (10^-8 USD) of one cap period, kept ~70 days
    resv:<scope>:<id>:<yyyymmdd>    units reserved by requests in flight
    holds:<scope>:<id>:<yyyymmdd>   ZSET "<reservation id>:<units>" scored by expiry; expired holds
                                    are subtracted from resv by the next reserve (a crashed process
                                    cannot leak its reservations for longer than the TTL)
    done:<reservation id>           settle marker, so a retried settle is applied once
    rate:<key id>:<minute>          requests of a key in one fixed 60 s window
    seeded                          present once the counters were seeded from the database

Round trips: settling and releasing do no I/O of their own. They queue the settle script in an
outbox, which rides along with the next ``reserve`` (its settles and the reserve script go in one
pipelined call, settles first, so a cap sees them) or, if no request comes first, is sent by a
drain task on the next event-loop turn. A capped request therefore costs one round trip.

Persistence: ``flush`` copies the settled counters this process changed into ``SpendCounter``
(never lowering a row); ``load`` seeds Redis from ``SpendCounter`` with SET NX, so existing
(newer) Redis values win and several processes may load at once. Redis here keeps nothing on
disk: when it restarts, the ``seeded`` marker is gone, every script answers "unseeded", and the
first process to notice seeds Redis again from the database before going on. Redis must not evict
keys (``maxmemory-policy noeviction``).

When Redis is unreachable (or slower than ``timeout_s``):

- ``reserve`` for a principal with a cap raises ``BudgetUnavailable`` (503, code
  ``budget_store_unavailable``, Retry-After 5): without the shared counters the cap cannot be
  enforced, and letting capped traffic through is the leak caps exist to prevent. Principals
  without caps never touch Redis and pass.
- ``settle`` does not fail the finished request: the charge is queued in memory and applied by the
  next ``flush`` (once, thanks to the ``done`` marker). A ``release`` is dropped: the hold expires.
- ``check_rate`` falls back to an in-process window, so limits still hold per process.
- ``spent`` raises ``BudgetUnavailable``; ``flush`` keeps its work for the next round.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import redis.exceptions as redis_errors

from backend.budget.base import (
    DEFAULT_RESERVATION_TTL_S,
    NO_RESERVATION,
    RATE_WINDOW_S,
    BudgetUnavailable,
    Hold,
    Reservation,
    budget_unavailable,
    check_amount,
    from_units,
    new_reservation_id,
    quota_error,
    to_units,
)
from backend.budget.caps import Scope, applicable_caps
from backend.budget.periods import (
    as_utc,
    earliest_relevant_start,
    next_period_start,
    period_start,
    previous_period_start,
    utc_now,
)
from backend.budget.persist import CounterKey, load_counters, store_counters
from backend.budget.ratelimit import LocalRateLimiter, enforce, window_of
from backend.state.snapshot import KeyInfo, Principal

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from backend.gateway import Clock

log = logging.getLogger("switchboard.budget")

#: A spent counter must outlive the period after its own (rollover reads it): 62 days + margin.
SPENT_TTL_S = 70 * 86400
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    OSError,  # includes the builtin TimeoutError raised by asyncio.timeout
)
_UNSEEDED = -1
#: One script run: the registered script, its keys, its arguments.
ScriptCall = tuple[Any, list[str], list[str]]
#: Key names memoised per (kind, scope, period): scopes in use x a few periods.
_KEY_MEMO_LIMIT = 65_536

# KEYS[1] seeded marker, then 4 keys per cap: spent, resv, holds, previous period's spent.
# ARGV: now, hold expiry, hold member, units, resv/holds ttl, then per cap: cap units, rollover.
# Returns {1} booked, {-1} unseeded, {0, cap index, used units, limit units} refused.
# Amounts go to INCRBY/DECRBY as the caller's strings: Lua would print big numbers as 1e+15.
RESERVE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local units = tonumber(ARGV[4])
for i = 1, (#KEYS - 1) / 4 do
  local b = 4 * (i - 1)
  local spent_k, resv_k, holds_k, prev_k = KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], KEYS[b + 5]
  local expired = redis.call('ZRANGEBYSCORE', holds_k, '-inf', ARGV[1])
  if #expired > 0 then
    for _, member in ipairs(expired) do
      redis.call('DECRBY', resv_k, string.match(member, ':(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', holds_k, '-inf', ARGV[1])
  end
  local cap = tonumber(ARGV[4 + 2 * i])
  local limit = 0
  if cap > 0 then
    limit = cap
    if ARGV[5 + 2 * i] == '1' then
      local unused = cap - tonumber(redis.call('GET', prev_k) or '0')
      if unused < 0 then unused = 0 end
      if unused > cap then unused = cap end
      limit = cap + unused
    end
  end
  local used = tonumber(redis.call('GET', spent_k) or '0')
  used = used + tonumber(redis.call('GET', resv_k) or '0')
  if used + units > limit then return {0, i, used, limit} end
end
for i = 1, (#KEYS - 1) / 4 do
  local b = 4 * (i - 1)
  redis.call('INCRBY', KEYS[b + 3], ARGV[4])
  redis.call('EXPIRE', KEYS[b + 3], ARGV[5])
  redis.call('ZADD', KEYS[b + 4], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[b + 4], ARGV[5])
end
return {1}
"""

# KEYS[1] seeded marker, KEYS[2] done marker, then 3 keys per hold: spent, resv, holds.
# ARGV: hold member, reserved units, actual units, spent ttl, done ttl.
# Returns {1} applied, {0} already applied, {-1} unseeded (only when charging).
SETTLE_LUA = """
local charge = tonumber(ARGV[3]) > 0
if charge then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
  if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[5]) then return {0} end
end
for b = 3, #KEYS, 3 do
  if redis.call('ZREM', KEYS[b + 2], ARGV[1]) == 1 then
    redis.call('DECRBY', KEYS[b + 1], ARGV[2])
  end
  if charge then
    redis.call('INCRBY', KEYS[b], ARGV[3])
    redis.call('EXPIRE', KEYS[b], ARGV[4])
  end
end
return {1}
"""

RATE_LUA = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class RedisBudget:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str = "sb:budget:",
        *,
        clock: Clock = utc_now,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        timeout_s: float = 1.0,
        max_pending: int = 10_000,
    ) -> None:
        self._redis = redis
        self.key_prefix = key_prefix
        # The clock only bounds which persisted periods are seeded into Redis.
        self._clock = clock
        self._ttl = reservation_ttl_s
        self._holds_ttl = str(math.ceil(reservation_ttl_s) + 60)
        self._timeout = timeout_s
        self._reserve = redis.register_script(RESERVE_LUA)
        self._settle = redis.register_script(SETTLE_LUA)
        self._rate = redis.register_script(RATE_LUA)
        self._seeded_key = f"{key_prefix}seeded"
        self._seed_lock = asyncio.Lock()
        self._dirty: set[CounterKey] = set()
        #: Settlements Redis did not take yet: (reservation, actual units), retried by flush().
        self._pending: deque[tuple[Reservation, int]] = deque()
        self._max_pending = max_pending
        #: Settlements and releases not sent yet: they go with the next reserve or drain.
        self._outbox: list[tuple[Reservation, int]] = []
        self._drain_task: asyncio.Task[None] | None = None
        self._keys: dict[tuple[str, Scope, dt.datetime], str] = {}
        self._fallback_rate = LocalRateLimiter()
        #: How many settlements had no price (charged 0).
        self.unpriced_settlements = 0

    def _key(self, kind: str, scope: Scope, start: dt.datetime) -> str:
        # Memoised: formatting the date was the budget's largest own cost per request.
        ident = (kind, scope, start)
        key = self._keys.get(ident)
        if key is None:
            if len(self._keys) >= _KEY_MEMO_LIMIT:
                self._keys.clear()
            key = self._keys[ident] = (
                f"{self.key_prefix}{kind}:{scope[0]}:{scope[1]}:{start:%Y%m%d}"
            )
        return key

    # -- caps ---------------------------------------------------------------------------------

    async def reserve(self, principal: Principal, amount: Decimal, now: dt.datetime) -> Reservation:
        caps = applicable_caps(principal)
        if not caps:
            return NO_RESERVATION
        units = check_amount(amount, "amount")
        now = as_utc(now)
        now_ts = now.timestamp()
        rid = new_reservation_id()
        expires = now_ts + self._ttl
        keys = [self._seeded_key]
        args = [repr(now_ts), repr(expires), f"{rid}:{units}", str(units), self._holds_ttl]
        holds = []
        for cap in caps:
            start = period_start(cap.period, now)
            keys += [
                self._key("spent", cap.scope, start),
                self._key("resv", cap.scope, start),
                self._key("holds", cap.scope, start),
                self._key("spent", cap.scope, previous_period_start(cap.period, now)),
            ]
            args += [str(to_units(cap.amount)), "1" if cap.rollover else "0"]
            holds.append(Hold(cap.scope, start))
        batch, self._outbox = self._outbox, []
        calls = [self._settle_call(r, u) for r, u in batch]
        calls.append((self._reserve, keys, args))
        try:
            results = await self._pipelined(calls)
        except BudgetUnavailable:
            self._unsent(batch)
            raise
        self._applied(batch)
        result = results[-1]
        if int(result[0]) == 1:
            return Reservation(rid, units, tuple(holds), expires)
        cap = caps[int(result[1]) - 1]
        raise quota_error(
            cap,
            limit_units=int(result[3]),
            used_units=int(result[2]),
            amount_units=units,
            resets_at=next_period_start(cap.period, now),
        )

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
        self._send_later(reservation, units)

    async def release(self, reservation: Reservation) -> None:
        if reservation.state != "open":
            return
        reservation.state = "released"
        self._send_later(reservation, 0)

    def _send_later(self, reservation: Reservation, units: int) -> None:
        self._outbox.append((reservation, units))
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Send what no reserve took along (runs on the next event-loop turn)."""
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self._pipelined([self._settle_call(r, u) for r, u in batch])
            except BudgetUnavailable:
                self._unsent(batch)
                return
            self._applied(batch)

    async def _sent(self) -> None:
        """Wait until everything settled so far was sent (or queued for retry)."""
        task = self._drain_task
        if task is not None and not task.done():
            await task
        await self._drain()

    def _settle_call(self, reservation: Reservation, units: int) -> ScriptCall:
        keys = [self._seeded_key, f"{self.key_prefix}done:{reservation.id}"]
        for hold in reservation.holds:
            start = hold.period_start
            keys += [self._key(k, hold.scope, start) for k in ("spent", "resv", "holds")]
        args = [
            f"{reservation.id}:{reservation.units}",
            str(reservation.units),
            str(units),
            str(SPENT_TTL_S),
            self._holds_ttl,
        ]
        return self._settle, keys, args

    def _applied(self, batch: list[tuple[Reservation, int]]) -> None:
        for reservation, units in batch:
            if units:
                self._dirty.update((hold.scope, hold.period_start) for hold in reservation.holds)

    def _unsent(self, batch: list[tuple[Reservation, int]]) -> None:
        """Redis did not take these: charges wait in memory for flush(), releases expire."""
        for reservation, units in batch:
            if not units:
                continue
            if len(self._pending) >= self._max_pending:
                lost = self._pending.popleft()
                log.error("budget: settle queue full, dropped a charge of %s", from_units(lost[1]))
            self._pending.append((reservation, units))
            log.warning("budget store unavailable: settle of %s queued", reservation.id)

    async def _pipelined(self, calls: list[ScriptCall]) -> list[Any]:
        """Run scripts in one round trip; if Redis lost its scripts, its seed marker or both (a
        restart without persistence), load the scripts and reseed, each at most once, and run
        again only the calls that did not run."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        loaded = reseeded = False
        while True:
            pipe = self._redis.pipeline(transaction=False)
            for i in todo:
                script, keys, args = calls[i]
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                async with asyncio.timeout(self._timeout):
                    answers: list[Any] = await pipe.execute(raise_on_error=False)
            except _UNAVAILABLE as exc:
                raise budget_unavailable(type(exc).__name__) from exc
            no_script: list[int] = []
            unseeded: list[int] = []
            for i, answer in zip(todo, answers, strict=True):
                if isinstance(answer, redis_errors.NoScriptError):
                    no_script.append(i)
                elif isinstance(answer, _UNAVAILABLE):
                    raise budget_unavailable(type(answer).__name__) from answer
                elif isinstance(answer, Exception):
                    raise answer
                elif int(answer[0]) == _UNSEEDED:
                    unseeded.append(i)
                else:
                    results[i] = answer
            if not no_script and not unseeded:
                return results
            # A script that ran is not run again: a reserve booked twice would hold twice.
            if no_script:
                if loaded:
                    raise budget_unavailable("scripts could not be loaded")
                loaded = True
                await self._load_scripts(calls[i][0] for i in no_script)
            if unseeded:
                if reseeded:
                    raise budget_unavailable("counters not seeded")
                reseeded = True
                await self._reseed()
            todo = sorted(no_script + unseeded)

    async def _load_scripts(self, scripts: Iterable[Any]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                for script in {id(s): s for s in scripts}.values():
                    await self._redis.script_load(script.script)
        except _UNAVAILABLE as exc:
            raise budget_unavailable(type(exc).__name__) from exc

    async def spent(self, scope: Scope, period_start: dt.datetime) -> Decimal:
        await self._sent()  # what this process settled counts before it reads
        try:
            async with asyncio.timeout(self._timeout):
                value = await self._redis.get(self._key("spent", scope, as_utc(period_start)))
        except _UNAVAILABLE as exc:
            raise budget_unavailable(type(exc).__name__) from exc
        return from_units(int(value) if value is not None else 0)

    # -- rate limits ----------------------------------------------------------------------------

    async def check_rate(self, key: KeyInfo, now: dt.datetime) -> None:
        rpm = key.rate_limit_rpm
        if rpm is None:
            return
        index, retry = window_of(now)
        try:
            async with asyncio.timeout(self._timeout):
                count = await self._rate(
                    keys=[f"{self.key_prefix}rate:{key.id}:{index}"], args=[2 * RATE_WINDOW_S]
                )
        except _UNAVAILABLE:
            self._fallback_rate.check(key, now)
            return
        enforce(key, rpm, int(count), retry)

    # -- persistence ----------------------------------------------------------------------------

    async def load(self) -> None:
        try:
            async with self._seed_lock:
                await self._seed()
        except _UNAVAILABLE as exc:
            log.warning("budget: Redis unreachable at load (%r); will seed when it is back", exc)

    async def _reseed(self) -> None:
        async with self._seed_lock:
            try:
                async with asyncio.timeout(self._timeout):
                    if await self._redis.exists(self._seeded_key):
                        return
            except _UNAVAILABLE as exc:
                raise budget_unavailable(type(exc).__name__) from exc
            try:
                await self._seed()
            except _UNAVAILABLE as exc:
                raise budget_unavailable(type(exc).__name__) from exc
            except Exception as exc:  # the database: refuse capped requests rather than guess
                log.exception("budget: could not reseed Redis from the database")
                raise budget_unavailable("counters could not be reloaded") from exc

    async def _seed(self) -> None:
        counters = await load_counters(earliest_relevant_start(self._clock()))
        async with asyncio.timeout(max(self._timeout, 10.0)):
            pipe = self._redis.pipeline(transaction=False)
            for (scope, start), units in counters.items():
                pipe.set(self._key("spent", scope, start), units, nx=True, ex=SPENT_TTL_S)
            pipe.set(self._seeded_key, "1")
            await pipe.execute()
        log.info("budget: seeded %d spend counters into Redis", len(counters))

    async def flush(self) -> None:
        await self._sent()
        await self._retry_pending()
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        keys = list(dirty)
        try:
            async with asyncio.timeout(self._timeout):
                values = await self._redis.mget([self._key("spent", s, p) for s, p in keys])
        except _UNAVAILABLE as exc:
            self._dirty |= dirty
            log.warning("budget: Redis unreachable at flush (%r); will retry", exc)
            return
        try:
            await store_counters(
                (key, int(value)) for key, value in zip(keys, values, strict=True) if value
            )
        except BaseException:
            self._dirty |= dirty
            raise

    async def _retry_pending(self) -> None:
        """Send the charges Redis missed, all in one pipelined call (each applies once)."""
        if not self._pending:
            return
        batch = list(self._pending)
        self._pending.clear()
        try:
            await self._pipelined([self._settle_call(r, u) for r, u in batch])
        except BudgetUnavailable:
            self._pending.extendleft(reversed(batch))
            return
        self._applied(batch)

    @property
    def pending_settlements(self) -> int:
        """Charges Redis has not taken yet (queued to send, or waiting for Redis to return)."""
        return len(self._pending) + sum(1 for _, units in self._outbox if units)
