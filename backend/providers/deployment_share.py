"""Deployment load and health across gateway instances, for the admin API (Redis only).

A pool decides from its own instance's state (``deployment_state``): choosing a deployment never
waits on the network. What an operator sees should not depend on which instance answers the
query, so each instance publishes a snapshot of its deployments' status and local window to one
Redis hash (field: the instance's id; value: JSON stamped with the wall clock): once a second
when something changed, and every ``refresh_s`` regardless. The admin API reads the hash and
merges its own live status with the snapshots of the instances heard from in the last
``stale_s`` (``merge``):

- in flight, requests, successes, failures, 429s, limit refusals and the local windows (which
  hold unlimited deployments' load) are summed;
- the health is the worst any instance sees, a remote cooldown counted down by the snapshot's
  age (a cooldown over means "degraded" until that instance's next success, as locally);
- the last error is the latest of any instance.

Cost: at most one HSET per instance per second (off the request path), one HGETALL per admin
read. Without Redis each instance shows its own status (``instances`` 1). A Redis failure
leaves the local status and is logged once until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from backend.providers.deployment_limits import Usage
from backend.providers.deployment_state import DeploymentStatus

log = logging.getLogger("switchboard.deployments")

#: How often an instance looks whether its snapshot changed.
INTERVAL_S = 1.0
#: An unchanged snapshot is written again this often (so readers know the instance is alive).
REFRESH_S = 10.0
#: Snapshots older than this are ignored (an instance that stopped or lost Redis).
STALE_S = 30.0
REDIS_TIMEOUT_S = 1.0
_SEVERITY = {"healthy": 0, "degraded": 1, "rate_limited": 2, "down": 3}
Collect = Callable[[], Awaitable[tuple[dict[str, DeploymentStatus], dict[str, Usage]]]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One instance's deployments as it last published them."""

    instance: str
    age_s: float
    statuses: dict[str, DeploymentStatus]
    windows: dict[str, Usage]


@dataclass(frozen=True, slots=True)
class SharedStatus:
    """A deployment's status over every instance that reported it."""

    status: DeploymentStatus
    #: Requests and tokens of the instances' local windows (unlimited deployments' load).
    window: Usage
    instances: int


def _aged(status: DeploymentStatus, age_s: float) -> DeploymentStatus:
    """A remote status as it stands now: its cooldown counted down by the snapshot's age."""
    left = max(0.0, status.cooldown_s - age_s)
    health = status.health
    if health in ("rate_limited", "down") and left <= 0:
        health = "degraded"
    return dataclasses.replace(status, health=health, cooldown_s=round(left, 1))


def merge(parts: list[tuple[DeploymentStatus, Usage]]) -> SharedStatus:
    """One status from each instance's (status, local window); see the module docstring."""
    statuses = [s for s, _ in parts]
    worst = max(statuses, key=lambda s: _SEVERITY.get(s.health, 0))
    errored = [s for s in statuses if s.last_error_at is not None]
    latest = max(errored, key=lambda s: s.last_error_at or 0.0) if errored else None
    cooling = [s.cooldown_s for s in statuses if s.health == worst.health]
    merged = DeploymentStatus(
        worst.health,
        sum(s.in_flight for s in statuses),
        sum(s.requests for s in statuses),
        sum(s.successes for s in statuses),
        sum(s.failures for s in statuses),
        sum(s.rate_limited for s in statuses),
        sum(s.limit_refusals for s in statuses),
        max(cooling) if cooling else 0.0,
        latest.last_error if latest is not None else None,
        latest.last_error_at if latest is not None else None,
    )
    window = Usage(sum(w.requests for _, w in parts), sum(w.tokens for _, w in parts))
    return SharedStatus(merged, window, len(parts))


def combine(
    local: Mapping[str, DeploymentStatus],
    local_windows: Mapping[str, Usage],
    others: list[Snapshot],
) -> dict[str, SharedStatus]:
    """Every deployment any live instance reported, merged (``merge``)."""
    parts: dict[str, list[tuple[DeploymentStatus, Usage]]] = {}
    for key, status in local.items():
        parts.setdefault(key, []).append((status, local_windows.get(key, Usage(0, 0))))
    for snap in others:
        for key, status in snap.statuses.items():
            window = snap.windows.get(key, Usage(0, 0))
            parts.setdefault(key, []).append((_aged(status, snap.age_s), window))
    return {key: merge(p) for key, p in parts.items()}


def _encode(statuses: Mapping[str, DeploymentStatus], windows: Mapping[str, Usage]) -> bytes:
    return orjson.dumps(
        {
            "s": {k: dataclasses.asdict(v) for k, v in sorted(statuses.items())},
            "w": {k: [u.requests, u.tokens] for k, u in sorted(windows.items())},
        }
    )


def _decode(instance: str, raw: bytes, now: float) -> Snapshot | None:
    try:
        doc = orjson.loads(raw)
        age = max(0.0, now - float(doc["at"]))
        statuses = {k: DeploymentStatus(**v) for k, v in doc["body"]["s"].items()}
        windows = {k: Usage(int(r), int(t)) for k, (r, t) in doc["body"]["w"].items()}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # another version's or a damaged entry: ignored
    return Snapshot(instance, age, statuses, windows)


class StatusShare:
    """This instance's snapshots in Redis, and the other instances' (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        *,
        instance_id: str | None = None,
        interval_s: float = INTERVAL_S,
        refresh_s: float = REFRESH_S,
        stale_s: float = STALE_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._key = f"{prefix}deployment-status"
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self._interval_s = interval_s
        self._refresh_s = refresh_s
        self._stale_s = stale_s
        self._wall = wall
        self._failing = False

    async def publish(
        self, statuses: Mapping[str, DeploymentStatus], windows: Mapping[str, Usage]
    ) -> None:
        await self._publish(_encode(statuses, windows))

    async def _publish(self, body: bytes) -> None:
        doc = b'{"at":%s,"body":%s}' % (repr(self._wall()).encode(), body)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(self._key, self.instance_id, doc)
        pipe.expire(self._key, int(self._stale_s * 2))
        await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_S)

    async def others(self) -> list[Snapshot]:
        """The live snapshots of every other instance ([] when Redis fails)."""
        try:
            raw = await asyncio.wait_for(self._redis.hgetall(self._key), REDIS_TIMEOUT_S)
        except Exception as exc:
            self._failed(exc)
            return []
        now, out = self._wall(), []
        for field, value in raw.items():
            instance = field.decode() if isinstance(field, bytes) else str(field)
            if instance == self.instance_id:
                continue
            snap = _decode(instance, value if isinstance(value, bytes) else value.encode(), now)
            if snap is not None and snap.age_s <= self._stale_s:
                out.append(snap)
        return out

    async def run(self, collect: Collect) -> None:
        """Publish while the instance runs (a task owned by the provider registry)."""
        last: bytes | None = None
        last_at = 0.0
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                body = _encode(*(await collect()))
                now = time.monotonic()
                if body != last or now - last_at >= self._refresh_s:
                    await self._publish(body)
                    last, last_at = body, now
                if self._failing:
                    self._failing = False
                    log.info("deployment status: Redis answers again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)

    async def withdraw(self) -> None:
        """Remove this instance's snapshot (a clean stop)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._redis.hdel(self._key, self.instance_id), REDIS_TIMEOUT_S)

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "deployment status: Redis failed (%s); the admin API shows this instance only",
                type(exc).__name__,
            )
