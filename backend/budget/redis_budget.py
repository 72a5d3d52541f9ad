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
    rl:<metric>:<scope>:<id>        sliding-window rate limits (``redis_ratelimit``)
    seeded                          the epoch: a random token written by the seed that filled
                                    this Redis from the database (gone when Redis restarts empty)
    resync:<process>:<n>            marker of one process's catch-up into a new epoch (applied once)

Round trips: settling and releasing do no I/O of their own. They queue the settle script, which
rides along with the next ``reserve`` (one pipelined call, settles first, so a cap sees them) or,
if no request comes first, goes on its own on the next event-loop turn. A capped request
therefore costs one round trip. One task sends all of this process's calls, one at a time, in
the order they were queued (``redis_sender``), so a reserve never overtakes a release or settle
queued before it.

Persistence and restarts (README.md, "Redis restarts", has the reasoning): ``flush`` adds to
``SpendCounter`` the spend this process settled since its last flush (its ``SpendJournal``),
never Redis's absolute values. When Redis restarts empty, the first process to notice seeds it
from the database under the counters' lock, with a new epoch in the ``seeded`` marker; every
process then finds the epoch changed and applies, once, what it settled that the database did
not hold when the seed read it, and the holds of its requests in flight. Redis must not evict
keys (``maxmemory-policy noeviction``).

When Redis is unreachable (or slower than ``timeout_s``):

- ``reserve`` for a principal with a cap raises ``BudgetUnavailable`` (503, code
  ``budget_store_unavailable``, Retry-After 5): without the shared counters the cap cannot be
  enforced, and letting capped traffic through is the leak caps exist to prevent. Principals
  without caps never touch Redis and pass.
- ``settle`` does not fail the finished request: the charge is queued in memory and applied by the
  next ``flush`` (once, thanks to the ``done`` marker). A ``release`` is dropped: the hold expires.
- ``acquire_rate`` falls back to in-process windows, so limits still hold per process.
- ``spent`` raises ``BudgetUnavailable``; ``flush`` keeps its work for the next round.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import redis.exceptions as redis_errors

