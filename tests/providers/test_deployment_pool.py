"""DeploymentPool through the registry, against real fake OpenAI servers (one per account)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest

from backend.ir.chat import ChatRequest, Message, TextPart
from backend.ir.errors import GatewayError, InvalidRequest, ProviderNotConfigured, RateLimited
from backend.ir.stream import StreamError, TextDelta
from backend.providers.base import ProviderConfig
from backend.providers.deployment_pool import DeploymentPool, Trail
from backend.providers.deployments import DeploymentSpec
from backend.providers.registry import ProviderRegistry, default_factories
from tests.fakes.base import Reply
from tests.fakes.openai_fake import OpenAIFake


def req(stream: bool = False, max_tokens: int | None = None) -> ChatRequest:
    return ChatRequest(
        model="gpt-4o-mini",
        messages=[Message("user", [TextPart("hello")])],
        stream=stream,
        max_tokens=max_tokens,
    )


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[OpenAIFake, OpenAIFake, OpenAIFake]]:
    servers = (OpenAIFake(), OpenAIFake(), OpenAIFake())
    for s in servers:
        s.start()
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture
async def env(
    fakes: tuple[OpenAIFake, OpenAIFake, OpenAIFake],
) -> AsyncIterator[tuple[ProviderRegistry, OpenAIFake, OpenAIFake, OpenAIFake]]:
    for f in fakes:
        f.reset()
    registry = ProviderRegistry(default_factories(), close_grace_s=0)
    yield registry, *fakes
    await registry.close()


def config(fake: OpenAIFake, key: str) -> ProviderConfig:
    return ProviderConfig(name="openai", kind="openai", base_url=fake.sdk_base_url, api_key=key)


def spec(name: str, fake: OpenAIFake, weight: int = 1, **kw: object) -> DeploymentSpec:
    return DeploymentSpec(
        "openai", name, config(fake, f"sk-{name}-0123456789"), weight=weight, **kw
    )  # type: ignore[arg-type]


def keys(fake: OpenAIFake) -> set[str]:
    return {r.headers["authorization"] for r in fake.requests}


async def test_weights_spread_exactly_and_each_deployment_uses_its_key(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, y, _ = env
    await registry.apply({}, {}, {"openai": (spec("a", x, 3), spec("b", y, 1))})
    assert registry.names() == ["openai"]
    provider = registry.get("openai")
    for _ in range(40):
        assert (await provider.chat(req(), "gpt-4o-mini")).content
    assert (len(x.requests), len(y.requests)) == (30, 10)
    assert keys(x) == {"Bearer sk-a-0123456789"} and keys(y) == {"Bearer sk-b-0123456789"}
    status = registry.deployment_status("openai/a")
    assert status is not None and (status.requests, status.successes, status.in_flight) == (
        30,
        30,
        0,
    )


async def test_429_moves_to_the_next_deployment_and_cools_down(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, y, _ = env
    x.replies.extend(Reply(status=429, error_message="Rate limit reached") for _ in range(50))
    await registry.apply({}, {}, {"openai": (spec("a", x, 3), spec("b", y, 1))})
    provider = registry.get("openai")
    for _ in range(20):
        await provider.chat(req(), "gpt-4o-mini")
    # One 429, then five seconds of cooldown: every request went to b without an error.
    assert len(x.requests) == 1 and len(y.requests) == 20
    status = registry.deployment_status("openai/a")
    assert status is not None and status.health == "rate_limited" and status.rate_limited == 1


async def test_stream_fails_over_only_before_the_first_event(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, y, _ = env
    await registry.apply({}, {}, {"openai": (spec("a", x, 1), spec("b", y, 1))})
    provider = registry.get("openai")
    x.replies.append(Reply(status=503))
    y.replies.append(Reply(text="from b"))
    # Whichever goes first, the answer is b's: a failed before sending anything.
    text = "".join(
        [
            e.text
            async for e in provider.stream(req(True), "gpt-4o-mini")
            if isinstance(e, TextDelta)
        ]
    )
    assert text == "from b"
    assert registry.deployment_status("openai/a").health == "down"  # type: ignore[union-attr]
    # Cut after its first frames: already the client's, so no other deployment is asked.
    x.reset(), y.reset()
    await registry.apply({}, {}, {"openai": (spec("c", x, 1),)})
    x.replies.append(Reply(text="abcdefghij", drop_after=2))
    events = [e async for e in registry.get("openai").stream(req(True), "gpt-4o-mini")]
    assert isinstance(events[-1], StreamError) and not y.requests


async def test_trail_names_who_answered_and_each_failed_try(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, y, _ = env
    await registry.apply({}, {}, {"openai": (spec("a", x, 3), spec("b", y, 1))})
    pool = registry.get("openai")
    assert isinstance(pool, DeploymentPool)
    # a answers 429 first (weight 3 goes first), b answers: both calls are in the trail.
    x.replies.append(Reply(status=429, error_message="Rate limit reached"))
    trail = Trail()
    resp = await pool.traced(trail).chat(req(), "gpt-4o-mini")
    assert resp.content and trail.answered() == "b"
    (failed, answered) = trail.calls
    assert (failed.deployment, answered.deployment, answered.error) == ("a", "b", None)
    assert isinstance(failed.error, RateLimited) and failed.error.status == 429
    assert failed.latency_ms > 0 and answered.latency_ms > 0
    # A stream whose only live deployment fails before its first event: the failure is noted.
    y.replies.append(Reply(status=503))
    stream_trail = Trail()
    with pytest.raises(GatewayError):
        async for _ in pool.traced(stream_trail).stream(req(True), "gpt-4o-mini"):
            pass
    assert [c.deployment for c in stream_trail.calls] == ["b"]
    assert stream_trail.answered() is None
    assert stream_trail.calls[0].error is not None and stream_trail.calls[0].error.status == 503
    # A deployment skipped for its own full window was never called: not in the trail.
    await registry.apply({}, {}, {"openai": (spec("c", x, 1, rpm_limit=1),)})
    one = Trail()
    await registry.get("openai").traced(one).chat(req(), "gpt-4o-mini")  # type: ignore[attr-defined]
    skipped = Trail()
    with pytest.raises(RateLimited):
        await registry.get("openai").traced(skipped).chat(req(), "gpt-4o-mini")  # type: ignore[attr-defined]
    assert [c.deployment for c in one.calls] == ["c"] and skipped.calls == []


async def test_callers_error_is_not_retried_elsewhere(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, y, _ = env
    await registry.apply({}, {}, {"openai": (spec("a", x, 1), spec("b", y, 0))})
    x.replies.append(Reply(status=400, error_message="bad messages"))
    with pytest.raises(InvalidRequest):
        await registry.get("openai").chat(req(), "gpt-4o-mini")
    assert not y.requests  # weight 0: a standby, and a 400 is the caller's anyway


async def test_model_restricted_deployments_and_the_own_connection(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, _y, own = env
    base = config(own, "sk-own-0123456789")
    await registry.apply(
        {"openai": base}, {}, {"openai": (spec("a", x, models=frozenset({"gpt-4o"})),)}
    )
    provider = registry.get("openai")
    await provider.chat(req(), "gpt-4o")
    await provider.chat(req(), "gpt-4o-mini")
    assert [r.json["model"] for r in x.requests] == ["gpt-4o"]
    assert [r.json["model"] for r in own.requests] == ["gpt-4o-mini"]
    await registry.apply({}, {}, {"openai": (spec("a", x, models=frozenset({"gpt-4o"})),)})
    with pytest.raises(ProviderNotConfigured, match="no enabled deployment serving"):
        await registry.get("openai").chat(req(), "gpt-4o-mini")


async def test_rpm_limit_sends_the_rest_elsewhere_then_refuses(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, y, _ = env
    await registry.apply(
        {}, {}, {"openai": (spec("a", x, 3, rpm_limit=5), spec("b", y, 1, rpm_limit=10))}
    )
    provider = registry.get("openai")
    for _ in range(15):
        await provider.chat(req(), "gpt-4o-mini")
    assert (len(x.requests), len(y.requests)) == (5, 10)
    with pytest.raises(RateLimited) as refused:
        await provider.chat(req(), "gpt-4o-mini")
    assert refused.value.code == "deployments_at_limit" and refused.value.retryable
    assert 1 <= int(refused.value.headers["retry-after"]) <= 61
    assert registry.deployment_status("openai/a").limit_refusals >= 1  # type: ignore[union-attr]


async def test_tpm_counts_the_real_usage(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, y, _ = env
    a = spec("a", x, 1, tpm_limit=100)
    await registry.apply({}, {}, {"openai": (a, spec("b", y, 0))})
    provider = registry.get("openai")
    x.replies.extend(Reply(input_tokens=30, output_tokens=20) for _ in range(5))
    await provider.chat(req(max_tokens=20), "gpt-4o-mini")
    await registry.wait_settled()
    assert (await registry.windows.usage("openai/a")).tokens == 50
    await provider.chat(req(max_tokens=20), "gpt-4o-mini")
    await registry.wait_settled()
    # 100 used: the next one goes to the standby.
    await provider.chat(req(max_tokens=20), "gpt-4o-mini")
    assert (len(x.requests), len(y.requests)) == (2, 1)


async def test_reload_keeps_state_and_unchanged_clients(env) -> None:  # type: ignore[no-untyped-def]
    registry, x, y, _ = env
    a, b = spec("a", x, 1), spec("b", y, 1)
    await registry.apply({}, {}, {"openai": (a, b)})
    await registry.get("openai").chat(req(), "gpt-4o-mini")
    changed = await registry.apply({}, {}, {"openai": (dataclasses.replace(a, weight=5), b)})
    assert changed == set()  # a weight is no connection change: no client rebuilt
    total = sum(registry.deployment_status(k).requests for k in ("openai/a", "openai/b"))  # type: ignore[union-attr]
    assert total == 1
    await registry.apply({}, {}, {})
    assert registry.names() == [] and registry.deployment_status("openai/a") is None
