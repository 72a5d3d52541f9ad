"""run_with_fallback: which errors move on, bounded retries, backoff, circuits, streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from backend.ir.errors import (
    GatewayError,
    ProviderNotConfigured,
    UpstreamError,
    UpstreamUnavailable,
    upstream_status_error,
)
from backend.providers.base import map_transport_error
from backend.routing.fallback import run_with_fallback
from backend.routing.router import Router
from tests.routing.helpers import FakeClock

A, B, C = "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"


class Upstream:
    """Scripted attempts: per model a list of errors to raise before answering."""

    def __init__(self, script: dict[str, list[GatewayError | None]], clock: FakeClock) -> None:
        self.script = {m: list(v) for m, v in script.items()}
        self.calls: list[tuple[str, int]] = []
        self.clock = clock

    async def __call__(self, model: str, n: int) -> str:
        self.calls.append((model, n))
        self.clock.advance(0.25)
        steps = self.script.get(model, [])
        err = steps.pop(0) if steps else None
        if err is not None:
            raise err
        return f"answer from {model}"

    def count(self, model: str) -> int:
        return sum(1 for m, _ in self.calls if m == model)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_router(clock: FakeClock, threshold: int = 5) -> Router:
    return Router(clock=clock, wall=clock, failure_threshold=threshold, cooldown_s=30)


def connect_error() -> GatewayError:
    return map_transport_error(httpx.ConnectError("refused"), "openai")


def timeout_error() -> GatewayError:
    return map_transport_error(httpx.ReadTimeout("slow"), "openai")


TRIGGERS: dict[str, Callable[[], GatewayError]] = {
    "500": lambda: upstream_status_error(500, "boom", provider="openai"),
    "502": lambda: upstream_status_error(502, "bad gateway", provider="openai"),
    "503": lambda: upstream_status_error(503, "overloaded", provider="openai"),
    "529": lambda: upstream_status_error(529, "overloaded", provider="anthropic"),
    "timeout": timeout_error,
    "connection": connect_error,
    "429": lambda: upstream_status_error(429, "rate limited", provider="openai"),
    "401": lambda: upstream_status_error(401, "bad key", provider="openai"),
    "402": lambda: upstream_status_error(402, "no credit", provider="openai"),
    "403": lambda: upstream_status_error(403, "billing", provider="openai"),
}


@pytest.mark.parametrize("trigger", list(TRIGGERS))
async def test_retryable_errors_fall_back_to_the_next_model(trigger: str) -> None:
    clock = FakeClock()
    make = TRIGGERS[trigger]
    up = Upstream({A: [make(), make()]}, clock)
    failed: list[tuple[str, int, int]] = []
    sleeps = Sleeps()
    result, model, attempts = await run_with_fallback(
        [A, B],
        up,
        router_state=make_router(clock),
        sleep=sleeps,
        rand=lambda: 1.0,
        on_attempt_failed=lambda m, n, e: failed.append((m, n, e.status)),
    )
    assert (result, model) == (f"answer from {B}", B)
    # Credential/billing refusals move on at once; the others retry A once first.
    a_tries = 1 if trigger in ("401", "402", "403") else 2
    assert up.count(A) == a_tries and up.count(B) == 1
    assert attempts == a_tries + 1 == len(failed) + 1
    assert [n for _, n, _ in failed] == list(range(1, a_tries + 1))
    assert sleeps.delays == ([0.2] if a_tries == 2 else [])


async def test_a_400_goes_straight_back() -> None:
    clock = FakeClock()
    bad = upstream_status_error(400, "messages: field required", provider="openai")
    up = Upstream({A: [bad]}, clock)
    failed: list[str] = []
    router = make_router(clock)
    with pytest.raises(GatewayError) as info:
        await run_with_fallback(
            [A, B], up, router_state=router, on_attempt_failed=lambda m, n, e: failed.append(m)
        )
    assert info.value is bad and info.value.status == 400
    assert up.calls == [(A, 1)] and failed == [A]
    assert router.health_registry.model("openai", "gpt-4o-mini").failures == 0


async def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    clock = FakeClock()
    script: dict[str, list[GatewayError | None]] = {
        m: [UpstreamError(f"{m} {i}") for i in range(10)] for m in (A, B, C)
    }
    up = Upstream(script, clock)
    sleeps = Sleeps()
    failed: list[int] = []
    with pytest.raises(UpstreamError, match=f"{C} 2"):
        await run_with_fallback(
            [A, B, C],
            up,
            router_state=make_router(clock, threshold=100),
            max_retries_per_model=2,
            sleep=sleeps,
            rand=lambda: 0.5,
            on_attempt_failed=lambda m, n, e: failed.append(n),
        )
    assert [up.count(m) for m in (A, B, C)] == [3, 3, 3]
    assert len(up.calls) == 3 * (1 + 2) == len(failed)
    # Full jitter: rand() * min(max, base * 2**k), per model, none between models.
    assert sleeps.delays == [0.1, 0.2] * 3


async def test_backoff_is_capped() -> None:
    clock = FakeClock()
    up = Upstream({A: [UpstreamError("x")] * 6}, clock)
    sleeps = Sleeps()
    await run_with_fallback(
        [A, B],
        up,
        router_state=make_router(clock, threshold=100),
        max_retries_per_model=5,
        backoff_base_s=0.5,
        backoff_max_s=2.0,
        sleep=sleeps,
        rand=lambda: 1.0,
    )
    assert sleeps.delays == [0.5, 1.0, 2.0, 2.0, 2.0]


async def test_circuit_opens_skips_half_opens_and_recovers() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=3)
    boom = upstream_status_error(500, "boom", provider="openai")
    up = Upstream({A: [boom] * 3}, clock)
    sleeps = Sleeps()

    async def call() -> str:
        _, model, _ = await run_with_fallback(
            [A, B], up, router_state=router, max_retries_per_model=1, sleep=sleeps
        )
        return model

    assert await call() == B  # A fails twice (1 + 1 retry)
    assert await call() == B  # A fails once more: 3 in a row, the circuit opens, no retry
    assert up.count(A) == 3 and sleeps.delays and len(sleeps.delays) == 1
    assert router.health_registry.model("openai", "gpt-4o-mini").state == "open"

    for _ in range(3):  # open: A is skipped without being called
        assert await call() == B
    assert up.count(A) == 3

    clock.advance(30)  # cooldown over: half-open, one trial, A answers now
    assert await call() == A
    assert router.health_registry.model("openai", "gpt-4o-mini").state == "closed"
    assert await call() == A
    assert up.count(A) == 5


async def test_failed_trial_reopens() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=1)
    up = Upstream({A: [UpstreamError("down")] * 2}, clock)
    await run_with_fallback([A, B], up, router_state=router)
    clock.advance(30)
    _, model, attempts = await run_with_fallback([A, B], up, router_state=router)
    assert (model, attempts) == (B, 2)  # the trial failed and was not retried: circuit open again
    assert router.health_registry.model("openai", "gpt-4o-mini").state == "open"


async def test_all_circuits_open_raises_unavailable_without_calling() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=1)
    router.record_failure(A, UpstreamError("x"))
    router.record_failure(B, UpstreamError("x"))
    up = Upstream({}, clock)
    with pytest.raises(UpstreamUnavailable) as info:
        await run_with_fallback([A, B], up, router_state=router)
    assert up.calls == []
    assert info.value.code == "circuit_open"
    assert info.value.message == (
        "all candidates unavailable: circuit open for openai/gpt-4o-mini after 1 failure; "
        "last: x | circuit open for anthropic/claude-haiku-4-5 after 1 failure; last: x"
    )


async def test_circuit_open_answer_names_the_last_real_cause_without_secrets() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=3)
    causes = [
        upstream_status_error(500, "first boom", provider="openai"),
        upstream_status_error(429, "slow down", provider="openai"),
        upstream_status_error(
            500, "Incorrect key sk-live-abcdef0123456789 " + "x" * 400, provider="openai"
        ),
    ]
    up = Upstream({A: list(causes)}, clock)
    with pytest.raises(UpstreamError):
        await run_with_fallback(
            [A], up, router_state=router, max_retries_per_model=2, sleep=Sleeps()
        )
    assert router.health_registry.model("openai", "gpt-4o-mini").state == "open"
    with pytest.raises(UpstreamUnavailable) as info:
        await run_with_fallback([A], up, router_state=router)
    message = info.value.message
    assert message.startswith(
        "circuit open for openai/gpt-4o-mini after 3 failures; last: openai: Incorrect key "
    )
    assert "sk-live" not in message and "first boom" not in message
    assert len(message) < 300


async def test_provider_circuit_is_named_before_the_model() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=1)
    router.record_failure(A, connect_error())
    with pytest.raises(UpstreamUnavailable) as info:
        await run_with_fallback(["openai/gpt-4o"], Upstream({}, clock), router_state=router)
    assert info.value.message == (
        "circuit open for provider openai after 1 failure; "
        "last: openai: upstream connection failed (ConnectError)"
    )


async def test_success_records_latency_and_router_alias_keyword() -> None:
    clock = FakeClock()
    router = make_router(clock)
    up = Upstream({}, clock)
    await run_with_fallback([A], up, router=router)
    assert router.stats.latency.get(A) == pytest.approx(0.25)


async def test_cancellation_gives_the_half_open_trial_back() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=1)
    router.record_failure(A, UpstreamError("x"))
    clock.advance(30)
    started = asyncio.Event()

    async def hang(model: str, n: int) -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    task = asyncio.create_task(run_with_fallback([A], hang, router_state=router))
    await started.wait()
    assert not router.available(A)  # the trial is taken
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert router.available(A)


async def test_async_failure_callback_and_non_gateway_errors() -> None:
    clock = FakeClock()
    seen: list[str] = []

    async def on_failed(model: str, n: int, err: GatewayError) -> None:
        seen.append(model)

    up = Upstream({A: [UpstreamError("x")]}, clock)
    await run_with_fallback(
        [A, B],
        up,
        router_state=make_router(clock),
        max_retries_per_model=0,
        on_attempt_failed=on_failed,
    )
    assert seen == [A]

    async def bug(model: str, n: int) -> str:
        raise KeyError("a bug is not a provider failure")

    router = make_router(clock)
    with pytest.raises(KeyError):
        await run_with_fallback([A, B], bug, router_state=router)
    assert router.health_registry.model("openai", "gpt-4o-mini").failures == 0


async def test_unhealthy_ollama_is_skipped() -> None:
    clock = FakeClock()
    router = make_router(clock)
    router.set_ollama_models(["llama3.2:latest"], healthy=False, error="down")
    router.set_ollama_models(["llama3.2:latest"], healthy=False, error="down")
    up = Upstream({}, clock)
    _, model, _ = await run_with_fallback(["ollama/llama3.2", A], up, router_state=router)
    assert model == A and up.calls == [(A, 1)]


async def test_one_failed_ollama_probe_does_not_block_requests() -> None:
    clock = FakeClock()
    router = make_router(clock)
    router.set_ollama_models(["llama3.2:latest"], healthy=False, error="slow probe")
    up = Upstream({}, clock)
    _, model, _ = await run_with_fallback(["ollama/llama3.2", A], up, router_state=router)
    assert model == "ollama/llama3.2"


# -- the stream contract ---------------------------------------------------------------------------


async def _events(fail_before_first: bool, fail_after: int | None) -> AsyncIterator[str]:
    if fail_before_first:
        raise upstream_status_error(503, "overloaded", provider="openai")
    for i in range(3):
        if fail_after is not None and i == fail_after:
            raise UpstreamError("dropped mid-stream")
        yield f"chunk{i}"


def stream_attempt(plan: dict[str, tuple[bool, int | None]], calls: list[str]) -> Any:
    async def attempt(model: str, n: int) -> tuple[str, AsyncIterator[str]]:
        calls.append(model)
        events = _events(*plan.get(model, (False, None)))
        first = await events.__anext__()  # return only once the first event exists
        return first, events

    return attempt


async def test_stream_falls_back_before_the_first_event() -> None:
    calls: list[str] = []
    attempt = stream_attempt({A: (True, None)}, calls)
    (first, rest), model, _ = await run_with_fallback(
        [A, B], attempt, router_state=make_router(FakeClock()), max_retries_per_model=0
    )
    assert model == B and first == "chunk0"
    assert [e async for e in rest] == ["chunk1", "chunk2"]
    assert calls == [A, B]


async def test_stream_failing_after_the_first_event_does_not_fall_back() -> None:
    calls: list[str] = []
    attempt = stream_attempt({A: (False, 1)}, calls)
    (first, rest), model, attempts = await run_with_fallback(
        [A, B], attempt, router_state=make_router(FakeClock())
    )
    assert (first, model, attempts) == ("chunk0", A, 1)
    with pytest.raises(UpstreamError, match="mid-stream"):
        async for _ in rest:
            pass
    assert calls == [A]


def not_configured(provider: str) -> ProviderNotConfigured:
    return ProviderNotConfigured(
        f"provider {provider!r} is not configured", code="provider_not_configured"
    )


def config_check(unusable: dict[str, str]) -> Callable[[str], None]:
    def usable(model: str) -> None:
        provider = model.split("/", 1)[0]
        if provider in unusable:
            raise not_configured(provider)

    return usable


async def test_unconfigured_candidate_is_skipped_without_an_attempt_or_a_breaker() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=1)
    up = Upstream({}, clock)
    failed: list[str] = []
    result, model, attempts = await run_with_fallback(
        [A, B],
        up,
        router_state=router,
        usable=config_check({"openai": "x"}),
        on_attempt_failed=lambda m, n, e: failed.append(m),
    )
    assert (result, model, attempts) == (f"answer from {B}", B, 1)
    assert up.calls == [(B, 1)] and failed == []
    assert [r for r in router.health() if r["provider"] == "openai"] == []


async def test_only_unconfigured_candidates_never_open_a_circuit() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=1)
    up = Upstream({}, clock)
    for _ in range(20):
        with pytest.raises(ProviderNotConfigured) as info:
            await run_with_fallback(
                ["azure/gpt-4o", "azure/another"],
                up,
                router_state=router,
                usable=config_check({"azure": "x"}),
            )
        assert info.value.code == "provider_not_configured" and not info.value.retryable
        assert info.value.headers == {"x-should-retry": "false"}
    assert up.calls == [] and router.health() == []


async def test_configuration_raised_by_the_attempt_is_still_not_a_failure() -> None:
    # The registry can change between the check and the call: the attempt's own
    # ProviderNotConfigured is handled the same way.
    clock = FakeClock()
    router = make_router(clock, threshold=1)
    seen: list[tuple[str, int]] = []

    async def attempt(model: str, n: int) -> str:
        seen.append((model, n))
        if model == A:
            raise not_configured("openai")
        return model

    result, _, attempts = await run_with_fallback([A, B], attempt, router_state=router)
    assert (result, attempts) == (B, 1) and seen == [(A, 1), (B, 1)]
    assert router.available(A)
    assert router.health_registry.model("openai", "gpt-4o-mini").failures == 0
    with pytest.raises(ProviderNotConfigured):
        await run_with_fallback([A], attempt, router_state=router)


async def test_configuration_of_the_first_candidate_beats_an_open_circuit() -> None:
    clock = FakeClock()
    router = make_router(clock, threshold=1)
    router.record_failure(A, connect_error())  # openai's circuit is open, and then its key goes
    with pytest.raises(ProviderNotConfigured):
        await run_with_fallback(
            [A], Upstream({}, clock), router_state=router, usable=config_check({"openai": "x"})
        )
    # The first candidate's reason wins; an upstream failure would beat both.
    with pytest.raises(UpstreamUnavailable, match="circuit open for provider openai"):
        await run_with_fallback(
            [A, "azure/gpt-4o"],
            Upstream({}, clock),
            router_state=router,
            usable=config_check({"azure": "x"}),
        )
    up = Upstream({C: [upstream_status_error(500, "down", provider="gemini")]}, clock)
    with pytest.raises(UpstreamError, match="gemini: down"):
        await run_with_fallback(
            ["azure/gpt-4o", C],
            up,
            router_state=router,
            usable=config_check({"azure": "x"}),
            max_retries_per_model=0,
        )
