"""RedisBudget when its Redis restarts empty: scripts, keys and the seed marker all gone.

Each test runs its own ``redis-server`` on a free port (``PrivateRedis``), because flushing or
restarting the shared one would break the tests running next to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from budget_helpers import Ids, app_principal, at, org, usd
from private_redis import PrivateRedis
from redis.asyncio import Redis

from backend.budget import BudgetUnavailable, RedisBudget, Reservation
from backend.ir.errors import QuotaExceeded

NOW = at(2025, 1, 8, 12)
MONTH = at(2025, 1, 1)
#: Bounds Redis calls only; generous so a loaded test machine does not turn into refusals.
TIMEOUT_S = 10.0


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


@pytest.fixture
async def clients(private_redis: PrivateRedis) -> AsyncIterator[list[Redis]]:
    made: list[Redis] = []
    yield made
    for client in made:
        await client.aclose()


def connect(server: PrivateRedis, made: list[Redis]) -> Redis:
    client = Redis.from_url(server.url, socket_connect_timeout=2, socket_timeout=TIMEOUT_S)
    made.append(client)
    return client


async def test_one_call_recovers_when_scripts_and_marker_are_both_gone(
    db: str, ids: Ids, private_redis: PrivateRedis, clients: list[Redis]
) -> None:
    budget = RedisBudget(
        connect(private_redis, clients), "sb:", clock=lambda: NOW, timeout_s=TIMEOUT_S
    )
    await budget.load()
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    await budget.settle(await budget.reserve(principal, usd(5), NOW), usd(4))
    await budget.flush()

    admin = connect(private_redis, clients)
    await admin.script_flush()
    await admin.flushall()

    # One reserve loads the scripts, reseeds from the database and books: not refused.
    await budget.reserve(principal, usd(6), NOW)
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), NOW)
    assert await budget.spent(("org", acme.id), MONTH) == usd(4)


async def test_forty_concurrent_capped_requests_after_an_empty_restart(
    db: str, ids: Ids, private_redis: PrivateRedis, clients: list[Redis]
) -> None:
    budget = RedisBudget(
        connect(private_redis, clients), "sb:", clock=lambda: NOW, timeout_s=TIMEOUT_S
    )
    await budget.load()
    acme = org(ids(), "10", name="acme")
    principal = app_principal(ids(), acme)
    await budget.settle(await budget.reserve(principal, usd(3), NOW), usd(3))
    await budget.flush()

    await asyncio.to_thread(private_redis.restart)

    async def request() -> Reservation | Exception:
        try:
            reservation = await budget.reserve(principal, usd(1), NOW)
        except (QuotaExceeded, BudgetUnavailable) as exc:
            return exc
        await asyncio.sleep(0)
        await budget.settle(reservation, usd(1))
        return reservation

    results = await asyncio.gather(*(request() for _ in range(40)))
    unavailable = [r for r in results if isinstance(r, BudgetUnavailable)]
    assert not unavailable, [e.message for e in unavailable]
    assert sum(isinstance(r, Reservation) for r in results) == 7
    assert sum(isinstance(r, QuotaExceeded) for r in results) == 33
    assert await budget.spent(("org", acme.id), MONTH) == usd(10)
