"""Ollama discovery: which models a (local or remote) Ollama serves, via ``GET /api/tags``.

Never on the request path: ``OllamaDiscovery`` refreshes in a background task the app starts and
stops, and on demand (``refresh_now``, e.g. from the admin API after the base URL changed).
Each probe is bounded by ``timeout_s`` (2 s) end to end. An unreachable Ollama is marked
unhealthy on the router (its models are skipped by routing and shown unreachable in the
catalog) and keeps its last known model list; nothing raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

import httpx
import orjson

log = logging.getLogger("switchboard.ollama")

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_INTERVAL_S = 60.0


class OllamaSink(Protocol):
    """Where results go (``Router`` implements it)."""

    def set_ollama_models(
        self, names: list[str] | None, healthy: bool, error: str | None = None
    ) -> None: ...

    def reset_ollama(self) -> None: ...


class DiscoveryFailed(Exception):
    """Ollama did not answer ``/api/tags`` usefully; the message is safe to show."""


def tags_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.endswith("/v1"):  # the OpenAI-compatible root of the same server
        base = base[: -len("/v1")]
    return f"{base}/api/tags"


async def fetch_tags(
    client: httpx.AsyncClient, base_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[str]:
    """Model names from ``/api/tags``; raises ``DiscoveryFailed`` on any failure."""
    try:
        async with asyncio.timeout(timeout_s):
            resp = await client.get(tags_url(base_url), timeout=timeout_s)
    except TimeoutError as exc:
        raise DiscoveryFailed(f"no answer within {timeout_s:g}s") from exc
    except httpx.HTTPError as exc:
        # Not the URL: a base URL may carry credentials.
        raise DiscoveryFailed(f"connection failed ({type(exc).__name__})") from exc
    if resp.status_code != 200:
        raise DiscoveryFailed(f"/api/tags answered HTTP {resp.status_code}")
    try:
        body = orjson.loads(resp.content)
        models = body["models"]
        return [str(m.get("name") or m["model"]) for m in models]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DiscoveryFailed("/api/tags answered an unexpected body") from exc


async def discover(
    client: httpx.AsyncClient, base_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[str]:
    """Model names, or ``[]`` when Ollama is unreachable (never raises, never waits > timeout)."""
    try:
        return await fetch_tags(client, base_url, timeout_s=timeout_s)
    except DiscoveryFailed as exc:
        log.info("ollama discovery failed: %s", exc)
        return []


class OllamaDiscovery:
    """Periodic ``/api/tags`` refresh feeding the router; ``base_url`` is read on every refresh."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: Callable[[], str | None] | str | None,
        sink: OllamaSink,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._client = client
        self._base_url = base_url if callable(base_url) else (lambda: base_url)
        self._sink = sink
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def refresh_now(self) -> list[str]:
        """Probe now and publish the result; returns the names found (``[]`` if unreachable)."""
        async with self._lock:
            base_url = self._base_url()
            if not base_url:
                self._sink.reset_ollama()
                return []
            try:
                names = await fetch_tags(self._client, base_url, timeout_s=self.timeout_s)
            except DiscoveryFailed as exc:
                log.info("ollama discovery failed: %s", exc)
                self._sink.set_ollama_models(None, False, str(exc))
                return []
            self._sink.set_ollama_models(names, True)
            return names

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="ollama-discovery"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh_now()
            except Exception:  # the loop must survive anything a refresh throws
                log.exception("ollama discovery refresh crashed")
            await asyncio.sleep(self.interval_s)
