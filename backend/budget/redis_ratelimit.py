"""Sliding-window rate limits shared by every gateway process through Redis.

The rule and its bound are ``backend.budget.ratelimit``'s; here one Lua script checks every limit
of a request and books it in all of them in one atomic step, stamped with Redis's own clock, so
N processes cannot together admit more than one would. Keys (under the budget's prefix)::

    rl:requests:<scope>:<id>   HASH second -> requests admitted in it (expires after 120 s idle)
    rl:tokens:<scope>:<id>     HASH second -> tokens reserved or settled in it

Settling a token reservation does no I/O of its own: it waits in an outbox that goes in the same
pipelined call as the next admission (settles first), or in a drain task on the next event-loop
turn when no request comes, so a limited request costs one round trip.

When Redis is unreachable (or slower than ``timeout_s``) each process falls back to its own
in-process windows, so every process still enforces the limit on its own; settles that cannot
be sent are dropped (they only ever lower a count, so the limit stays enforced, on the strict
side).
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

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("switchboard.budget")

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    OSError,  # includes the builtin TimeoutError raised by asyncio.timeout
)


class RedisRateLimiter:
    def __init__(self, redis: Redis, key_prefix: str, *, timeout_s: float = 1.0) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._timeout = timeout_s
        self._acquire = redis.register_script(RATE_ACQUIRE_LUA)
        self._settle = redis.register_script(RATE_SETTLE_LUA)
        self.fallback = LocalRateLimiter()
        #: Token settlements not sent yet: (hash keys, second, delta).
        self._outbox: list[tuple[list[str], int, int]] = []
        self._drain_task: asyncio.Task[None] | None = None
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
        batch, self._outbox = self._outbox, []
        calls = [(self._settle, keys_, [second, delta]) for keys_, second, delta in batch]
        calls.append((self._acquire, keys, args))
        try:
            answers = await self._run(calls)
        except _UNAVAILABLE as exc:
            log.debug("rate limits: Redis unavailable (%s), counting in this process", exc)
            return self.fallback.acquire(limits, tokens, now)
        answer = [int(x) for x in answers[-1]]
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
        """Replace the ticket's reserved tokens by ``tokens`` (sent with the next call)."""
        if ticket.store != "redis":
            self.fallback.settle(ticket, tokens)
            return
        delta = tokens - ticket.tokens
        keys = [self._key(limit) for limit in ticket.limits if limit.metric == "tokens"]
        if not delta or not keys:
            return
        self._outbox.append((keys, ticket.buckets[0], delta))
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self._run([(self._settle, k, [s, d]) for k, s, d in batch])
            except _UNAVAILABLE as exc:
                log.debug("rate limits: %d settles dropped (%s)", len(batch), exc)
                return

    async def _run(self, calls: list[tuple[Any, list[str], list[int]]]) -> list[Any]:
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
        task = self._drain_task
        if task is not None and not task.done():
            await task
        await self._drain()
