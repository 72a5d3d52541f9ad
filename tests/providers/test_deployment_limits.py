"""Deployments' building blocks: smooth weights, rpm/tpm windows (local and Redis), health."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from backend.ir.errors import RateLimited, UpstreamError, UpstreamUnavailable
from backend.providers.deployment_limits import LocalWindows, RedisWindows
from backend.providers.deployment_state import DeploymentState, SmoothWeights
from tests.dbutil import redis_url


class Clock:
    def __init__(self, now: float = 1_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_smooth_weights_are_exact_and_interleaved() -> None:
    turns = SmoothWeights()
    picks = [turns.pick(["a", "b"], [3, 1]) for _ in range(400)]
    assert picks.count(0) == 300 and picks.count(1) == 100
    # Interleaved: "b" every fourth pick, never two in a row, never four "a" in a row.
    text = "".join("ab"[i or 0] for i in picks)
    assert "bb" not in text and "aaaa" not in text


def test_smooth_weights_skip_zero_and_all_zero() -> None:
    turns = SmoothWeights()
    assert {turns.pick(["a", "b"], [0, 2]) for _ in range(10)} == {1}
    assert turns.pick(["a", "b"], [0, 0]) is None


async def test_local_window_counts_requests_for_a_full_minute() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    admitted = [(await windows.acquire("p/a", 3, None, 1)).admitted for _ in range(5)]
    assert admitted == [True, True, True, False, False]
    refused = await windows.acquire("p/a", 3, None, 1)
    # Counted in second 1_000_000; free again once that second is more than 60 s behind.
    assert refused.retry_after_s == 61
    clock.now += 60.7  # 60.45 s after the first request: still within its minute
    assert not (await windows.acquire("p/a", 3, None, 1)).admitted
    clock.now += 0.5  # second 1_000_061: the first bucket left the window
    assert (await windows.acquire("p/a", 3, None, 1)).admitted
    assert (await windows.usage("p/a")).requests == 1


async def test_local_window_tokens_estimate_then_settle() -> None:
    clock = Clock()
    windows = LocalWindows(clock)
    first = await windows.acquire("p/a", None, 100, 60)
    assert first.admitted
    assert not (await windows.acquire("p/a", None, 100, 60)).admitted  # 60 + 60 > 100
    await windows.settle("p/a", first.bucket, -40)  # it really used 20
    assert (await windows.acquire("p/a", None, 100, 60)).admitted  # 20 + 60 <= 100
    assert (await windows.usage("p/a")).tokens == 80
    # Larger than the whole limit: admitted only into an empty window.
    assert (await windows.acquire("p/b", None, 100, 500)).admitted
    assert not (await windows.acquire("p/b", None, 100, 1)).admitted


@pytest.fixture
async def redis_client():  # type: ignore[no-untyped-def]
    url = redis_url()
    if url is None:
        pytest.skip("REDIS_URL is not set (the PostgreSQL + Redis pass runs this)")
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    prefix = f"sbtest-{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    keys = [k async for k in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_redis_window_is_shared_by_instances(redis_client) -> None:  # type: ignore[no-untyped-def]
    client, prefix = redis_client
    one, two = RedisWindows(client, prefix), RedisWindows(client, prefix)
    results = await asyncio.gather(
        *[(one if i % 2 else two).acquire("openai/a", 7, None, 10) for i in range(20)]
    )
    assert sum(r.admitted for r in results) == 7
    refused = [r for r in results if not r.admitted]
    assert all(1 <= r.retry_after_s <= 61 for r in refused)
    usage = await two.usage("openai/a")
    assert (usage.requests, usage.tokens) == (7, 70)
    admitted = next(r for r in results if r.admitted)
    await one.settle("openai/a", admitted.bucket, 25)
    assert (await one.usage("openai/a")).tokens == 95


async def test_redis_window_falls_back_to_local_when_redis_fails() -> None:
    import redis.asyncio as aioredis

    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    windows = RedisWindows(dead, "x:", timeout_s=0.5)
    admitted = [(await windows.acquire("p/a", 2, None, 1)).admitted for _ in range(3)]
    assert admitted == [True, True, False]
    await dead.aclose()


def test_state_429_cools_for_retry_after_then_success_clears() -> None:
    clock = Clock(100.0)
    state = DeploymentState(clock=clock)
    state.failed(RateLimited("openai: slow down", headers={"retry-after": "7"}))
    assert state.rate_limited_now() and state.status().health == "rate_limited"
    assert state.status().cooldown_s == 7.0
    clock.now += 7.5
    assert not state.cooling()
    state.failed(RateLimited("openai: slow down"))  # no Retry-After: the default
    assert 4.9 < state.remaining_s() <= 5.0
    state.succeeded()
    assert state.status().health == "healthy" and state.rate_limited == 2


def test_state_outage_is_down_at_once_5xx_after_three() -> None:
    clock = Clock(100.0)
    state = DeploymentState(cooldown_s=30.0, clock=clock)
    state.failed(UpstreamUnavailable("openai: upstream connection refused"))
    assert state.cooling() and not state.rate_limited_now()
    assert state.status().health == "down" and state.status().cooldown_s == 30.0
    state.failed(UpstreamUnavailable("openai: upstream connection refused"))
    assert state.remaining_s() == 60.0  # doubled for a second failure in a row
    other = DeploymentState(cooldown_s=30.0, clock=clock)
    for _ in range(2):
        other.failed(UpstreamError("openai: boom", code="upstream_500"))
    assert not other.cooling() and other.status().health == "degraded"
    other.failed(UpstreamError("openai: boom sk-abcdefghijklmnopqrstuvwx", code="upstream_500"))
    assert other.cooling()
    assert "sk-abcdefghijklmnop" not in (other.status().last_error or "")


def test_headroom_is_the_tighter_window() -> None:
    state = DeploymentState()
    assert state.headroom(None, None) == 1.0
    state.saw_window(5, 900)
    assert state.headroom(10, 1000) == pytest.approx(0.1)
    assert state.headroom(10, None) == pytest.approx(0.5)
    state.saw_window(12, 0)
    assert state.headroom(10, None) == 0.0
