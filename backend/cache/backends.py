"""aiocache backends for the gateway's caches: in-process memory, or Redis from a URL.

Values are opaque bytes (the caller serializes with orjson), so the serializer is a pass-through
with no text encoding: aiocache's own serializers decode Redis replies as UTF-8 strings.

aiocache 0.12's ``RedisCache`` runs on redis-py 7.x (it uses ``redis.asyncio``), with two gaps
filled here: it takes host/port/db rather than a URL (we build its client from the URL, so
``rediss://``, ``unix://``, usernames and query options all work as in redis-py), and it closes
with the deprecated ``close()`` (we use ``aclose()``).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis_asyncio
from aiocache import RedisCache, SimpleMemoryCache
from aiocache.base import BaseCache
from aiocache.serializers import BaseSerializer


class BytesSerializer(BaseSerializer):  # type: ignore[misc]
    DEFAULT_ENCODING = None

    def dumps(self, value: bytes) -> bytes:
        return value

    def loads(self, value: bytes | None) -> bytes | None:
        return value


class RedisUrlCache(RedisCache):  # type: ignore[misc]
    """aiocache's Redis backend on a redis-py client made from ``url``."""

    def __init__(self, url: str, *, connect_timeout_s: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The pool the parent built never connected (redis-py connects lazily); replace it.
        self.client = redis_asyncio.Redis.from_url(
            url,
            decode_responses=False,
            socket_connect_timeout=connect_timeout_s,
            health_check_interval=30,
        )

    async def _close(self, *args: Any, _conn: Any = None, **kwargs: Any) -> None:
        await self.client.aclose()


def make_cache_backend(
    redis_url: str | None = None, *, namespace: str, timeout_s: float = 1.0
) -> BaseCache:
    """Redis when ``redis_url`` is given, else process memory; values are bytes.

    ``timeout_s`` bounds every operation: a cache must never hold a request up for long.
    """
    if redis_url:
        return RedisUrlCache(
            redis_url, namespace=namespace, serializer=BytesSerializer(), timeout=timeout_s
        )
    return SimpleMemoryCache(namespace=namespace, serializer=BytesSerializer(), timeout=timeout_s)
