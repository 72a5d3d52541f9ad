"""Sliding-window rpm/tpm limits (backend/budget/ratelimit.py): the window rule on a fake clock,
the bound "admitted per 60 s <= limit" under a random schedule, token settlement, the tightest of
key/user/app/org, and the Redis limiter shared by two "processes" (real Redis, real time)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import replace
from pathlib import Path

import pytest
from budget_helpers import Ids, RedisEnv, app_principal, at, org, user_principal
from private_redis import PrivateRedis
from redis.asyncio import Redis

from backend.budget import LocalBudget, RedisBudget
from backend.budget.ratelimit import LocalRateLimiter, applicable_limits
from backend.ir.errors import RateLimited
from backend.state.snapshot import Limits, Principal

T0 = at(2025, 1, 8, 12, 0, 20).timestamp()


def with_limits(
    principal: Principal,
    *,
    key: Limits | None = None,
    user: Limits | None = None,
    app: Limits | None = None,
    org_limits: Limits | None = None,
) -> Principal:
    p = principal
    if key is not None:
        p = replace(p, key=replace(p.key, limits=key, rate_limit_rpm=key.rpm))
    if user is not None and p.user is not None:
        p = replace(p, user=replace(p.user, limits=user))
    if app is not None and p.app is not None:
        p = replace(p, app=replace(p.app, limits=app))
    if org_limits is not None and p.org is not None:
        p = replace(p, org=replace(p.org, limits=org_limits))
    return p


def test_a_request_counts_for_60_to_61_seconds() -> None:
    limiter = LocalRateLimiter()
    limits = applicable_limits(with_limits(app_principal(1, None), key=Limits(rpm=2)))
    limiter.acquire(limits, 0, T0 + 0.9)  # bucket 12:00:20
    limiter.acquire(limits, 0, T0 + 30)
    with pytest.raises(RateLimited) as caught:
        limiter.acquire(limits, 0, T0 + 60.5)  # 12:01:20.5: the first is still counted
    assert caught.value.headers["Retry-After"] == "1"  # it leaves at 12:01:21
    assert caught.value.headers["x-ratelimit-remaining-requests"] == "0"
    ticket = limiter.acquire(limits, 0, T0 + 61)
    assert ticket.headers["x-ratelimit-remaining-requests"] == "0"
    assert ticket.headers["x-ratelimit-reset-requests"] == "30s"  # the 12:00:50 one leaves


def test_admitted_tokens_in_any_60_s_never_exceed_the_limit() -> None:
    """A random schedule of requests of random sizes against 1000 tokens per minute: in every
    60-second interval the admitted tokens are at most 1000, and the limiter is not lazy (the
    refusals come only when the request would not fit a strict sliding log plus one second)."""
    rng = random.Random(18)
    limiter = LocalRateLimiter()
    limit = 1000
    limits = applicable_limits(with_limits(user_principal(7), key=Limits(tpm=limit)))
    admitted: list[tuple[float, int]] = []
    t = T0
    for _ in range(3000):
        t += rng.expovariate(2.0)
        need = rng.randint(1, 300)
        try:
            limiter.acquire(limits, need, t)
            admitted.append((t, need))
        except RateLimited:
            strict = sum(n for at_, n in admitted if at_ > t - 61)
            assert strict + need > limit, "refused although a 61 s log had room"
    for start, _ in admitted:
        window = sum(n for at_, n in admitted if start <= at_ <= start + 60)
        assert window <= limit
    assert sum(n for _, n in admitted) > 10 * limit  # it admitted a lot over ~25 minutes


def test_tokens_settle_to_the_real_count() -> None:
    limiter = LocalRateLimiter()
    limits = applicable_limits(with_limits(app_principal(2, None), key=Limits(tpm=100)))
    ticket = limiter.acquire(limits, 90, T0)
    assert ticket.headers["x-ratelimit-remaining-tokens"] == "10"
    with pytest.raises(RateLimited):
        limiter.acquire(limits, 20, T0 + 1)
    limiter.settle(ticket, 30)  # it used 30 of the 90 it reserved
    second = limiter.acquire(limits, 20, T0 + 1)
    assert second.headers["x-ratelimit-remaining-tokens"] == "50"


def test_the_tightest_level_applies_and_is_named() -> None:
    acme = org(3, None, name="acme")
    base = user_principal(4, org_info=acme)
    principal = with_limits(
        base,
        key=Limits(rpm=100, tpm=10_000),
        user=Limits(tpm=500),
        org_limits=Limits(rpm=2),
    )
    limiter = LocalRateLimiter()
    limits = applicable_limits(principal)
    first = limiter.acquire(limits, 100, T0)
    assert first.headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "61s",
        "x-ratelimit-limit-tokens": "500",
        "x-ratelimit-remaining-tokens": "400",
        "x-ratelimit-reset-tokens": "61s",
    }
    with pytest.raises(RateLimited) as caught:
        limiter.acquire(limits, 450, T0)
    assert "user alice@x: 500 tokens per minute" in caught.value.message
    limiter.acquire(limits, 10, T0)
    with pytest.raises(RateLimited) as caught:
        limiter.acquire(limits, 10, T0)
    assert "organization acme: 2 requests per minute" in caught.value.message


def test_a_request_larger_than_the_limit_is_refused_for_good() -> None:
    limiter = LocalRateLimiter()
    limits = applicable_limits(with_limits(app_principal(5, None), key=Limits(tpm=100)))
    with pytest.raises(RateLimited) as caught:
        limiter.acquire(limits, 101, T0)
    assert caught.value.headers["x-should-retry"] == "false"
    assert "Request too large" in caught.value.message


async def test_budgets_settle_each_ticket_once() -> None:
    budget = LocalBudget()
    principal = with_limits(app_principal(6, None), key=Limits(tpm=100))
    now = at(2025, 1, 8, 12)
    ticket = await budget.acquire_rate(principal, 80, now)
    budget.settle_rate(ticket, 10)
    budget.settle_rate(ticket, 0)  # a second settle changes nothing
    after = await budget.acquire_rate(principal, 80, now)
    assert after.headers["x-ratelimit-remaining-tokens"] == "10"


async def test_redis_limits_are_shared_and_settled(redis_required: RedisEnv, ids: Ids) -> None:
    """Two RedisBudgets (two processes) on one tpm limit, 40 concurrent requests of 30 tokens
    against 300 per minute: exactly 10 admitted; settling them to 10 tokens each frees room."""
    first = RedisBudget(redis_required.client(), redis_required.prefix, timeout_s=10)
    second = RedisBudget(redis_required.client(), redis_required.prefix, timeout_s=10)
    principal = with_limits(app_principal(ids(), None), key=Limits(tpm=300))
    now = at(2025, 1, 8, 12)  # ignored: Redis stamps admissions with its own clock

    async def one(i: int) -> object:
        try:
            return await (first, second)[i % 2].acquire_rate(principal, 30, now)
        except RateLimited as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(40)))
    tickets = [r for r in results if not isinstance(r, RateLimited)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(tickets) == 10 and len(refused) == 30
    assert all(1 <= int(e.headers["Retry-After"]) <= 61 for e in refused)
    for i, ticket in enumerate(tickets):
        (first, second)[i % 2].settle_rate(ticket, 10)  # type: ignore[arg-type]
    await first.rates.flush()
    await second.rates.flush()
    # 100 used of 300: 6 more requests of 30 fit, the 7th does not.
    for _ in range(6):
        await second.acquire_rate(principal, 30, now)
    with pytest.raises(RateLimited):
        await first.acquire_rate(principal, 30, now)


async def test_redis_limits_survive_a_redis_restart(tmp_path: Path) -> None:
    """Redis restarts empty (scripts gone): the next admission loads the scripts and counts
    anew; while it is down, each process counts in its own windows."""
    server = PrivateRedis(tmp_path / "redis")
    await asyncio.to_thread(server.start)
    client = Redis.from_url(server.url, socket_connect_timeout=2, socket_timeout=2)
    try:
        budget = RedisBudget(client, "sbtest-rl:", timeout_s=5)
        principal = with_limits(app_principal(8, None), key=Limits(rpm=2))
        now = at(2025, 1, 8, 12)
        await budget.acquire_rate(principal, 0, now)
        await asyncio.to_thread(server.kill)
        local = await budget.acquire_rate(principal, 0, now)  # down: this process's window
        assert local.store == "local"
        await asyncio.to_thread(server.start)
        for _ in range(2):  # the pool finds its connection dead only by using it
            with contextlib.suppress(Exception):
                await client.ping()  # type: ignore[misc]
        # The scripts are gone with the restart: the script is loaded again and counts anew.
        assert (await budget.acquire_rate(principal, 0, now)).store == "redis"
        assert (await budget.acquire_rate(principal, 0, now)).store == "redis"
        with pytest.raises(RateLimited) as caught:
            await budget.acquire_rate(principal, 0, now)
        assert "2 requests per minute" in caught.value.message
    finally:
        await client.aclose()
        await asyncio.to_thread(server.stop)
