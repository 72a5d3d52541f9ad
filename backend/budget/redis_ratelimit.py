"""Sliding-window rate limits shared by every gateway process through Redis.

The rule and its bound are ``backend.budget.ratelimit``'s; here one Lua script checks every limit
of a request and books it in all of them in one atomic step, stamped with Redis's own clock, so
N processes cannot together admit more than one would. Keys (under the budget's prefix)::

    rl:requests:<scope>:<id>   HASH second -> requests admitted in it (expires after 120 s idle)
    rl:tokens:<scope>:<id>     HASH second -> tokens reserved or settled in it

Settling a token reservation does no I/O of its own: it is queued and goes in the same pipelined
call as the next admission check (settles first), or on its own on the next event-loop turn when
no check comes, so a limited request costs one round trip. One task per process sends the
checks and settles, one pipelined call at a time, in the order they were queued
(``redis_sender.OrderedSender``): a check never overtakes a settle queued before it, so a
caller whose real token count used up its limit is refused by its next check. (When the settle
went in a drain task on a connection of its own, a check on another connection could reach
Redis first and admit the caller over the limit.) A check queued while a call is in flight
waits for that call and goes in the next one, with every other check queued meanwhile.

When Redis is unreachable (or slower than ``timeout_s``) each process falls back to its own
in-process windows, so every process still enforces the limit on its own; settles that cannot
be sent are dropped (they only ever lower a count, so the limit stays enforced, on the strict
side). A check whose caller went away after Redis booked it gives its tokens back with the next
call (its request stays counted).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import redis.exceptions as redis_errors

from backend.budget.ratelimit import (
    NO_TICKET,
    LocalRateLimiter,
    RateLimit,
    RateTicket,
    check_fits,
    headers_for,
    need_of,
    rate_error,
)
from backend.budget.redis_scripts import RATE_ACQUIRE_LUA, RATE_SETTLE_LUA
from backend.budget.redis_sender import OrderedSender, ScriptCall

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("switchboard.budget")

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    OSError,  # includes the builtin TimeoutError raised by asyncio.timeout
)
#: A token settle: (the token hashes, the second booked in, real - reserved tokens).
RateSettle = tuple[list[str], int, int]


class _RateSender(OrderedSender[RateSettle]):
    def _unsent(self, batch: list[RateSettle]) -> None:
        if batch:  # they only lower counts: dropping them keeps the limits, on the strict side
            log.debug("rate limits: %d settles dropped (Redis unavailable)", len(batch))


class RedisRateLimiter:
    def __init__(self, redis: Redis, key_prefix: str, *, timeout_s: float = 1.0) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._timeout = timeout_s
        self._acquire = redis.register_script(RATE_ACQUIRE_LUA)
        self._settle = redis.register_script(RATE_SETTLE_LUA)
        self.fallback = LocalRateLimiter()
        #: Sends checks and token settles in the order they were queued.
        self._sender = _RateSender(self._pipelined, self._settle_call)
        self._keys: dict[RateLimit, str] = {}

    def _key(self, limit: RateLimit) -> str:
        key = self._keys.get(limit)
        if key is None:
            if len(self._keys) >= 65_536:
                self._keys.clear()
            scope, ident = limit.scope
            key = self._keys[limit] = f"{self._prefix}rl:{limit.metric}:{scope}:{ident}"
        return key

    async def acquire(self, limits: tuple[RateLimit, ...], tokens: int, now: float) -> RateTicket:
        """Admit one request needing ``tokens`` under every limit, or raise ``RateLimited``."""
        if not limits:
            return NO_TICKET
        check_fits(limits, tokens)
        keys = [self._key(limit) for limit in limits]
        args: list[int] = []
        for limit in limits:
            args += [limit.limit, need_of(limit, tokens)]
        token_keys = [k for k, limit in zip(keys, limits, strict=True) if limit.metric == "tokens"]

        def abandoned(answer: Any) -> None:
            # Booked for a caller that went away: its tokens are free again (its request stays).
            if int(answer[0]) == 1 and tokens and token_keys:
                self._sender.queue((token_keys, int(answer[2]), -tokens))

        try:
            # After every settle queued so far, in the same call as those not sent yet.
            raw = await self._sender.call((self._acquire, keys, args), abandoned)
        except _UNAVAILABLE as exc:
            log.debug("rate limits: Redis unavailable (%s), counting in this process", exc)
            return self.fallback.acquire(limits, tokens, now)
        answer = [int(x) for x in raw]
        now_s = answer[1] / 1000 if answer[0] == 1 else answer[4] / 1000
        if answer[0] == 0:
            i = answer[1] - 1
            limit = limits[i]
            used = [0] * len(limits)
            used[i] = answer[2]
            current = headers_for(limits, used, [None] * len(limits), now_s)
            raise rate_error(limit, answer[2], need_of(limit, tokens), answer[3] / 1000, current)
        second = answer[2]
        pairs = answer[3:]
        used = pairs[0::2]
        oldest = [None if o < 0 else float(o) for o in pairs[1::2]]
        headers = headers_for(limits, used, oldest, now_s)
        return RateTicket(limits, (second,) * len(limits), tokens, headers, store="redis")

    def settle(self, ticket: RateTicket, tokens: int) -> None:
        """Replace the ticket's reserved tokens by ``tokens``: no I/O here, it is sent before
        any check queued after it."""
        if ticket.store != "redis":
            self.fallback.settle(ticket, tokens)
            return
        delta = tokens - ticket.tokens
        keys = [self._key(limit) for limit in ticket.limits if limit.metric == "tokens"]
        if not delta or not keys:
            return
        self._sender.queue((keys, ticket.buckets[0], delta))

    def _settle_call(self, settle: RateSettle) -> ScriptCall:
        keys, second, delta = settle
        return self._settle, keys, [second, delta]

    async def _pipelined(self, calls: list[ScriptCall]) -> tuple[list[Any], list[str]]:
        return await self._run(calls), [""] * len(calls)

    async def _run(self, calls: list[ScriptCall]) -> list[Any]:
        """Run scripts in one pipelined round trip (EVALSHA); on NOSCRIPT (Redis restarted),
        load them and run again the calls that did not run."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            async with asyncio.timeout(self._timeout):
                pipe = self._redis.pipeline(transaction=False)
                for i in todo:
                    script, keys, args = calls[i]
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                answers: list[Any] = await pipe.execute(raise_on_error=False)
                missing = []
                for i, answer in zip(todo, answers, strict=True):
                    if isinstance(answer, redis_errors.NoScriptError) and attempt == 0:
                        missing.append(i)
                    elif isinstance(answer, Exception):
                        raise answer
                    else:
                        results[i] = answer
                if not missing:
                    return results
                for script in (self._acquire, self._settle):
                    await self._redis.script_load(script.script)
                todo = missing
        return results

    async def flush(self) -> None:
        """Wait until every settle queued so far was sent (tests, shutdown)."""
        await self._sender.sent()
