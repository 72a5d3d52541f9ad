"""Each routing strategy's order with controlled prices, latencies and in-flight counts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backend.pricing.book import PriceBook
from backend.routing.stats import InFlight, LatencyStats, RoundRobin, RoutingStats
from backend.routing.strategy import normalize_strategy, order
from backend.state.snapshot import PriceOverride

A, B, C, D = "openai/model-a", "openai/model-b", "openai/model-c", "openai/model-d"
CANDIDATES = [A, B, C, D]


def prices() -> PriceBook:
    # C cheapest, then A, then B; D has no price at all.
    return PriceBook(
        {
            A: PriceOverride(Decimal("1"), Decimal("4")),
            B: PriceOverride(Decimal("3"), Decimal("15")),
            C: PriceOverride(Decimal("0.1"), Decimal("0.4")),
        }
    )


def test_ordered_keeps_configuration() -> None:
    assert order(CANDIDATES, "ordered", RoutingStats(), prices()) == CANDIDATES


def test_unknown_strategy_means_ordered() -> None:
    assert normalize_strategy("warp-speed") == "ordered"
    assert normalize_strategy(None) == "ordered"
    assert normalize_strategy("Least_Busy") == "least-busy"
    assert order(CANDIDATES, "warp-speed", RoutingStats(), prices()) == CANDIDATES


def test_cheapest_by_price_unknown_last() -> None:
    assert order([D, B, A, C], "cheapest", RoutingStats(), prices()) == [C, A, B, D]


def test_cheapest_puts_free_ollama_first() -> None:
    got = order([A, "ollama/llama3.2"], "cheapest", RoutingStats(), prices())
    assert got == ["ollama/llama3.2", A]


def test_fastest_by_ewma_unmeasured_first() -> None:
    stats = RoutingStats()
    stats.latency.observe(A, 2.0)
    stats.latency.observe(B, 0.5)
    stats.latency.observe(C, 1.0)
    # D was never measured: it goes first so it gets measured once.
    assert order(CANDIDATES, "fastest", stats, prices()) == [D, B, C, A]
    # A turns fast: 0.3 * 0.1 + 0.7 * 2.0 = 1.43, still slower than C; twice more and it wins.
    stats.latency.observe(A, 0.1)
    assert order([A, B, C], "fastest", stats, prices()) == [B, C, A]
    stats.latency.observe(A, 0.1)
    stats.latency.observe(A, 0.1)
    assert stats.latency.get(A) == pytest.approx(0.3 * 0.1 + 0.7 * (0.3 * 0.1 + 0.7 * 1.43))
    assert order([A, B, C], "fastest", stats, prices()) == [B, A, C]


def test_ewma_math() -> None:
    lat = LatencyStats(alpha=0.5)
    assert lat.get(A) is None
    lat.observe(A, 4.0)
    assert lat.get(A) == 4.0
    lat.observe(A, 2.0)
    assert lat.get(A) == 3.0
    assert lat.samples(A) == 2
    with pytest.raises(ValueError):
        LatencyStats(alpha=0)


def test_least_busy_by_in_flight() -> None:
    stats = RoutingStats()
    with stats.in_flight.track(A), stats.in_flight.track(A), stats.in_flight.track(B):
        with stats.in_flight.track(D), stats.in_flight.track(D), stats.in_flight.track(D):
            assert order(CANDIDATES, "least-busy", stats, prices()) == [C, B, A, D]
    assert stats.in_flight.snapshot() == {}
    assert order(CANDIDATES, "least-busy", stats, prices()) == CANDIDATES


def test_in_flight_decrements_on_error() -> None:
    flights = InFlight()
    with pytest.raises(RuntimeError), flights.track(A):
        assert flights.count(A) == 1
        raise RuntimeError
    assert flights.count(A) == 0


def test_round_robin_rotates_per_candidate_list() -> None:
    stats = RoutingStats()
    p = prices()
    got = [order([A, B, C], "round-robin", stats, p) for _ in range(4)]
    assert got == [[A, B, C], [B, C, A], [C, A, B], [A, B, C]]
    # Another list has its own turn.
    assert order([A, D], "round-robin", stats, p) == [A, D]
    assert order([A, D], "round-robin", stats, p) == [D, A]
    assert order([A, B, C], "round-robin", stats, p) == [B, C, A]


def test_round_robin_memory_is_bounded() -> None:
    rr = RoundRobin(max_lists=2)
    for name in ("x", "y", "z"):
        rr.start([name, "other"])
    assert rr.start(["x", "other"]) == 0  # forgotten, starts over


def test_single_candidate_untouched() -> None:
    for strategy in ("cheapest", "fastest", "least-busy", "round-robin"):
        assert order([A], strategy, RoutingStats(), prices()) == [A]
