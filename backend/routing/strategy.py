"""Routing strategies: the order in which ``[primary, *chain]`` is tried.

    ordered      as configured
    cheapest     by list price, input + output USD per million tokens (overrides included;
                 Ollama is $0); models without a known price go last
    fastest      by measured latency (EWMA, ``stats.LatencyStats``), fastest first; models never
                 measured go *first*, in configured order, so each gets measured once instead of
                 never being tried while a measured model works
    least-busy   fewest requests in flight first
    round-robin  the configured list rotated by one more position on each call (per list)

Ties keep the configured order (every sort is stable). An unknown strategy name means
``ordered``. Health is not a strategy's business: ``run_with_fallback`` skips open circuits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from backend.pricing.book import ModelPricing
from backend.routing.stats import RoutingStats

STRATEGIES: tuple[str, ...] = ("ordered", "cheapest", "fastest", "least-busy", "round-robin")
DEFAULT_STRATEGY = "ordered"


class PriceLookup(Protocol):
    def price(self, model: str) -> ModelPricing | None: ...


def normalize_strategy(name: str | None) -> str:
    """Canonical strategy name (``least_busy`` -> ``least-busy``); unknown -> ``ordered``."""
    norm = (name or "").strip().lower().replace("_", "-").replace(" ", "-")
    return norm if norm in STRATEGIES else DEFAULT_STRATEGY


def order(
    candidates: Sequence[str], strategy: str | None, stats: RoutingStats, prices: PriceLookup
) -> list[str]:
    """A new list: ``candidates`` in the order ``strategy`` prefers."""
    items = list(candidates)
    name = normalize_strategy(strategy)
    if len(items) < 2 or name == "ordered":
        return items
    if name == "round-robin":
        start = stats.round_robin.start(items)
        return items[start:] + items[:start]
    return sorted(items, key=_KEYS[name](stats, prices))


def _cheapest(_stats: RoutingStats, prices: PriceLookup) -> Callable[[str], tuple[int, Decimal]]:
    def key(model: str) -> tuple[int, Decimal]:
        p = prices.price(model)
        if p is None:
            return (1, Decimal(0))
        return (0, p.input_per_mtok + p.output_per_mtok)

    return key


def _fastest(stats: RoutingStats, _prices: PriceLookup) -> Callable[[str], tuple[int, float]]:
    def key(model: str) -> tuple[int, float]:
        avg = stats.latency.get(model)
        return (0, 0.0) if avg is None else (1, avg)

    return key


def _least_busy(stats: RoutingStats, _prices: PriceLookup) -> Callable[[str], int]:
    return stats.in_flight.count


_KEYS: dict[str, Callable[[RoutingStats, PriceLookup], Callable[[str], Any]]] = {
    "cheapest": _cheapest,
    "fastest": _fastest,
    "least-busy": _least_busy,
}
