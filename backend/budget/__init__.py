"""Spend caps and per-key rate limits, independent of HTTP (see README.md in this package).

``make_budget(redis)`` picks the implementation: ``RedisBudget`` when a Redis client is given
(several gateway processes share one budget), ``LocalBudget`` otherwise. ``flush_periodically``
is the background task that persists counters and flushes once more when cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from backend.budget.base import (
    NO_RESERVATION,
    Budget,
    BudgetUnavailable,
    Hold,
    Reservation,
    from_units,
    to_units,
)
from backend.budget.caps import Cap, applicable_caps, limit_for, rollover_limit
from backend.budget.local import LocalBudget
from backend.budget.periods import next_period_start, period_start, previous_period_start

if TYPE_CHECKING:
    from backend.budget.redis_budget import RedisBudget
    from backend.gateway import Clock

__all__ = [
    "NO_RESERVATION",
    "Budget",
    "BudgetUnavailable",
    "Cap",
    "Hold",
    "LocalBudget",
    "RedisBudget",
    "Reservation",
    "applicable_caps",
    "flush_periodically",
    "from_units",
    "limit_for",
    "make_budget",
    "next_period_start",
    "period_start",
    "previous_period_start",
    "rollover_limit",
    "to_units",
]

log = logging.getLogger("switchboard.budget")


def __getattr__(name: str) -> Any:
    # ``RedisBudget`` is imported when asked for: redis-py is ~4 MB of RSS that a gateway
    # without Redis never needs (issue 19, idle memory).
    if name == "RedisBudget":
        from backend.budget.redis_budget import RedisBudget

        return RedisBudget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_budget(
    redis: Any = None,
    *,
    clock: Clock | None = None,
    key_prefix: str = "sb:budget:",
    timeout_s: float | None = None,
) -> Budget:
    """``RedisBudget`` over ``redis`` (a ``redis.asyncio.Redis``) if given, else ``LocalBudget``.

    ``timeout_s`` bounds each Redis call of a ``RedisBudget`` (its default when ``None``).
    """
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    if redis is not None:
        from backend.budget.redis_budget import RedisBudget

        extra = kwargs if timeout_s is None else kwargs | {"timeout_s": timeout_s}
        return RedisBudget(redis, key_prefix, **extra)
    return LocalBudget(**kwargs)


async def flush_periodically(budget: Budget, interval_s: float) -> None:
    """Run ``budget.flush()`` every ``interval_s`` until cancelled, then flush one last time."""
    try:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await budget.flush()
            except Exception:
                log.exception("budget: flush failed; will retry")
    finally:
        await budget.flush()
