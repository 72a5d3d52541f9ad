"""Each deployment's own requests- and tokens-per-minute, as sliding windows of one-second buckets.

A deployment is one provider account, and the account's limits are shared by every gateway
instance, so with Redis the window lives there (one hash per deployment, one script call per
request to a *limited* deployment). Without Redis, or while Redis fails, each instance keeps its
own window (``LocalWindows``). Deployments without limits are counted in the local window only
(their load for the dashboard, never a Redis call).

The window counts every admission of the last 60 s, rounded *outward* to whole seconds: buckets
``s >= floor(now) - 60``. A request admitted at ``t`` is therefore counted until ``floor(t) + 61``,
never less than 60 s, so no 60-second span ever holds more than ``rpm`` admissions (a slot frees
up to one second late: the price of a bounded bucket count instead of a log per request).

Tokens: the answer's size is unknown when a request is admitted. Admission counts an estimate
(the request's input estimate plus its ``max_tokens``), ``settle`` then corrects the bucket by the
real total. A request is refused when the window's tokens plus its estimate exceed ``tpm``, except
when the window is empty (a request bigger than the whole limit still gets one try), so the
tokens admitted per window never exceed the limit plus one request's worth.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("switchboard.deployments")

WINDOW_S = 60
#: One Redis call on the request path may take this long before the local window decides.
REDIS_TIMEOUT_S = 0.5
#: Seconds a failed Redis stays unused before it is tried again.
REDIS_RETRY_S = 5.0


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    #: The second (epoch) the request was counted in; ``settle`` corrects that bucket.
    bucket: int
    #: Requests and tokens in the window, this request included when admitted.
    requests: int
    tokens: int
    #: When refused: seconds until the window has room again (at least 1).
    retry_after_s: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    requests: int
    tokens: int


class Windows(Protocol):
    async def acquire(
        self, key: str, rpm: int | None, tpm: int | None, tokens: int
    ) -> Admission: ...

    async def settle(
        self, key: str, bucket: int, delta_tokens: int, *, shared: bool = True
    ) -> None: ...

    async def usage(self, key: str, *, shared: bool = True) -> Usage: ...


def _decide(requests: int, tokens: int, rpm: int | None, tpm: int | None, estimate: int) -> bool:
    if rpm is not None and requests + 1 > rpm:
        return False
    return tpm is None or tokens == 0 or tokens + estimate <= tpm


class LocalWindows:
    """In-process windows: per deployment, a deque of ``[second, requests, tokens]`` buckets."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: dict[str, deque[list[int]]] = {}

    def _window(self, key: str, now: int) -> deque[list[int]]:
        buckets = self._buckets.setdefault(key, deque())
        while buckets and buckets[0][0] < now - WINDOW_S:
            buckets.popleft()
        return buckets

    def acquire_now(self, key: str, rpm: int | None, tpm: int | None, tokens: int) -> Admission:
        now = math.floor(self._clock())
        buckets = self._window(key, now)
        requests = sum(b[1] for b in buckets)
        used = sum(b[2] for b in buckets)
        if not _decide(requests, used, rpm, tpm, tokens):
            oldest = buckets[0][0] if buckets else now
            return Admission(False, now, requests, used, max(1, oldest + WINDOW_S + 1 - now))
        if buckets and buckets[-1][0] == now:
            buckets[-1][1] += 1
            buckets[-1][2] += tokens
        else:
            buckets.append([now, 1, tokens])
        return Admission(True, now, requests + 1, used + tokens)

    async def acquire(self, key: str, rpm: int | None, tpm: int | None, tokens: int) -> Admission:
        return self.acquire_now(key, rpm, tpm, tokens)

    async def settle(
        self, key: str, bucket: int, delta_tokens: int, *, shared: bool = True
    ) -> None:
        for b in self._buckets.get(key, ()):
            if b[0] == bucket:
                b[2] = max(0, b[2] + delta_tokens)
                return

    async def usage(self, key: str, *, shared: bool = True) -> Usage:
        buckets = self._window(key, math.floor(self._clock()))
        return Usage(sum(b[1] for b in buckets), sum(b[2] for b in buckets))


