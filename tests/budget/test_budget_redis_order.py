"""RedisBudget keeps one process's calls in order: a reserve sees every settle and release that
came before it, even one whose pipelined call is still on its way to Redis.

Each test holds a pipelined call at a gate (as a slow network would) and checks what the calls
queued behind it see. Pipelines are counted: waiting for the call in flight must not add a round
trip of its own.
"""

from __future__ import annotations

import asyncio

import pytest
from budget_helpers import GatedRedis, Ids, RedisEnv, app_principal, at, org, usd

from backend.budget import RedisBudget, Reservation
from backend.ir.errors import QuotaExceeded

NOW = at(2025, 1, 8, 12)
MONTH = at(2025, 1, 1)
#: Bounds every wait of these tests (a busy machine may be slow; nothing here should take long).
WAIT_S = 30.0


async def _budget(env: RedisEnv) -> tuple[RedisBudget, GatedRedis]:
    client = env.client()
    gate = GatedRedis(client)
    budget = RedisBudget(client, env.prefix, clock=lambda: NOW, timeout_s=WAIT_S)
    await budget.load()
    gate.round_trips = 0  # seeding is not a request's cost
    return budget, gate


async def test_a_release_in_flight_is_seen_by_the_next_reserve(
    redis_required: RedisEnv, ids: Ids
) -> None:
    budget, gate = await _budget(redis_required)
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    first = await budget.reserve(principal, usd(10), NOW)  # the whole cap
    gate.hold_next()
    await budget.release(first)  # sent on its own on the next loop turn...
    await gate.until_held(1)  # ...and that call is on its way (held here)
    second = asyncio.create_task(budget.reserve(principal, usd(10), NOW))
    await asyncio.sleep(0.05)  # room for the reserve to overtake, which it must not do
    assert not second.done(), "the reserve went ahead of the release in flight"
    gate.open()
    async with asyncio.timeout(WAIT_S):
        reservation = await second  # the release reached Redis first: the cap is free
    assert isinstance(reservation, Reservation) and reservation.units == 10 * 10**8
    assert gate.round_trips == 3  # reserve, release, reserve: waiting cost no round trip
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), NOW)


async def test_a_settle_carried_by_another_reserve_is_seen_by_the_next(
    redis_required: RedisEnv, ids: Ids
) -> None:
    budget, gate = await _budget(redis_required)
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    other = app_principal(ids(), org(ids(), "10", name="other"))
    first = await budget.reserve(principal, usd(10), NOW)
    gate.hold_next()
    await budget.settle(first, usd(1))  # $9 of the hold comes back...
    carrier = asyncio.create_task(budget.reserve(other, usd(1), NOW))  # ...riding this call
    await gate.until_held(1)
    after = asyncio.create_task(budget.reserve(principal, usd(9), NOW))
    await asyncio.sleep(0.05)
    assert not after.done(), "the reserve went ahead of the settle in flight"
    gate.open()
    async with asyncio.timeout(WAIT_S):
        await carrier
        assert (await after).units == 9 * 10**8
    assert gate.round_trips == 3
    assert await budget.spent(("org", acme.id), MONTH) == usd(1)


async def test_concurrent_reserves_share_the_next_call(redis_required: RedisEnv, ids: Ids) -> None:
    """What queues behind the call in flight goes in one pipelined call, in the order queued."""
    budget, gate = await _budget(redis_required)
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    held = await budget.reserve(principal, usd(5), NOW)
    gate.hold_next()
    await budget.release(held)
    await gate.until_held(1)
    waiting = [asyncio.create_task(budget.reserve(principal, usd(1), NOW)) for _ in range(12)]
    await asyncio.sleep(0.05)
    gate.open()
    async with asyncio.timeout(WAIT_S):
        results = await asyncio.gather(*waiting, return_exceptions=True)
    assert gate.round_trips == 3  # the first reserve, the release, then all twelve at once
    booked = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(booked) == 10 and len(refused) == 2
    assert results[:10] == booked  # first queued, first booked


async def test_a_cancelled_reserve_leaves_no_hold_and_loses_no_settle(
    redis_required: RedisEnv, ids: Ids
) -> None:
    """A caller that goes away while its reserve is on its way: if Redis booked the hold, it is
    given back (not left to count until the reservation TTL), and the settles that rode along
    are applied and journaled as usual."""
    budget, gate = await _budget(redis_required)
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    done = await budget.reserve(principal, usd(2), NOW)
    gate.hold_next()
    doomed = asyncio.create_task(budget.reserve(principal, usd(8), NOW))
    await budget.settle(done, usd(2))  # queued before the reserve runs: they go together
    await gate.until_held(1)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    gate.open()
    async with asyncio.timeout(WAIT_S):
        # Booked after all, then released: the $8 is free again for the next caller.
        assert (await budget.reserve(principal, usd(8), NOW)).units == 8 * 10**8
    assert await budget.spent(("org", acme.id), MONTH) == usd(2)
    assert budget.journal.total() == {(("org", acme.id), MONTH): 2 * 10**8}
