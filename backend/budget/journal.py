"""SpendJournal: the spend one process settled into Redis that the database may not hold yet.

Pure bookkeeping, no I/O (``RedisBudget`` does the I/O and holds its lock around these calls).
Units are kept per counter and per the Redis epoch they were applied in:

- ``add``: a settle was applied in ``epoch``.
- ``persisting`` / ``persisted``: a flush added a snapshot to the database while the seeded
  marker read ``marker`` (under the counters' lock). Every later seed reads those units, but
  the epoch ``marker`` itself was seeded before, so units applied in any other epoch are now
  *owed* to ``marker``.
- ``owed_to`` / ``moved``: what a new epoch lacks from this process (units applied in other
  epochs and not yet persisted, plus units owed to it), and the bookkeeping once applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from backend.budget.persist import CounterKey

Units = dict[CounterKey, int]


class SpendJournal:
    def __init__(self) -> None:
        self._by_epoch: dict[str, Units] = {}
        #: Units in the database but not in Redis epoch ``owed_epoch``.
        self._owed: Units = {}
        self._owed_epoch: str | None = None

    def add(self, epoch: str, key: CounterKey, units: int) -> None:
        bucket = self._by_epoch.setdefault(epoch, {})
        bucket[key] = bucket.get(key, 0) + units

    def persisting(self) -> dict[str, Units]:
        """A copy of everything not persisted yet, by epoch."""
        return {epoch: dict(units) for epoch, units in self._by_epoch.items() if units}

    def persisted(self, snapshot: Mapping[str, Units], marker: str | None) -> None:
        """``snapshot`` is committed to the database; ``marker`` was the epoch in Redis then."""
        if self._owed_epoch != marker:
            # ``marker`` was seeded after the flush that made these debts: it has them.
            self._owed, self._owed_epoch = {}, marker
        for epoch, units in snapshot.items():
            self._take(epoch, units)
            if marker is not None and epoch != marker:
                for key, n in units.items():
                    self._owed[key] = self._owed.get(key, 0) + n

    def owed_to(self, target: str) -> tuple[dict[str, Units], Units]:
        """(unpersisted units applied in other epochs, persisted units ``target`` lacks)."""
        moves = {e: dict(u) for e, u in self._by_epoch.items() if e != target and u}
        owed = dict(self._owed) if self._owed_epoch == target else {}
        return moves, owed

    def moved(self, target: str, moves: Mapping[str, Units], owed: Units) -> None:
        """``moves`` and ``owed`` were applied in ``target``."""
        for epoch, units in moves.items():
            self._take(epoch, units)
            for key, n in units.items():
                self.add(target, key, n)
        if owed and self._owed_epoch == target:
            for key, n in owed.items():
                left = self._owed.get(key, 0) - n
                if left:
                    self._owed[key] = left
                else:
                    self._owed.pop(key, None)
        elif self._owed_epoch != target:
            # ``target`` came after the flush that made these debts (it read them): drop them.
            self._owed, self._owed_epoch = {}, None

    def needs_sync(self, epoch: str | None) -> bool:
        """Is anything of this process missing from ``epoch`` (the one it believes current)?"""
        if self._owed and self._owed_epoch is not None:
            return True
        return any(units for e, units in self._by_epoch.items() if e != epoch)

    def total(self) -> Units:
        """All units not persisted yet (any epoch), for tests and logs."""
        out: dict[CounterKey, int] = defaultdict(int)
        for units in self._by_epoch.values():
            for key, n in units.items():
                out[key] += n
        return dict(out)

    def _take(self, epoch: str, units: Mapping[CounterKey, int]) -> None:
        bucket = self._by_epoch.get(epoch)
        if bucket is None:
            return
        for key, n in units.items():
            left = bucket.get(key, 0) - n
            if left:
                bucket[key] = left
            else:
                bucket.pop(key, None)
        if not bucket:
            del self._by_epoch[epoch]
