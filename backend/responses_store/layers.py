"""The two fast layers in front of the database: this process's LRU and Redis (when configured).

Every entry carries its record's ``expires_at``; an entry past it is a miss at that layer, never
an answer, so a conversation whose expiry another instance extended is found in the database
(the authority) instead. A Redis failure is a miss and a log line, never an error for a client.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from backend.responses_store.records import StoredRecord

log = logging.getLogger("switchboard.responses")


class LocalCache:
    """Recently written or read records, bounded by count and by serialized size."""

    def __init__(self, max_items: int = 5000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._items: OrderedDict[str, tuple[StoredRecord, int]] = OrderedDict()
        self._bytes = 0
        self._max_items = max_items
        self._max_bytes = max_bytes

    def get(self, response_id: str, now: float) -> StoredRecord | None:
        entry = self._items.get(response_id)
        if entry is None:
            return None
        if not entry[0].alive(now):
            self.discard(response_id)
            return None
        self._items.move_to_end(response_id)
        return entry[0]

    def put(self, rec: StoredRecord, size: int) -> None:
        self.discard(rec.id)
        if size > self._max_bytes:
            return
        self._items[rec.id] = (rec, size)
        self._bytes += size
        while len(self._items) > self._max_items or self._bytes > self._max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self._bytes -= dropped

    def discard(self, response_id: str) -> None:
        entry = self._items.pop(response_id, None)
        if entry is not None:
            self._bytes -= entry[1]

    def __len__(self) -> int:
        return len(self._items)


class Tombstones:
    """Ids deleted a moment ago: a row or Redis entry another instance was writing while the
    delete ran may still land, and must not be served meanwhile."""

    def __init__(self, keep_s: float) -> None:
        self._until: dict[str, float] = {}
        self.keep_s = keep_s

    def add(self, response_id: str, now: float) -> None:
        self._until[response_id] = now + self.keep_s
        if len(self._until) > 10_000:
            self._until = {k: v for k, v in self._until.items() if v > now}

    def __call__(self, response_id: str, now: float) -> bool:
        until = self._until.get(response_id)
        return until is not None and until > now


class RedisLayer:
    """Records shared by every instance: ``<prefix>resp:<id>`` -> record bytes, with a TTL, and
    ``<prefix>resp-deleted:<id>`` tombstones of ids deleted a moment ago."""

    def __init__(self, redis: Any, prefix: str, timeout_s: float = 1.0) -> None:
        self._redis = redis
        self._prefix = prefix + "resp:"
        self._dead = prefix + "resp-deleted:"
        self._timeout_s = timeout_s

    def _key(self, response_id: str) -> str:
        return self._prefix + response_id

    async def put(self, rec: StoredRecord, raw: bytes, now: float) -> None:
        ttl_ms = int((rec.expires_at - now) * 1000)
        if ttl_ms <= 0:
            return
        try:
            await asyncio.wait_for(
                self._redis.set(self._key(rec.id), raw, px=ttl_ms), self._timeout_s
            )
        except Exception as exc:
            log.warning("caching response %s in Redis failed: %s", rec.id, type(exc).__name__)

    async def get_many(self, ids: list[str]) -> tuple[dict[str, bytes], set[str]]:
        """The records Redis has for ``ids``, and which of ``ids`` were deleted a moment ago."""
        if not ids:
            return {}, set()
        keys = [self._key(i) for i in ids] + [self._dead + i for i in ids]
        try:
            values = await asyncio.wait_for(self._redis.mget(keys), self._timeout_s)
        except Exception as exc:
            log.warning("reading responses from Redis failed: %s", type(exc).__name__)
            return {}, set()
        n = len(ids)
        dead = {i for i, v in zip(ids, values[n:], strict=True) if v is not None}
        found = {
            i: v for i, v in zip(ids, values[:n], strict=True) if v is not None and i not in dead
        }
        return found, dead

    async def delete(self, response_id: str, tombstone_s: float | None = None) -> None:
        """Drop the record; with ``tombstone_s``, mark the id deleted for that long."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                if tombstone_s:
                    pipe.set(self._dead + response_id, b"1", px=int(tombstone_s * 1000))
                pipe.delete(self._key(response_id))
                await asyncio.wait_for(pipe.execute(), self._timeout_s)
        except Exception as exc:
            log.warning("deleting response %s in Redis failed: %s", response_id, type(exc).__name__)
