"""Deployment status across instances (``deployment_share``): the merge rules, the Redis hash,
and two provider registries (two gateway instances) against a fake OpenAI account."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from backend.ir.chat import ChatRequest, Message, TextPart
from backend.ir.errors import GatewayError
from backend.providers.base import ProviderConfig
from backend.providers.deployment_limits import RedisWindows, Usage
from backend.providers.deployment_share import StatusShare, combine, merge
from backend.providers.deployment_state import DeploymentStatus
from backend.providers.deployments import DeploymentSpec
from backend.providers.registry import ProviderRegistry, default_factories
from tests.dbutil import redis_url
from tests.fakes.base import Reply
from tests.fakes.openai_fake import OpenAIFake


def status(health: str = "healthy", **kw: object) -> DeploymentStatus:
    base: dict[str, object] = {
        "health": health,
        "in_flight": 0,
        "requests": 0,
        "successes": 0,
        "failures": 0,
        "rate_limited": 0,
        "limit_refusals": 0,
        "cooldown_s": 0.0,
        "last_error": None,
        "last_error_at": None,
    }
    return DeploymentStatus(**{**base, **kw})  # type: ignore[arg-type]


def test_merge_sums_counts_and_keeps_the_worst_health_and_latest_error() -> None:
    one = status(
        requests=10, successes=9, failures=1, in_flight=2, last_error="503", last_error_at=5.0
    )
    two = status(
        "rate_limited",
        requests=4,
        failures=1,
        rate_limited=1,
        limit_refusals=3,
        cooldown_s=7.0,
        last_error="429 Rate limit reached",
        last_error_at=9.0,
    )
    shared = merge([(one, Usage(3, 300)), (two, Usage(1, 50))])
    s = shared.status
    assert (s.health, s.cooldown_s, s.in_flight) == ("rate_limited", 7.0, 2)
    assert (s.requests, s.successes, s.failures, s.rate_limited, s.limit_refusals) == (
        14,
        9,
        2,
        1,
        3,
    )
    assert (s.last_error, s.last_error_at) == ("429 Rate limit reached", 9.0)
    assert shared.window == Usage(4, 350) and shared.instances == 2


def test_a_remote_cooldown_counts_down_by_the_snapshots_age() -> None:
    from backend.providers.deployment_share import Snapshot

    local = {"openai/a": status(requests=1)}
    cooling = Snapshot("b", 3.0, {"openai/a": status("down", cooldown_s=5.0)}, {})
    over = Snapshot("c", 12.0, {"openai/a": status("rate_limited", cooldown_s=5.0)}, {})
    got = combine(local, {}, [cooling])["openai/a"]
    assert (got.status.health, got.status.cooldown_s, got.instances) == ("down", 2.0, 2)
    got = combine(local, {}, [over])["openai/a"]
    # Over: "degraded" until that instance's next success (as a local cooldown would read).
    assert (got.status.health, got.status.cooldown_s) == ("degraded", 0.0)
    # Known only to another instance: still shown.
    assert combine({}, {}, [cooling])["openai/a"].instances == 1


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[object, str]]:
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


async def test_snapshots_through_redis_skip_self_and_stale(redis_prefix) -> None:  # type: ignore[no-untyped-def]
    client, prefix = redis_prefix
    now = [1000.0]
    a = StatusShare(client, prefix, instance_id="a", wall=lambda: now[0], stale_s=30)
    b = StatusShare(client, prefix, instance_id="b", wall=lambda: now[0], stale_s=30)
    await a.publish({"openai/x": status(requests=5)}, {"openai/x": Usage(5, 10)})
    assert await a.others() == []
    [seen] = await b.others()
    assert (seen.instance, seen.statuses["openai/x"].requests) == ("a", 5)
    assert seen.windows["openai/x"] == Usage(5, 10)
    now[0] += 31
    assert await b.others() == []  # a stopped publishing: ignored
    await b.withdraw()
    await client.hset(f"{prefix}deployment-status", "c", b"not json")  # type: ignore[attr-defined]
    assert await a.others() == []


@pytest.fixture(scope="module")
def fake() -> Iterator[OpenAIFake]:
    server = OpenAIFake()
    server.start()
    yield server
    server.stop()


async def test_two_instances_see_each_others_load_and_health(  # type: ignore[no-untyped-def]
    redis_prefix, fake: OpenAIFake
) -> None:
    client, prefix = redis_prefix
    config = ProviderConfig(
        name="openai", kind="openai", base_url=fake.sdk_base_url, api_key="sk-x-0123456789"
    )
    spec = DeploymentSpec("openai", "acct", config)
    registries = [
        ProviderRegistry(
            default_factories(),
            close_grace_s=0,
            windows=RedisWindows(client, prefix),
            share=StatusShare(client, prefix, interval_s=0.05),
        )
        for _ in range(2)
    ]
    one, two = registries
    try:
        for registry in registries:
            await registry.apply({}, {}, {"openai": (spec,)})
        req = ChatRequest(model="gpt-4o-mini", messages=[Message("user", [TextPart("hi")])])
        for _ in range(3):
            await one.get("openai").chat(req, "gpt-4o-mini")
        fake.replies.append(Reply(status=503))
        with pytest.raises(GatewayError):
            await one.get("openai").chat(req, "gpt-4o-mini")
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            seen = (await two.shared_statuses())["openai/acct"]
            if seen.status.requests == 4:
                break
            assert asyncio.get_running_loop().time() < deadline, seen
            await asyncio.sleep(0.05)
        # Instance two sent nothing, yet shows one's requests, failure, error and window.
        assert seen.instances == 2
        assert (seen.status.successes, seen.status.failures) == (3, 1)
        local = one.deployment_status("openai/acct")
        assert local is not None and local.health in ("down", "degraded")
        assert (seen.status.health, seen.status.last_error) == (local.health, local.last_error)
        assert seen.window.requests == 4
        assert (await one.shared_statuses())["openai/acct"].status.requests == 4
        # A stopped instance withdraws its snapshot: two is alone again.
        await one.close()
        alone = (await two.shared_statuses())["openai/acct"]
        assert (alone.instances, alone.status.requests) == (1, 0)
    finally:
        for registry in registries:
            await registry.close()