# KEYS[1]: the deployment's hash. ARGV: rpm (-1: none), tpm (-1: none), estimated tokens,
# mode ("acquire" or "usage"). Fields "r:<sec>" / "t:<sec>": requests / tokens of that second.
# Redis's own clock, so every instance agrees on the window.
_SCRIPT = """
local now = tonumber(redis.call('TIME')[1])
local floor = now - 60
local all = redis.call('HGETALL', KEYS[1])
local reqs, toks, oldest = 0, 0, now
for i = 1, #all, 2 do
  local f = all[i]
  local sec = tonumber(string.sub(f, 3))
  if sec == nil or sec < floor then
    redis.call('HDEL', KEYS[1], f)
  else
    local v = tonumber(all[i + 1])
    if string.sub(f, 1, 1) == 'r' then
      reqs = reqs + v
      if v > 0 and sec < oldest then oldest = sec end
    else
      toks = toks + v
    end
  end
end
if ARGV[4] == 'usage' then return {1, now, reqs, toks, 0} end
local rpm, tpm, est = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if (rpm >= 0 and reqs + 1 > rpm) or (tpm >= 0 and toks > 0 and toks + est > tpm) then
  local wait = oldest + 61 - now
  if wait < 1 then wait = 1 end
  return {0, now, reqs, toks, wait}
end
redis.call('HINCRBY', KEYS[1], 'r:' .. now, 1)
redis.call('HINCRBY', KEYS[1], 't:' .. now, est)
redis.call('EXPIRE', KEYS[1], 120)
return {1, now, reqs + 1, toks + est, 0}
"""


class RedisWindows:
    """The windows in Redis, shared by every instance; the local ones while Redis fails."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        *,
        fallback: LocalWindows | None = None,
        timeout_s: float = REDIS_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._local = fallback or LocalWindows()
        self._timeout_s = timeout_s
        self._clock = clock
        self._script = redis.register_script(_SCRIPT)
        self._down_until = 0.0

    @property
    def redis(self) -> Any:
        """The client (the deployments' status share uses it too)."""
        return self._redis

    @property
    def prefix(self) -> str:
        return self._prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}deployment:{key}"

    async def _call(self, key: str, *args: object) -> list[int] | None:
        if self._clock() < self._down_until:
            return None
        try:
            out = await asyncio.wait_for(
                self._script(keys=[self._key(key)], args=list(args)), self._timeout_s
            )
        except Exception as exc:
            if self._down_until == 0.0 or self._clock() >= self._down_until:
                log.warning(
                    "deployment limits: Redis failed (%s); counting in this instance for %.0fs",
                    type(exc).__name__,
                    REDIS_RETRY_S,
                )
            self._down_until = self._clock() + REDIS_RETRY_S
            return None
        return [int(v) for v in out]

    async def acquire(self, key: str, rpm: int | None, tpm: int | None, tokens: int) -> Admission:
        if rpm is None and tpm is None:
            return self._local.acquire_now(key, rpm, tpm, tokens)
        out = await self._call(
            key, -1 if rpm is None else rpm, -1 if tpm is None else tpm, tokens, "acquire"
        )
        if out is None:
            return self._local.acquire_now(key, rpm, tpm, tokens)
        admitted, now, requests, used, wait = out
        return Admission(bool(admitted), now, requests, used, wait)

    async def settle(
        self, key: str, bucket: int, delta_tokens: int, *, shared: bool = True
    ) -> None:
        if delta_tokens == 0:
            return
        if not shared:
            await self._local.settle(key, bucket, delta_tokens)
            return
        try:
            await asyncio.wait_for(
                self._redis.hincrby(self._key(key), f"t:{bucket}", delta_tokens), self._timeout_s
            )
        except Exception:
            # Off the request path; the estimate stays counted until the bucket ages out.
            await self._local.settle(key, bucket, delta_tokens)

    async def usage(self, key: str, *, shared: bool = True) -> Usage:
        """The window of ``key``: Redis's when ``shared`` (a deployment with limits)."""
        if not shared:
            return await self._local.usage(key)
        out = await self._call(key, -1, -1, 0, "usage")
        if out is None:
            return await self._local.usage(key)
        return Usage(out[2], out[3])
