"""The live set of provider adapters, rebuilt in place when credentials or settings change.

Each provider has one entry: its ``ProviderConfig``, its own pooled ``Upstream`` and the
adapter built on them. ``apply()`` compares the new configs with the current ones and rebuilds
only the providers that changed; the swap is one dict assignment, so a request sees either the
old entry or the new one, never a mix.

Retiring an old client safely: every call is counted against the entry it started on. ``get()``
returns a thin wrapper whose ``chat``/``embed``/``count_tokens``/``list_models`` count while they
run and whose ``stream()`` counts until the iterator is exhausted or closed; ``async with
registry.use(name) as provider:`` additionally holds the entry for a whole block. A retired client
is closed once ``close_grace_s`` has passed since the swap (covering a caller between ``get()``
and its call) *and* its count is zero; after ``drain_timeout_s`` it is closed regardless, so a
stuck stream cannot pin a connection pool forever.

Wiring, in the app's lifespan::

    registry = ProviderRegistry(default_factories(), transport=settings.transport)
    configs, errors = await load_provider_configs(settings.provider_env, key,
                                                  ollama_base_url=store.settings.ollama_base_url)
    await registry.apply(configs, errors)      # again from the "credentials"/"settings" hooks
    ...
    await registry.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from backend.ir.chat import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from backend.ir.errors import NotFound, ProviderNotConfigured
from backend.ir.stream import StreamEvent
from backend.providers.base import Provider, ProviderConfig
from backend.providers.credentials import DEFAULTS
from backend.providers.http import TransportName, Upstream, make_http_client

log = logging.getLogger("switchboard.providers")

ProviderFactory = Callable[[ProviderConfig, Upstream], Provider]
ClientFactory = Callable[[ProviderConfig], Upstream]


class _Entry:
    __slots__ = ("client", "config", "idle", "inflight", "provider")

    def __init__(self, config: ProviderConfig, client: Upstream, provider: Provider) -> None:
        self.config = config
        self.client = client
        self.provider = provider
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.inflight += 1
        self.idle.clear()
        try:
            yield
        finally:
            self.inflight -= 1
            if self.inflight == 0:
                self.idle.set()


class _Counted:
    """The provider of one entry, counting each call so its client outlives the call."""

    __slots__ = ("_entry", "config")

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry
        self.config = entry.config

    async def chat(self, req: ChatRequest, model: str) -> ChatResponse:
        with self._entry.hold():
            return await self._entry.provider.chat(req, model)

    def stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        return self._stream(req, model)

    async def _stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        with self._entry.hold():
            events = self._entry.provider.stream(req, model)
            try:
                async for event in events:
                    yield event
            finally:
                close = getattr(events, "aclose", None)
                if close is not None:
                    await close()

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        with self._entry.hold():
            return await self._entry.provider.embed(req, model)

    async def count_tokens(self, req: ChatRequest, model: str) -> int:
        with self._entry.hold():
            return await self._entry.provider.count_tokens(req, model)

    async def list_models(self) -> list[str]:
        with self._entry.hold():
            return await self._entry.provider.list_models()

    def __getattr__(self, name: str) -> Any:
        # Adapter-specific extras stay reachable (uncounted).
        return getattr(self._entry.provider, name)


def default_factories() -> dict[str, ProviderFactory]:
    """The adapter per provider kind (imported here so the registry has no import-time cycle)."""
    from backend.providers.anthropic import AnthropicProvider
    from backend.providers.gemini import GeminiProvider
    from backend.providers.ollama import OllamaProvider
    from backend.providers.openai import make_openai_provider

    return {
        "openai": make_openai_provider,
        "azure": make_openai_provider,
        "anthropic": AnthropicProvider,
        "gemini": GeminiProvider,
        "ollama": OllamaProvider,
    }


class ProviderRegistry:
    def __init__(
        self,
        factories: Mapping[str, ProviderFactory],
        *,
        client_factory: ClientFactory | None = None,
        transport: TransportName = "aiohttp",
        timeout_s: float | None = None,
        connect_timeout_s: float = 10.0,
        close_grace_s: float = 5.0,
        drain_timeout_s: float = 900.0,
    ) -> None:
        self._factories = dict(factories)
        self._client_factory = client_factory or self._default_client
        self._transport = transport
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._close_grace_s = close_grace_s
        self._drain_timeout_s = drain_timeout_s
        self._entries: dict[str, _Entry] = {}
        self._disabled: frozenset[str] = frozenset()
        self._errors: dict[str, str] = {}
        #: (provider, message) of configuration problems already logged.
        self._warned: set[tuple[str, str]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def _default_client(self, config: ProviderConfig) -> Upstream:
        return make_http_client(
            config.base_url,
            headers=dict(config.extra_headers) or None,
            timeout_s=self._timeout_s if self._timeout_s is not None else config.timeout_s,
            connect_timeout_s=self._connect_timeout_s,
            transport=self._transport,
        )

    # -- reading -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Providers that can serve requests now."""
        return sorted(self._entries)

    def configured(self) -> dict[str, ProviderConfig]:
        """Config of every provider that can serve requests now, by name."""
        return {name: entry.config for name, entry in self._entries.items()}

    def errors(self) -> dict[str, str]:
        """Why each broken provider is unavailable (safe to show: never contains a secret)."""
        return dict(self._errors)

    def config(self, name: str) -> ProviderConfig:
        return self._lookup(name).config

    def get(self, name: str) -> Provider:
        """The current adapter of ``name`` (calls on it are counted, see the module doc).

        Raises ``NotFound`` for a name no one configured or declared, ``ProviderNotConfigured``
        (not retryable; fallback skips it without touching a breaker) for a known provider that
        is unconfigured, disabled or broken.
        """
        return _Counted(self._lookup(name))

    def require(self, name: str) -> None:
        """Raise what ``get(name)`` would raise, without handing out an adapter."""
        self._lookup(name)

    @contextlib.asynccontextmanager
    async def use(self, name: str) -> AsyncIterator[Provider]:
        """Hold ``name``'s current adapter; its client stays open until the block ends."""
        entry = self._lookup(name)
        with entry.hold():
            yield _Counted(entry)

    def _lookup(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        reason = self._unusable(name)
        if reason is None:
            raise NotFound(f"unknown provider {name!r}", code="provider_not_found", retryable=False)
        code, message = reason
        if (name, message) not in self._warned:
            # Once per cause: the operator must hear of it, but not once per request.
            self._warned.add((name, message))
            log.warning("%s (requests for its models are refused with %s)", message, code)
        raise ProviderNotConfigured(message, code=code)

    def _unusable(self, name: str) -> tuple[str, str] | None:
        """(code, message) saying why a known provider cannot serve; ``None`` if unknown."""
        if name in self._errors:
            return "provider_misconfigured", f"provider {name!r} is unusable: {self._errors[name]}"
        if name in self._disabled:
            return "provider_disabled", f"provider {name!r} is disabled by an administrator"
        default = DEFAULTS.get(name)
        if default is not None:
            var = default.env.get("api_key") or default.env.get("base_url", "")
            return (
                "provider_not_configured",
                f"provider {name!r} is not configured: set {var} in the gateway's environment "
                "or add its credential in the dashboard's provider credentials",
            )
        return None

    def _reason_text(self, name: str) -> str | None:
        if name in self._entries:
            return None
        reason = self._unusable(name)
        return reason[1] if reason else None

    # -- changing ------------------------------------------------------------------------------

    async def apply(
        self, configs: Mapping[str, ProviderConfig], errors: Mapping[str, str] | None = None
    ) -> set[str]:
        """Make ``configs`` current; returns the names whose adapter was built, changed or removed.

        Unchanged providers keep their client and adapter. Providers named in ``errors`` (from
        ``load_provider_configs``) are removed and report that reason.
        """
        async with self._lock:
            errors = dict(errors or {})
            new_entries: dict[str, _Entry] = {}
            disabled: set[str] = set()
            built: list[_Entry] = []
            for name, cfg in configs.items():
                if name in errors:
                    continue
                if not cfg.enabled:
                    disabled.add(name)
                    continue
                old = self._entries.get(name)
                if old is not None and old.config == cfg:
                    new_entries[name] = old
                    continue
                entry, reason = await self._build(cfg)
                if entry is None:
                    errors[name] = reason
                    continue
                new_entries[name] = entry
                built.append(entry)

            retired = [e for n, e in self._entries.items() if new_entries.get(n) is not e]
            changed = {e.config.name for e in retired} | {e.config.name for e in built}
            # The swap: one assignment, so readers see either the old set or the new one.
            self._entries = new_entries
            self._errors = errors
            self._disabled = frozenset(disabled)
            # A cause that changed (or went away) is worth a new warning when it comes back.
            self._warned = {w for w in self._warned if self._reason_text(w[0]) == w[1]}
            for entry in retired:
                self._retire(entry)
            if changed:
                log.info("providers rebuilt: %s", ", ".join(sorted(changed)))
            return changed

    async def _build(self, cfg: ProviderConfig) -> tuple[_Entry | None, str]:
        factory = self._factories.get(cfg.kind)
        if factory is None:
            return None, f"no adapter for provider kind {cfg.kind!r}"
        cfg = dataclasses.replace(cfg, extra_headers=dict(cfg.extra_headers))  # own a copy
        client = self._client_factory(cfg)
        try:
            provider = factory(cfg, client)
        except Exception as exc:
            # The adapter's own message could echo config values; report only the type.
            log.error("building provider %s failed (%s)", cfg.name, type(exc).__name__)
            await self._close_client(client, cfg.name)
            return None, f"adapter for provider {cfg.name!r} failed to start ({type(exc).__name__})"
        return _Entry(cfg, client, provider), ""

    def _retire(self, entry: _Entry) -> None:
        task = asyncio.get_running_loop().create_task(
            self._drain_and_close(entry), name=f"retire-provider-{entry.config.name}"
        )
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _drain_and_close(self, entry: _Entry) -> None:
        deadline = time.monotonic() + self._drain_timeout_s
        try:
            await asyncio.sleep(self._close_grace_s)
            # Only holders from before the swap remain (``use()`` looks the entry up on entry),
            # so ``inflight`` can only fall from here on.
            while entry.inflight and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(entry.idle.wait(), deadline - time.monotonic())
            if entry.inflight:
                log.warning(
                    "provider %s: %d request(s) still on the old client after %.0fs, closing it",
                    entry.config.name,
                    entry.inflight,
                    self._drain_timeout_s,
                )
        finally:
            # Also on cancellation (registry.close()): a retired pool is never leaked.
            await self._close_client(entry.client, entry.config.name)

    @staticmethod
    async def _close_client(client: Upstream, name: str) -> None:
        try:
            await client.aclose()
        except Exception as exc:  # closing must never take the gateway down
            log.warning("closing the HTTP client of %s failed (%s)", name, type(exc).__name__)

    async def wait_retired(self) -> None:
        """Wait until every retired client is closed (tests, orderly shutdown)."""
        while self._retiring:
            await asyncio.gather(*list(self._retiring), return_exceptions=True)

    async def close(self) -> None:
        """Close every client now, current and retiring (the app drains requests before this)."""
        async with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            for task in list(self._retiring):
                task.cancel()
            await asyncio.gather(*list(self._retiring), return_exceptions=True)
            for entry in entries:
                await self._close_client(entry.client, entry.config.name)
