"""Failed-login throttling per account and per client address, with exponential lockouts.

Each key (an account's normalized email, a client address) counts its failures. From the
``limit``-th failure on, the key is locked for ``base_s * 2**(failures - limit)`` seconds
(capped at ``max_s``); while it is locked every login for it is refused before the password is
even checked, the right password included. A success clears the account's count (not the
address's: a caller who knows one password must not reset the address they spray from). A key
forgets its failures ``max_s`` after its lock ends.

Counts are shared through Redis when the gateway has it (so all instances count together), and
kept in this process otherwise. When Redis fails, the process's own counts carry on: throttling
degrades to per-instance instead of disappearing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("switchboard.auth")


@dataclass(frozen=True)
class Policy:
    limit: int
    base_s: float
    max_s: float

    def lock_s(self, failures: int) -> float:
        if failures < self.limit:
            return 0.0
        # min() before the power would still overflow a float for huge counts; clamp the exponent.
        return min(self.max_s, self.base_s * 2.0 ** min(failures - self.limit, 64))


class FailureStore(Protocol):
    async def locked_until(self, key: str) -> float:
        """When ``key``'s lock ends (a timestamp; 0 when it is not locked)."""
        ...

    async def fail(self, key: str, policy: Policy, now: float) -> float:
        """Count a failure; returns when the key's lock ends (0 when not locked)."""
        ...

    async def clear(self, key: str) -> None: ...


class LocalFailures:
    """In-process counts, bounded: past ``max_keys`` the oldest keys are forgotten."""

    def __init__(self, max_keys: int = 100_000) -> None:
        # key -> (failures, locked until, forget at); insertion order is age order.
        self._entries: dict[str, tuple[int, float, float]] = {}
        self._max_keys = max_keys

    async def locked_until(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[1] if entry else 0.0

    async def fail(self, key: str, policy: Policy, now: float) -> float:
        failures, until, forget_at = self._entries.pop(key, (0, 0.0, 0.0))
        if forget_at <= now:
            failures, until = 0, 0.0
        failures += 1
        lock = policy.lock_s(failures)
        until = max(until, now + lock) if lock else until
        self._entries[key] = (failures, until, max(until, now) + policy.max_s)
        self._prune(now)
        return until

    async def clear(self, key: str) -> None:
        self._entries.pop(key, None)

    def _prune(self, now: float) -> None:
        if len(self._entries) <= self._max_keys:
            return
        for key in [k for k, (_, _, forget_at) in self._entries.items() if forget_at <= now]:
            del self._entries[key]
        while len(self._entries) > self._max_keys:
            del self._entries[next(iter(self._entries))]


# One round trip, atomic: concurrent failures on two instances never lose a count.
_FAIL = """
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local untl = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if n >= limit then
  local lock = math.min(cap, base * 2 ^ math.min(n - limit, 64))
  if now + lock > untl then
    untl = now + lock
    redis.call('HSET', KEYS[1], 'until', tostring(untl))
  end
end
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 * (math.max(untl, now) - now + cap)))
return tostring(untl)
"""


class RedisFailures:
    """Counts in Redis hashes ``{n, until}`` that expire ``max_s`` after their lock ends."""

    def __init__(
        self, redis: Any, prefix: str, fallback: FailureStore, timeout_s: float = 1.0
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._fallback = fallback
        self._timeout_s = timeout_s
        self._fail_script = redis.register_script(_FAIL)

    async def locked_until(self, key: str) -> float:
        try:
            raw = await self._call(self._redis.hget(self._prefix + key, "until"))
        except Exception as exc:
            self._degraded(exc)
            return await self._fallback.locked_until(key)
        return float(raw) if raw else 0.0

    async def fail(self, key: str, policy: Policy, now: float) -> float:
        # Counted here too, so the counts are already warm if Redis goes away.
        local = await self._fallback.fail(key, policy, now)
        try:
            raw = await self._call(
                self._fail_script(
                    keys=[self._prefix + key], args=[now, policy.limit, policy.base_s, policy.max_s]
                )
            )
        except Exception as exc:
            self._degraded(exc)
            return local
        return float(raw)

    async def clear(self, key: str) -> None:
        await self._fallback.clear(key)
        try:
            await self._call(self._redis.delete(self._prefix + key))
        except Exception as exc:
            self._degraded(exc)

    async def _call(self, awaitable: Any) -> Any:
        return await asyncio.wait_for(awaitable, self._timeout_s)

    @staticmethod
    def _degraded(exc: BaseException) -> None:
        log.warning(
            "login throttle: Redis unavailable (%s), counting in this process",
            type(exc).__name__,
        )


def _key(kind: str, value: str) -> str:
    # Hashed: keys stay short whatever the caller typed, and Redis holds no email addresses.
    return f"{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"


@dataclass(frozen=True)
class Lockout:
    retry_after_s: int
    #: "account" or "address": which count locked the login out.
    scope: str


class LoginThrottle:
    def __init__(
        self,
        store: FailureStore,
        *,
        clock: Callable[[], float],
        account: Policy,
        address: Policy,
    ) -> None:
        self._store = store
        self._clock = clock
        self._account = account
        self._address = address

    async def lockout(self, account: str, address: str) -> Lockout | None:
        """The lockout in force for this account or address, if any."""
        return await self._locked("account", _key("acct", account)) or await self.address_lockout(
            address
        )

    async def address_lockout(self, address: str) -> Lockout | None:
        """The lockout in force for this client address, if any."""
        return await self._locked("address", _key("addr", address))

    async def _locked(self, scope: str, key: str) -> Lockout | None:
        now = self._clock()
        until = await self._store.locked_until(key)
        if until > now:
            return Lockout(retry_after_s=max(1, int(until - now + 0.999)), scope=scope)
        return None

    async def failed(self, account: str, address: str) -> None:
        now = self._clock()
        await self._store.fail(_key("acct", account), self._account, now)
        await self._store.fail(_key("addr", address), self._address, now)

    async def succeeded(self, account: str) -> None:
        await self._store.clear(_key("acct", account))
