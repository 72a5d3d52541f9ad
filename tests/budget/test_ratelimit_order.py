"""RedisRateLimiter keeps one process's calls in order: a tokens-per-minute check sees every
settle this process queued before it, even one whose call is still on its way to Redis.

Settles do no I/O of their own (they ride with the next check, or go on their own on the next
loop turn); before ``redis_sender`` carried them, a settle sent on its own connection could be
overtaken by the next check on another one, which then admitted a caller over its limit.
Pipelines are counted where it matters: waiting for the call in flight adds no round trip.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from typing import Any

import pytest
from budget_helpers import GatedRedis, Ids, RedisEnv, app_principal, at

from backend.budget import RedisBudget
from backend.ir.errors import RateLimited
from backend.state.snapshot import Limits, Principal

NOW = at(2025, 1, 8, 12)  # ignored: Redis stamps admissions with its own clock
#: Bounds every Redis call of these tests (a busy machine may be slow; nothing here should be).
WAIT_S = 30.0
LIMIT = 100


def jitter(client: Any, seed: int) -> None:
    """Each pipelined call leaves after 0 to 3 turns of the event loop, as calls on different
    connections of a real network reach Redis after different delays: a call sent later may
    arrive first. Seeded, so a run is repeatable."""
    rng = random.Random(seed)
    make_pipeline = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        execute = pipe.execute

        async def late(*a: Any, **k: Any) -> Any:
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)  # one loop turn, not a wait for a condition
            return await execute(*a, **k)

        pipe.execute = late
        return pipe

    client.pipeline = pipeline


def tpm_limited(ids: Ids) -> Principal:
    """A fresh key (its own window) limited to ``LIMIT`` tokens per minute."""
    principal = app_principal(ids(), None)
    return replace(principal, key=replace(principal.key, limits=Limits(tpm=LIMIT)))


async def test_every_settle_is_counted_by_the_next_check(
    redis_required: RedisEnv, ids: Ids
) -> None:
    """Many concurrent check -> settle -> check cycles in one process, each on its own key: the
    check reserves 1 token, the settle reports the whole limit used, so the next check of that
    key must be refused. Between the settle and the next check the loop turns (as it does
    between two requests), which lets the settle's own call leave first; calls reach Redis
    after uneven delays (``jitter``)."""
    client = redis_required.client()
    jitter(client, seed=19)
    budget = RedisBudget(client, redis_required.prefix, timeout_s=WAIT_S)
    workers, cycles = 32, 25

    async def worker(n: int) -> list[int]:
        admitted: list[int] = []
        for i in range(cycles):
            principal = tpm_limited(ids)
            ticket = await budget.acquire_rate(principal, 1, NOW)
            budget.settle_rate(ticket, LIMIT)  # the real count exhausts the limit
            for _ in range((n + i) % 3 + 1):
                await asyncio.sleep(0)  # other requests run meanwhile
            try:
                await budget.acquire_rate(principal, 1, NOW)
            except RateLimited as exc:
                assert exc.detail["used"] == LIMIT
            else:
                admitted.append(i)
        return admitted

    async with asyncio.timeout(4 * WAIT_S):
        results = await asyncio.gather(*(worker(n) for n in range(workers)))
    over = sum(len(r) for r in results)
    assert over == 0, f"{over} of {workers * cycles} checks overtook the settle before them"


async def _gated(env: RedisEnv) -> tuple[RedisBudget, GatedRedis]:
    client = env.client()
    gate = GatedRedis(client)
    return RedisBudget(client, env.prefix, timeout_s=WAIT_S), gate


async def test_a_check_waits_for_the_settle_in_flight(redis_required: RedisEnv, ids: Ids) -> None:
    budget, gate = await _gated(redis_required)
    principal = tpm_limited(ids)
    ticket = await budget.acquire_rate(principal, 1, NOW)
    gate.round_trips = 0  # loading the scripts is not a request's cost
    gate.hold_next()
    budget.settle_rate(ticket, LIMIT)  # sent on its own on the next loop turn...
    await gate.until_held(1, WAIT_S)  # ...and that call is on its way (held here)
    check = asyncio.create_task(budget.acquire_rate(principal, 1, NOW))
    await asyncio.sleep(0.05)  # room for the check to overtake, which it must not do
    assert not check.done(), "the check went ahead of the settle in flight"
    gate.open()
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(RateLimited) as refused:
            await check
    assert refused.value.detail["used"] == LIMIT
    assert gate.round_trips == 2  # the settle, then the check: waiting cost no round trip


async def test_checks_queued_meanwhile_share_the_next_call(
    redis_required: RedisEnv, ids: Ids
) -> None:
    """What queues behind the call in flight goes in one pipelined call, in the order queued."""
    budget, gate = await _gated(redis_required)
    principal = tpm_limited(ids)
    ticket = await budget.acquire_rate(principal, 50, NOW)
    gate.round_trips = 0
    gate.hold_next()
    budget.settle_rate(ticket, 0)  # the 50 come back
    await gate.until_held(1, WAIT_S)
    waiting = [asyncio.create_task(budget.acquire_rate(principal, 10, NOW)) for _ in range(12)]
    await asyncio.sleep(0.05)
    gate.open()
    async with asyncio.timeout(WAIT_S):
        results = await asyncio.gather(*waiting, return_exceptions=True)
    assert gate.round_trips == 2  # the settle, then all twelve checks at once
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(admitted) == 10 and len(refused) == 2
    assert results[:10] == admitted  # first queued, first admitted


async def test_a_cancelled_check_gives_its_tokens_back(redis_required: RedisEnv, ids: Ids) -> None:
    """A caller that goes away while its check is on its way: Redis booked it, and its tokens
    are given back with the next call instead of counting for a minute."""
    budget, gate = await _gated(redis_required)
    principal = tpm_limited(ids)
    await budget.acquire_rate(principal, 10, NOW)
    gate.hold_next()
    doomed = asyncio.create_task(budget.acquire_rate(principal, 80, NOW))
    await gate.until_held(1, WAIT_S)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    gate.open()
    async with asyncio.timeout(WAIT_S):
        await budget.rates.flush()  # the doomed check ran, then its give-back
        ticket = await budget.acquire_rate(principal, 90, NOW)
    assert ticket.headers["x-ratelimit-remaining-tokens"] == "0"
