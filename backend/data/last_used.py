"""``api_keys.last_used_at``, written off the request path, at most once per key per interval.

The log writer notes the time of every request a key made (``note``) as it writes its batch; the
database is updated only for keys whose last write is at least ``interval`` seconds old
(``take``), so a key used a thousand times a second costs one UPDATE per interval, and a key used
once costs one UPDATE. A use noted while its key is throttled stays pending and is written by a
later flush (``take`` also runs when there are no new log rows), so the stored time is at most
one interval (plus a flush) behind, and never lost on a clean stop (``take(force=True)``).

What counts as a use: a request authenticated with the key (a row with its user or app), whatever
its answer, a spend-cap refusal included. A request refused because the key is revoked, expired
or unknown is not a use of it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping

from tortoise.expressions import Q

from backend.data.models.keys import ApiKey

#: Default seconds between two writes of one key's ``last_used_at``.
DEFAULT_INTERVAL_S = 60.0


class LastUsed:
    def __init__(
        self, interval_s: float = DEFAULT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_s
        self._clock = clock
        #: key prefix -> newest use not yet written
        self._pending: dict[str, dt.datetime] = {}
        #: key prefix -> monotonic time of its last write
        self._written: dict[str, float] = {}

    def note(self, prefix: str, when: dt.datetime) -> None:
        seen = self._pending.get(prefix)
        if seen is None or when > seen:
            self._pending[prefix] = when

    @property
    def pending(self) -> int:
        return len(self._pending)

    def take(self, *, force: bool = False) -> dict[str, dt.datetime]:
        """The uses to write now (removed from pending; ``give_back`` them if the write fails)."""
        now = self._clock()
        due = {
            prefix: when
            for prefix, when in self._pending.items()
            if force or now - self._written.get(prefix, -self._interval) >= self._interval
        }
        for prefix in due:
            del self._pending[prefix]
            self._written[prefix] = now
        if len(self._written) > 4 * max(len(self._pending), 1024):
            # Forget write times older than an interval: they no longer throttle anything.
            self._written = {p: t for p, t in self._written.items() if now - t < self._interval}
        return due

    def give_back(self, uses: Mapping[str, dt.datetime]) -> None:
        """A write that failed: its uses are pending again (and due at once)."""
        for prefix, when in uses.items():
            self._written.pop(prefix, None)
            self.note(prefix, when)


async def write(conn: object, uses: Mapping[str, dt.datetime]) -> None:
    """One UPDATE per key, never moving ``last_used_at`` backwards (instances write in any
    order)."""
    for prefix, when in uses.items():
        await (
            ApiKey.filter(prefix=prefix)
            .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=when))
            .using_db(conn)  # type: ignore[arg-type]
            .update(last_used_at=when)
        )
