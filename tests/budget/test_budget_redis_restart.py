"""RedisBudget when its Redis restarts empty: scripts, keys and the seed marker all gone.

Each test runs its own ``redis-server`` on a free port (``PrivateRedis``), because flushing or
restarting the shared one would break the tests running next to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from budget_helpers import Ids, app_principal, at, org, usd
from private_redis import PrivateRedis
from redis.asyncio import Redis

from backend.budget import BudgetUnavailable, RedisBudget, Reservation
from backend.data.models.logs import SpendCounter
from backend.ir.errors import QuotaExceeded
from backend.state.snapshot import Principal

NOW = at(2025, 1, 8, 12)
MONTH = at(2025, 1, 1)
#: Bounds Redis calls only; generous so a loaded test machine does not turn into refusals.
TIMEOUT_S = 10.0
#: Longest wait for a condition in these tests (a loaded machine is slow, a bug is stuck).
WAIT_S = 60.0


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

    async def request(gated: bool = True) -> Reservation | Exception:
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


# -- item 14: no settled spend is lost when Redis restarts empty --------------------------------


def budget_on(server: PrivateRedis, made: list[Redis]) -> RedisBudget:
    return RedisBudget(connect(server, made), "sb:", clock=lambda: NOW, timeout_s=TIMEOUT_S)


async def charge(budget: RedisBudget, principal: Principal, cost: str) -> None:
    await budget.settle(await budget.reserve(principal, usd(cost), NOW), usd(cost))


async def stored(scope_id: int) -> Decimal:
    row = await SpendCounter.get_or_none(scope="org", scope_id=scope_id, period_start=MONTH)
    return Decimal(row.spent_usd) if row is not None else Decimal(0)


async def test_two_processes_lose_nothing_when_redis_restarts_empty_under_load(
    db: str, ids: Ids, private_redis: PrivateRedis, clients: list[Redis]
) -> None:
    a, b = budget_on(private_redis, clients), budget_on(private_redis, clients)
    await a.load()
    await b.load()
    acme = org(ids(), "1000")
    principal = app_principal(ids(), acme)
    settled = Decimal(0)

    async def wave(costs: list[str]) -> None:
        nonlocal settled
        await asyncio.gather(*(charge((a, b)[i % 2], principal, c) for i, c in enumerate(costs)))
        settled += sum(usd(c) for c in costs)

    await wave(["1.25", "0.5", "2", "0.00000007"])
    await a.flush()  # A's share is in the database, B's only in Redis and B's journal
    await wave(["3.1", "0.9", "1", "0.33333333"])  # in nobody's database row yet

    await asyncio.to_thread(private_redis.restart)
    await wave(["0.7", "1.3", "0.01", "2.5", "0.2", "0.04"])  # the first of these reseed

    # Settles whose connection died with Redis wait for the flush, which sends them first.
    await asyncio.gather(a.flush(), b.flush())
    assert await a.spent(("org", acme.id), MONTH) == settled
    assert await stored(acme.id) == settled


async def test_a_flush_between_the_restart_and_the_reseed_is_read_by_the_seed(
    db: str, ids: Ids, private_redis: PrivateRedis, clients: list[Redis]
) -> None:
    a, b = budget_on(private_redis, clients), budget_on(private_redis, clients)
    await a.load()
    await b.load()
    acme = org(ids(), "100")
    principal = app_principal(ids(), acme)
    await charge(a, principal, "2")
    await charge(b, principal, "3")
    assert await b.spent(("org", acme.id), MONTH) == usd(5)  # both sent, neither flushed
    await asyncio.to_thread(private_redis.restart)
    await a.flush()  # A's $2 go to the database; A reseeds, reading them
    await charge(b, principal, "1")  # B brings its own $3 over into A's epoch
    await charge(a, principal, "4")  # A must not bring its $2 again
    assert await a.spent(("org", acme.id), MONTH) == usd(10)
    await asyncio.gather(a.flush(), b.flush())
    assert await stored(acme.id) == usd(10)


async def test_a_flush_after_another_process_reseeded_owes_its_units_to_that_epoch(
    db: str, ids: Ids, private_redis: PrivateRedis, clients: list[Redis]
) -> None:
    a, b = budget_on(private_redis, clients), budget_on(private_redis, clients)
    await a.load()
    await b.load()
    acme = org(ids(), "100")
    principal = app_principal(ids(), acme)
    await charge(a, principal, "2")
    assert await a.spent(("org", acme.id), MONTH) == usd(2)  # sent, not flushed
    await asyncio.to_thread(private_redis.restart)
    await charge(b, principal, "1")  # B seeds a new epoch without A's unflushed $2
    # A's flush stores the $2 (the seed did not read them) and brings them into B's epoch.
    await a.flush()
    assert await b.spent(("org", acme.id), MONTH) == usd(3)
    await charge(a, principal, "5")
    await asyncio.gather(a.flush(), b.flush())
    assert await stored(acme.id) == usd(8)
    assert await a.spent(("org", acme.id), MONTH) == usd(8)


async def test_holds_of_requests_in_flight_survive_a_restart(
    db: str, ids: Ids, private_redis: PrivateRedis, clients: list[Redis]
) -> None:
    budget = budget_on(private_redis, clients)
    await budget.load()
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    in_flight = await budget.reserve(principal, usd(8), NOW)
    await asyncio.to_thread(private_redis.restart)
    with pytest.raises(QuotaExceeded):  # $8 still held: $5 more would pass the $10 cap
        await budget.reserve(principal, usd(5), NOW)
    await budget.settle(in_flight, usd(6))
    await budget.reserve(principal, usd(4), NOW)
    assert await budget.spent(("org", acme.id), MONTH) == usd(6)


async def test_forty_concurrent_capped_requests_while_redis_restarts(
    db: str, ids: Ids, private_redis: PrivateRedis, clients: list[Redis]
) -> None:
    """Must-show 2: Redis loses scripts and keys while 40 capped requests run; none is refused
    for "counters not seeded" and the cap holds."""
    budget = budget_on(private_redis, clients)
    await budget.load()
    acme = org(ids(), "20", name="acme")
    principal = app_principal(ids(), acme)
    await charge(budget, principal, "3")
    await budget.flush()
    await charge(budget, principal, "2")  # settled, not flushed: only Redis and the journal
    gate = asyncio.Event()
    first_refusals_back = asyncio.Event()
    settled: list[Reservation] = []
    refused: list[Exception] = []

    async def request(gated: bool = True) -> Reservation | Exception:
        try:
            reservation = await budget.reserve(principal, usd(1), NOW)
        except (QuotaExceeded, BudgetUnavailable) as exc:
            refused.append(exc)
            if len(refused) == 25:
                first_refusals_back.set()
            return exc
        if gated:
            await gate.wait()  # the provider call: Redis restarts meanwhile
        await budget.settle(reservation, usd(1))
        settled.append(reservation)
        return reservation

    first = [asyncio.create_task(request()) for _ in range(40)]
    async with asyncio.timeout(WAIT_S):
        await first_refusals_back.wait()  # 25 refused, 15 hold $1 each and wait at the gate
    await asyncio.to_thread(private_redis.restart)
    second = await asyncio.gather(*(request(gated=False) for _ in range(40)))
    gate.set()
    results = await asyncio.gather(*first) + second
    messages = [r.message for r in results if isinstance(r, BudgetUnavailable)]
    assert not messages, messages
    assert len(settled) == 15
    assert sum(isinstance(r, QuotaExceeded) for r in results) == 65
    assert await budget.spent(("org", acme.id), MONTH) == usd(20)
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), NOW)
    await budget.flush()
    assert await stored(acme.id) == usd(20)
