"""Circuit breakers: open after N failures, half-open after the cooldown, one trial, recover."""

from __future__ import annotations

from backend.ir.errors import UpstreamError, UpstreamUnavailable, upstream_status_error
from backend.routing.health import CircuitBreaker, HealthRegistry, is_provider_wide
from tests.routing.helpers import FakeClock


def breaker(clock: FakeClock, wall: FakeClock | None = None) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, cooldown_s=30, clock=clock, wall=wall or clock)


def test_opens_after_threshold_consecutive_failures() -> None:
    clock = FakeClock()
    b = breaker(clock)
    b.failure()
    b.failure()
    b.success()  # resets the streak
    b.failure()
    b.failure()
    assert b.state == "closed" and b.acquire()
    b.failure()
    assert b.state == "open" and b.failures == 3
    assert not b.available() and not b.acquire()


def test_half_open_allows_exactly_one_trial_then_closes_on_success() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.failure()
    clock.advance(29.9)
    assert b.state == "open"
    clock.advance(0.1)
    assert b.state == "half_open"
    assert b.acquire()
    assert not b.acquire()  # the trial is out: everyone else is skipped
    b.success()
    assert b.state == "closed" and b.failures == 0
    assert b.acquire() and b.acquire()


def test_failed_trial_reopens_for_a_full_cooldown() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.failure()
    clock.advance(30)
    assert b.acquire()
    clock.advance(5)
    b.failure()
    assert b.state == "open"
    clock.advance(29)
    assert not b.available()
    clock.advance(1)
    assert b.available()


def test_released_trial_can_be_taken_again() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.failure()
    clock.advance(30)
    assert b.acquire()
    b.release()  # cancelled: no verdict
    assert b.state == "half_open" and b.acquire()


def test_since_uses_the_wall_clock() -> None:
    clock, wall = FakeClock(5.0), FakeClock(1_700_000_000.0)
    b = breaker(clock, wall)
    assert b.since is None
    for _ in range(3):
        b.failure()
    assert b.since == 1_700_000_000.0


def test_provider_wide_errors() -> None:
    assert is_provider_wide(UpstreamUnavailable("refused"))
    assert is_provider_wide(upstream_status_error(504, "slow", provider="p"))
    for status in (401, 402, 403):
        assert is_provider_wide(upstream_status_error(status, "no", provider="p"))
    assert not is_provider_wide(upstream_status_error(500, "boom", provider="p"))
    assert not is_provider_wide(upstream_status_error(429, "slow down", provider="p"))


def test_provider_breaker_opens_on_provider_wide_failures_across_models() -> None:
    clock = FakeClock()
    reg = HealthRegistry(threshold=3, cooldown_s=10, clock=clock, wall=clock)
    down = UpstreamUnavailable("connection refused")
    reg.record_failure("openai", "a", down)
    reg.record_failure("openai", "b", down)
    reg.record_failure("openai", "c", down)
    # No model reached 3, but the provider did: every model of it is skipped, others are not.
    assert reg.model("openai", "a").state == "closed"
    assert reg.provider("openai").state == "open"
    assert not reg.available("openai", "never-tried")
    assert reg.available("anthropic", "x")
    clock.advance(10)
    assert reg.acquire("openai", "a")
    assert not reg.acquire("openai", "b")  # one provider trial at a time
    reg.record_success("openai", "a")
    assert reg.available("openai", "b")


def test_model_errors_do_not_open_the_provider() -> None:
    clock = FakeClock()
    reg = HealthRegistry(threshold=2, cooldown_s=10, clock=clock, wall=clock)
    boom = UpstreamError("500")
    for _ in range(5):
        reg.record_failure("openai", "a", boom)
    assert reg.model("openai", "a").state == "open"
    assert reg.provider("openai").state == "closed"
    assert reg.available("openai", "b")


def test_rows_for_the_admin_api() -> None:
    clock = FakeClock()
    reg = HealthRegistry(threshold=1, cooldown_s=10, clock=clock, wall=lambda: 42.0)
    reg.record_failure("openai", "a", UpstreamUnavailable("down"))
    rows = reg.rows()
    assert rows == [
        {
            "provider": "openai",
            "model": None,
            "state": "open",
            "failures": 1,
            "since": 42.0,
            "kind": "breaker",
        },
        {
            "provider": "openai",
            "model": "a",
            "state": "open",
            "failures": 1,
            "since": 42.0,
            "kind": "breaker",
        },
    ]
