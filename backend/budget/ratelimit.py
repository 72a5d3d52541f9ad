"""Per-key requests-per-minute limits on fixed 60-second windows.

Windows are aligned on the Unix epoch (``floor(t / 60)``), the same in every process, so a Redis
counter per (key, window) is shared by all gateway instances. Every request counts, refused ones
included (which changes nothing within a window: once over, the window stays over). A fixed window
can let up to ``2 * rpm`` through around a window edge; that is the documented price for one INCR
per request. ``Retry-After`` is the whole seconds until the window ends (at least 1).

``rate_limit_rpm`` ``None`` means no limit; ``0`` or less refuses every request of the key.
"""

from __future__ import annotations

import datetime as dt
import math

from backend.budget.base import RATE_WINDOW_S, rate_error
from backend.budget.periods import as_utc
from backend.state.snapshot import KeyInfo

#: Drop stale per-key windows once the table is this large.
_PRUNE_AT = 10_000


def window_of(now: dt.datetime) -> tuple[int, int]:
    """(window index, seconds until it ends, rounded up, at least 1)."""
    ts = as_utc(now).timestamp()
    index = math.floor(ts / RATE_WINDOW_S)
    retry = math.ceil((index + 1) * RATE_WINDOW_S - ts)
    return index, max(1, retry)


def enforce(key: KeyInfo, rpm: int, count: int, retry_after_s: int) -> None:
    """Raise ``RateLimited`` when ``count`` requests in this window exceed ``rpm``."""
    if count > rpm:
        raise rate_error(key, rpm, retry_after_s)


class LocalRateLimiter:
    """In-process windows: the whole limit in one process, or Redis's stand-in while it is down."""

    def __init__(self) -> None:
        self._windows: dict[int, tuple[int, int]] = {}

    def check(self, key: KeyInfo, now: dt.datetime) -> None:
        rpm = key.rate_limit_rpm
        if rpm is None:
            return
        index, retry = window_of(now)
        current = self._windows.get(key.id)
        count = current[1] + 1 if current is not None and current[0] == index else 1
        if current is None and len(self._windows) >= _PRUNE_AT:
            self._windows = {k: v for k, v in self._windows.items() if v[0] >= index}
        self._windows[key.id] = (index, count)
        enforce(key, rpm, count, retry)