from backend.budget.base import (
    DEFAULT_RESERVATION_TTL_S,
    NO_RESERVATION,
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
from backend.budget.journal import SpendJournal
from backend.budget.periods import (
    as_utc,
    earliest_relevant_start,
    next_period_start,
    period_start,
    previous_period_start,
    utc_now,
)
from backend.budget.persist import CounterKey, add_counters, counters_lock, load_counters
from backend.budget.ratelimit import RateTicket, applicable_limits
from backend.budget.redis_ratelimit import RedisRateLimiter
from backend.budget.redis_scripts import (
    RESERVE_LUA,
    RESYNC_LUA,
    SEED_LUA,
    SETTLE_LUA,
    STALE_EPOCH,
    UNSEEDED,
)
from backend.budget.redis_sender import ScriptCall, ScriptSender
from backend.state.snapshot import Principal

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
_T = TypeVar("_T")
_PASS_ON: tuple[type[BaseException], ...] = (*_UNAVAILABLE, BudgetUnavailable)
#: Key names memoised per (kind, scope, period): scopes in use x a few periods.
_KEY_MEMO_LIMIT = 65_536


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


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
        self.rates = RedisRateLimiter(redis, key_prefix, timeout_s=timeout_s)
        self._seed_script = redis.register_script(SEED_LUA)
        self._resync_script = redis.register_script(RESYNC_LUA)
        self._seeded_key = f"{key_prefix}seeded"
        #: The Redis epoch this process is in step with (None: not yet known).
        self._epoch: str | None = None
        #: Spend settled into Redis that the database may not hold yet, by epoch.
        self.journal = SpendJournal()
        #: Open reservations: their holds are carried into a new epoch after a restart.
        self._open: dict[str, Reservation] = {}
        self._process = f"{random.getrandbits(64):016x}"
        self._resyncs = 0
        #: A catch-up whose answer was lost: (epoch, done key, keys, args, moves, owed).
        self._doubt: tuple[str, str, list[str], list[str], dict[str, Any], dict[Any, int]] | None
        self._doubt = None
        #: Serialises this process's flush, seed and catch-up (the database lock does it across
        #: processes; this one also covers the bookkeeping after a commit).
        self._sync_lock = asyncio.Lock()
        #: Sends reserves, settles and releases in order; keeps charges Redis missed for flush().
        self._sender = ScriptSender(
            self._pipelined, self._settle_call, self.journal, max_pending=max_pending
        )
        self._keys: dict[tuple[str, Scope, dt.datetime], str] = {}
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
        holds: list[Hold] = []
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
        reservation = Reservation(rid, units, tuple(holds), expires)
        # After every settle and release queued so far, in the same call as those not sent yet.
        result = await self._sender.reserve(reservation, (self._reserve, keys, args))
        if int(result[0]) == 1:
            self._open[rid] = reservation
            return reservation
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
        self._open.pop(reservation.id, None)
        self._sender.settle_later(reservation, units)

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

    async def _pipelined(self, calls: list[ScriptCall]) -> tuple[list[Any], list[str]]:
        """Run scripts in one round trip; returns their answers and the epoch each ran in.

        If Redis lost its scripts, its seed marker or both (a restart without persistence), or
        another process seeded a new epoch, load the scripts and catch up (seed, then bring
        this process's share into the epoch), each at most once, and run again only the calls
        that did not run.
        """
        results: list[Any] = [None] * len(calls)
        epochs: list[str] = [""] * len(calls)
        todo = list(range(len(calls)))
        loaded = synced = False
        while True:
            epoch = self._epoch or ""

            async def send(epoch: str = epoch, todo: list[int] = todo) -> list[Any]:
                pipe = self._redis.pipeline(transaction=False)
                for i in todo:
                    script, keys, args = calls[i]
                    pipe.evalsha(script.sha, len(keys), *keys, *args, epoch)
                answers: list[Any] = await pipe.execute(raise_on_error=False)
                return answers

            try:
                answers = await self._io(send)
            except _UNAVAILABLE as exc:
                raise budget_unavailable(type(exc).__name__) from exc
            no_script: list[int] = []
            stale: list[int] = []
            for i, answer in zip(todo, answers, strict=True):
                if isinstance(answer, redis_errors.NoScriptError):
                    no_script.append(i)
                elif isinstance(answer, _UNAVAILABLE):
                    raise budget_unavailable(type(answer).__name__) from answer
                elif isinstance(answer, Exception):
                    raise answer
                elif int(answer[0]) in (UNSEEDED, STALE_EPOCH):
                    stale.append(i)
                else:
                    results[i], epochs[i] = answer, epoch
            if not no_script and not stale:
                return results, epochs
            # A script that ran is not run again: a reserve booked twice would hold twice.
            if no_script:
                if loaded:
                    raise budget_unavailable("scripts could not be loaded")
                loaded = True
                await self._load_scripts()
            if stale:
                if synced:
                    raise budget_unavailable("counters not seeded")
                synced = True
                await self._catch_up()
            todo = sorted(no_script + stale)

    async def _io(self, call: Callable[[], Awaitable[_T]], timeout: float | None = None) -> _T:
        """One Redis call within the timeout; once more if the server closed the connection.

        A restarted Redis closed every pooled connection, and the pool only finds out by using
        one. Every call sent here can run twice without harm (a reserve finds its own hold,
        settles and catch-ups their done keys, a seed the marker).
        """
        timeout = timeout or self._timeout
        try:
            async with asyncio.timeout(timeout):
                return await call()
        except redis_errors.ConnectionError:
            pass
        async with asyncio.timeout(timeout):
            return await call()

    async def _load_scripts(self) -> None:
        """Load every script: Redis lost them all, and one missing later would make a reserve
        run before the settles sent ahead of it."""
        scripts = (self._reserve, self._settle, self._seed_script, self._resync_script)

        async def send() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for script in scripts:
                pipe.script_load(script.script)
            await pipe.execute()

        try:
            await self._io(send)
        except _UNAVAILABLE as exc:
            raise budget_unavailable(type(exc).__name__) from exc

    async def spent(self, scope: Scope, period_start: dt.datetime) -> Decimal:
        await self._sender.sent()  # what this process settled counts before it reads
        key = self._key("spent", scope, as_utc(period_start))
        try:
            value = await self._io(lambda: self._redis.get(key))
        except _UNAVAILABLE as exc:
            raise budget_unavailable(type(exc).__name__) from exc
        return from_units(int(value) if value is not None else 0)

    # -- rate limits ----------------------------------------------------------------------------

    async def acquire_rate(self, principal: Principal, tokens: int, now: dt.datetime) -> RateTicket:
        limits = applicable_limits(principal)
        return await self.rates.acquire(limits, tokens, as_utc(now).timestamp())

    def settle_rate(self, ticket: RateTicket, tokens: int) -> None:
        if ticket.settled:
            return
        ticket.settled = True
        self.rates.settle(ticket, tokens)

    # -- epochs: seeding and catching up ------------------------------------------------------

    async def load(self) -> None:
        try:
            await self._catch_up()
        except BudgetUnavailable as exc:
            log.warning("budget: Redis unreachable at load (%s); will seed when it is back", exc)

    async def _catch_up(self) -> None:
        """Seed Redis if it is empty, then bring this process's share into its epoch."""
        async with self._sync_lock:
            try:
                epoch = await self._marker()
                if epoch is None:
                    epoch = await self._seed()
                await self._resync(epoch)
            except _UNAVAILABLE as exc:
                raise budget_unavailable(type(exc).__name__) from exc

    async def _marker(self) -> str | None:
        """The epoch in Redis now (None: Redis is empty)."""
        return _text(await self._io(lambda: self._redis.get(self._seeded_key)))

    async def _seed(self) -> str:
        """Fill Redis from the database, unless someone did already; returns the epoch.

        Under the counters' lock: no flush of any process commits between the read here and
        the marker being set, so each flushed unit is either read by this seed or owed by its
        process to this epoch (``SpendJournal.persisted``), never both nor neither.
        """
        try:
            async with counters_lock() as conn:
                counters = await load_counters(earliest_relevant_start(self._clock()), conn)
                keys = [self._seeded_key]
                args = [f"{random.getrandbits(64):016x}", str(SPENT_TTL_S)]
                for (scope, start), units in counters.items():
                    keys.append(self._key("spent", scope, start))
                    args.append(str(units))
                seed = self._seed_script
                reply = await self._io(lambda: seed(keys=keys, args=args), max(self._timeout, 10))
                epoch = _text(reply)
        except _PASS_ON:
            raise
        except Exception as exc:  # the database: refuse capped requests rather than guess
            log.exception("budget: could not seed Redis from the database")
            raise budget_unavailable("counters could not be reloaded") from exc
        assert epoch is not None
        if epoch == args[0]:
            log.info("budget: seeded %d spend counters into Redis", len(counters))
        return epoch

    async def _resync(self, target: str) -> None:
        """Apply, once, what ``target`` lacks from this process (caller holds ``_sync_lock``)."""
        if self._doubt is not None:
            doubt, self._doubt = self._doubt, None
            if doubt[0] == target:  # the same catch-up again: its done key makes it apply once
                await self._resync_call(*doubt)
        moves, owed = self.journal.owed_to(target)
        now = self._clock().timestamp()
        holds = [r for r in self._open.values() if r.expires_at > now]
        if not moves and not owed and (target == self._epoch or not holds):
            self._epoch = target
            return
        spent: dict[CounterKey, int] = {}
        for units in (*moves.values(), owed):
            for key, n in units.items():
                spent[key] = spent.get(key, 0) + n
        keys = [self._seeded_key, f"{self.key_prefix}resync:{self._process}:{self._resyncs}"]
        self._resyncs += 1
        args = [target, str(SPENT_TTL_S), self._holds_ttl, str(len(spent))]
        for (scope, start), n in spent.items():
            keys.append(self._key("spent", scope, start))
            args.append(str(n))
        if target != self._epoch:  # holds booked in another epoch are not in this one
            for r in holds:
                for hold in r.holds:
                    keys += [
                        self._key("resv", hold.scope, hold.period_start),
                        self._key("holds", hold.scope, hold.period_start),
                    ]
                    args += [f"{r.id}:{r.units}", repr(r.expires_at), str(r.units)]
        await self._resync_call(target, keys[1], keys, args, moves, owed)

    async def _resync_call(
        self,
        target: str,
        done_key: str,
        keys: list[str],
        args: list[str],
        moves: dict[str, Any],
        owed: dict[Any, int],
    ) -> None:
        try:
            answer = await self._io(lambda: self._resync_script(keys=keys, args=args))
        except _UNAVAILABLE:
            self._doubt = (target, done_key, keys, args, moves, owed)
            raise
        if int(answer[0]) in (UNSEEDED, STALE_EPOCH):
            raise budget_unavailable("Redis restarted again while catching up")
        self.journal.moved(target, moves, owed)
        if self._epoch != target:
            log.info("budget: caught up with Redis epoch %s", target)
        self._epoch = target

    # -- persistence ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Add what this process settled since its last flush to ``SpendCounter``."""
        await self._sender.sent()
        await self._sender.retry_pending()
        if self.journal.needs_sync(self._epoch) or self._doubt is not None:
            await self._try_catch_up()
        try:
            marker = await self._persist()
        except _UNAVAILABLE as exc:
            log.warning("budget: Redis unreachable at flush (%r); will retry", exc)
            return
        if marker != self._epoch or self.journal.needs_sync(self._epoch):
            # Redis restarted since this process last used it: carry its holds and spend over
            # now rather than at its next request (the other processes' caps need them).
            await self._try_catch_up()

    async def _persist(self) -> str | None:
        """Add the journal to the database; returns the epoch Redis was in meanwhile."""
        async with self._sync_lock:
            snapshot = self.journal.persisting()
            if not snapshot:
                return await self._marker()
            deltas: dict[CounterKey, int] = {}
            for units in snapshot.values():
                for key, n in units.items():
                    deltas[key] = deltas.get(key, 0) + n
            async with counters_lock() as conn:
                # Read under the lock, so no seed runs between it and the commit.
                marker = await self._marker()
                await add_counters(conn, deltas)
            self.journal.persisted(snapshot, marker)
            return marker

    async def _try_catch_up(self) -> None:
        try:
            await self._catch_up()
        except BudgetUnavailable as exc:
            log.warning("budget: could not catch up with Redis (%s); will retry", exc)

    @property
    def pending_settlements(self) -> int:
        """Charges Redis has not taken yet (queued to send, or waiting for Redis to return)."""
        return self._sender.pending_settlements
