"""Config events across an outage of the bus (issue 13 item 13), without a database.

- ``Announcer``: a change announced while the bus refuses every publish does not fail, stays
  pending, and goes out once the bus takes publishes again (once per domain, however many
  changes were made meanwhile).
- ``RedisBus`` against a private ``redis-server`` (the shared one on 6379 is never touched): when
  Redis is killed and started again on the same port, the bus subscribes again and runs its
  resubscribe hooks, and messages flow again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from backend.data.events import RedisBus
from backend.state.announce import Announcer
from tests.budget.private_redis import PrivateRedis
from tests.state.flaky_bus import FlakyBus

DEADLINE_S = 30.0


async def until(check: Any, what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_an_announcement_outlives_a_bus_outage() -> None:
    bus = FlakyBus()
    announcer = Announcer(bus, "instance-a", first_delay_s=0.01, max_delay_s=0.05)
    got: list[dict[str, Any]] = []

    async def collect() -> None:
        async with bus.subscribe("config") as events:
            async for ev in events:
                got.append(ev)

    collector = asyncio.create_task(collect())
    await until(lambda: bus._subs.get("config"), "the collector to subscribe")
    try:
        bus.down = True
        for domain in ("routing", "keys", "routing"):
            await announcer.announce(domain)  # returns: the change is committed already
        assert set(announcer.pending) == {"routing", "keys"}
        await until(lambda: bus.refused >= 3, "a few retries while the bus is down")
        assert got == []

        bus.down = False
        await until(lambda: not announcer.pending, "the pending announcements to go out")
        await until(lambda: len(got) == 2, "both events")
        assert sorted(ev["domain"] for ev in got) == ["keys", "routing"]
        assert {ev["origin"] for ev in got} == {"instance-a"}

        # The bus is healthy again: the next change goes out at once, no retry task needed.
        await announcer.announce("dlp")
        assert got[-1]["domain"] == "dlp" and not announcer.pending
    finally:
        collector.cancel()
        await announcer.close()


async def test_close_makes_a_last_attempt() -> None:
    bus = FlakyBus()
    announcer = Announcer(bus, "instance-a", first_delay_s=60, max_delay_s=60)
    got: list[dict[str, Any]] = []
    bus.down = True
    await announcer.announce("settings")
    bus.down = False
    async with bus.subscribe("config") as events:
        await announcer.close()
        got.append(await asyncio.wait_for(events.__anext__(), DEADLINE_S))
    assert got[0]["domain"] == "settings" and not announcer.pending


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_bus(private_redis: PrivateRedis) -> AsyncIterator[tuple[RedisBus, Any]]:
    client = aioredis.from_url(private_redis.url, socket_connect_timeout=2, socket_timeout=2)
    bus = RedisBus(client, prefix=f"sbtest-resub-{uuid.uuid4().hex[:8]}:")
    await bus.start()
    try:
        yield bus, client
    finally:
        await bus.close()
        await client.aclose()


async def test_redis_bus_runs_its_hooks_when_it_subscribes_again(
    private_redis: PrivateRedis, redis_bus: tuple[RedisBus, Any]
) -> None:
    bus, client = redis_bus
    calls: list[float] = []
    bus.on_resubscribe(lambda: calls.append(time.monotonic()))
    async with bus.subscribe("config") as events:
        await client.publish(bus._prefix + "config", orjson.dumps({"n": 1}))
        assert (await asyncio.wait_for(events.__anext__(), DEADLINE_S))["n"] == 1
        assert calls == []  # the first subscription is not a reconnect

        private_redis.kill()  # its connections close: the listener's next read fails
        private_redis.start()  # same port, empty
        await until(lambda: calls, "the resubscribe hook")
        assert len(calls) == 1

        # Subscribed for real: a message published now arrives.
        await client.publish(bus._prefix + "config", orjson.dumps({"n": 2}))
        assert (await asyncio.wait_for(events.__anext__(), DEADLINE_S))["n"] == 2
