"""Event bus: in-process by default, Redis pub/sub when ``REDIS_URL`` is set.

Channels used by the gateway:
- ``config``: ``{"domain": "tenancy" | "keys" | "routing" | "settings" | "credentials" | "dlp"}`` —
  an admin change; every instance reloads that domain of its hot-path cache.
- ``logs``: one completed request (the log row as a dict, no bodies) — live subscriptions.
- ``errors``: one error report as a dict.
- ``sessions``: ``{"user_id": int}`` — a user's dashboard credentials changed (logout, a revoked
  token); live GraphQL subscriptions of that user re-check their session.
- ``responses``: ``{"deleted": "resp_...", "origin": instance}`` — a stored response was deleted;
  every instance drops its cached copy (``backend.responses_store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import orjson

log = logging.getLogger("switchboard.events")


class EventBus(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    def subscribe(
        self, channel: str
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """``async with bus.subscribe("logs") as events: async for ev in events: ...``"""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def on_resubscribe(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` whenever the bus subscribes again after losing its subscription:
        whatever was published in between was missed (``ConfigStore`` then reloads everything).
        """
        ...


class _Subscription:
    __slots__ = ("queue",)

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)

    def offer(self, message: dict[str, Any]) -> None:
        # A slow subscriber loses its oldest events rather than growing memory without bound.
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(message)

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.queue.get()


class LocalBus:
    """Fan-out to subscribers of this process."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subs: dict[str, set[_Subscription]] = {}
        self._queue_size = queue_size
        self._resubscribe_hooks: list[Callable[[], None]] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subs.clear()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self.deliver(channel, message)

    def on_resubscribe(self, hook: Callable[[], None]) -> None:
        # In-process delivery never loses its subscription; a subclass that can calls
        # ``_resubscribed`` when it has one again.
        self._resubscribe_hooks.append(hook)

    def _resubscribed(self) -> None:
        for hook in self._resubscribe_hooks:
            try:
                hook()
            except Exception:  # one bad hook must not stop the bus
                log.exception("a resubscribe hook failed")

    def deliver(self, channel: str, message: dict[str, Any]) -> None:
        for sub in self._subs.get(channel, ()):
            sub.offer(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        sub = _Subscription(self._queue_size)
        self._subs.setdefault(channel, set()).add(sub)
        try:
            yield sub.__aiter__()
        finally:
            self._subs.get(channel, set()).discard(sub)


class RedisBus(LocalBus):
    """Publishes through Redis; one listener task per process fans messages out locally.

    Messages published here also come back through Redis, so local subscribers see each event
    exactly once, whichever instance produced it.
    """

    CHANNELS = ("config", "logs", "errors", "sessions", "responses")

    def __init__(self, redis: Any, prefix: str = "switchboard:", queue_size: int = 1000) -> None:
        super().__init__(queue_size)
        self._redis = redis
        self._prefix = prefix
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="redis-bus")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await super().close()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(self._prefix + channel, orjson.dumps(message))

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(*(self._prefix + c for c in self.CHANNELS))
                # After a loss, hooks run once Redis has confirmed every channel: only from then
                # on is nothing published missed, so a reload they trigger cannot fall in a gap.
                unconfirmed = len(self.CHANNELS) if self._ready.is_set() else 0
                self._ready.set()
                while True:
                    # A bounded wait returns None on a quiet channel. ``listen()`` would instead
                    # hit the client's socket_timeout after a few idle seconds and drop the
                    # subscription, losing every message published while it resubscribes.
                    raw = await pubsub.get_message(timeout=1.0)
                    if raw is not None and raw.get("type") == "subscribe" and unconfirmed:
                        unconfirmed -= 1
                        if not unconfirmed:
                            log.info("redis pub/sub subscribed again")
                            self._resubscribed()
                    if raw is None or raw.get("type") != "message":
                        continue
                    channel = raw["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    self.deliver(channel[len(self._prefix) :], orjson.loads(raw["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: keep serving, retry the subscription.
                log.warning("redis pub/sub lost (%s), retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
