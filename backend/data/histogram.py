"""Latency histogram used by per-minute rollups, so p50/p95 come from rollups, not log scans.

Bucket upper bounds in milliseconds (log-spaced); a sample goes to the first bound >= it, the
last bucket ("inf") catches the rest. Stored as ``{"<bound>": count}`` in ``MinuteStat``.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

BOUNDS_MS: tuple[float, ...] = (
    1,
    2,
    3,
    5,
    7,
    10,
    15,
    20,
    30,
    50,
    70,
    100,
    150,
    200,
    300,
    500,
    700,
    1000,
    1500,
    2000,
    3000,
    5000,
    7000,
    10000,
    15000,
    20000,
    30000,
    60000,
    120000,
)


#: The stored key of each bucket, in order (formatted once: percentile runs per minute of a day).
KEYS: tuple[str, ...] = (*(f"{b:g}" for b in BOUNDS_MS), "inf")


def bucket_key(latency_ms: float) -> str:
    i = bisect.bisect_left(BOUNDS_MS, latency_ms)
    return "inf" if i == len(BOUNDS_MS) else f"{BOUNDS_MS[i]:g}"


def merge(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + int(v)


def percentile(hist: Mapping[str, int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (0 < q <= 1); None when empty."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bound in KEYS:
        seen += int(hist.get(bound, 0))
        if seen >= rank:
            return float("inf") if bound == "inf" else float(bound)
    return None
