"""Live per-model measurements the routing strategies read: latency, requests in flight, turns.

All keyed by the canonical ``provider/model`` candidate string, all in-process (each gateway
instance routes by what it has seen itself), none touched by I/O.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

#: Weight of the newest latency sample. 0.3 follows a change within ~5 requests while one slow
#: outlier moves the average by under a third of its excess.
DEFAULT_EWMA_ALPHA = 0.3


class LatencyStats:
    """Exponentially weighted moving average of seconds per model.

    ``ewma = alpha * sample + (1 - alpha) * ewma``; the first sample sets the average. Samples
    are what ``run_with_fallback`` measures around a successful attempt: the whole answer for a
    non-streaming call, the time to the first event for a stream.
    """

    def __init__(self, alpha: float = DEFAULT_EWMA_ALPHA) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self._avg: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def observe(self, model: str, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        prev = self._avg.get(model)
        self._avg[model] = (
            seconds if prev is None else self.alpha * seconds + (1 - self.alpha) * prev
        )
        self._count[model] = self._count.get(model, 0) + 1

    def get(self, model: str) -> float | None:
        """The average in seconds, or ``None`` when ``model`` was never measured."""
        return self._avg.get(model)

    def samples(self, model: str) -> int:
        return self._count.get(model, 0)

    def snapshot(self) -> dict[str, float]:
        return dict(self._avg)


class InFlight:
    """Requests currently running per model (for ``least-busy`` and the dashboard)."""

    def __init__(self) -> None:
        self._n: dict[str, int] = {}

    @contextlib.contextmanager
    def track(self, model: str) -> Iterator[None]:
        self._n[model] = self._n.get(model, 0) + 1
        try:
            yield
        finally:
            left = self._n.get(model, 1) - 1
            if left > 0:
                self._n[model] = left
            else:
                self._n.pop(model, None)

    def count(self, model: str) -> int:
        return self._n.get(model, 0)

    def snapshot(self) -> dict[str, int]:
        return dict(self._n)


class RoundRobin:
    """Where the next turn starts, per candidate list; at most ``max_lists`` lists remembered."""

    def __init__(self, max_lists: int = 4096) -> None:
        self._next: OrderedDict[tuple[str, ...], int] = OrderedDict()
        self._max = max_lists

    def start(self, candidates: Sequence[str]) -> int:
        """The start index for this call, advancing the turn for the next call."""
        n = len(candidates)
        if n == 0:
            return 0
        key = tuple(candidates)
        turn = self._next.pop(key, 0)
        self._next[key] = (turn + 1) % n
        while len(self._next) > self._max:
            self._next.popitem(last=False)
        return turn % n


@dataclass(slots=True)
class RoutingStats:
    latency: LatencyStats = field(default_factory=LatencyStats)
    in_flight: InFlight = field(default_factory=InFlight)
    round_robin: RoundRobin = field(default_factory=RoundRobin)
