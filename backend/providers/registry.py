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
from backend.providers.deployment_limits import LocalWindows, RedisWindows, Usage, Windows
from backend.providers.deployment_pool import DeploymentPool, Member
from backend.providers.deployment_share import SharedStatus, StatusShare, combine
from backend.providers.deployment_state import DeploymentState, DeploymentStatus, SmoothWeights
from backend.providers.deployments import DeploymentSpec, DeploymentSpecs
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
        windows: Windows | None = None,
        deployment_cooldown_s: float = 30.0,
        share: StatusShare | None = None,
    ) -> None:
        self._factories = dict(factories)
        self._client_factory = client_factory or self._default_client
        self._transport = transport
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._close_grace_s = close_grace_s
        self._drain_timeout_s = drain_timeout_s
        self._entries: dict[str, _Entry] = {}
        self._names: tuple[dict[str, _Entry], dict[str, DeploymentPool], list[str]] | None = None
        self._disabled: frozenset[str] = frozenset()
        self._errors: dict[str, str] = {}
        #: (provider, message) of configuration problems already logged.
        self._warned: set[tuple[str, str]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        # Deployments (``deployment_pool``): their entries by ``provider/name``, the pool of
        # each provider that has some, and their live state, kept across reloads by key.
        self._windows: Windows = windows or LocalWindows()
        self._deployment_cooldown_s = deployment_cooldown_s
        self._dep_entries: dict[str, _Entry] = {}
        self._pools: dict[str, DeploymentPool] = {}
        self._dep_states: dict[str, DeploymentState] = {}
        self._dep_errors: dict[str, str] = {}
        self._turns = SmoothWeights()
        self._settling: set[asyncio.Task[Any]] = set()
        # Deployment status of every instance for the admin API (``deployment_share``): with
        # Redis windows, through the same Redis.
        if share is None and isinstance(self._windows, RedisWindows):
            share = StatusShare(self._windows.redis, self._windows.prefix)
        self._share = share
        self._sharing: asyncio.Task[None] | None = None

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
        # Asked on every request (the router's known providers); both dicts are replaced, never
        # changed in place, when providers are applied, so their identity keys the answer.
        cached = self._names
        if cached is None or cached[0] is not self._entries or cached[1] is not self._pools:
            names = sorted(set(self._entries) | set(self._pools))
            cached = self._names = (self._entries, self._pools, names)
        return list(cached[2])

    def configured(self) -> dict[str, ProviderConfig]:
        """Config of every provider that can serve requests now, by name."""
        out = {name: entry.config for name, entry in self._entries.items()}
        out.update({name: pool.config for name, pool in self._pools.items()})
        return out

    def errors(self) -> dict[str, str]:
        """Why each broken provider is unavailable (safe to show: never contains a secret)."""
        return dict(self._errors)

    def config(self, name: str) -> ProviderConfig:
        pool = self._pools.get(name)
        return pool.config if pool is not None else self._lookup(name).config

    def get(self, name: str) -> Provider:
        """The current adapter of ``name`` (calls on it are counted, see the module doc).

        Raises ``NotFound`` for a name no one configured or declared, ``ProviderNotConfigured``
        (not retryable; fallback skips it without touching a breaker) for a known provider that
        is unconfigured, disabled or broken. A provider with deployments answers through its
        ``DeploymentPool`` (each call counted on the deployment it went to).
        """
        pool = self._pools.get(name)
        return pool if pool is not None else _Counted(self._lookup(name))

    def require(self, name: str) -> None:
        """Raise what ``get(name)`` would raise, without handing out an adapter."""
        if name not in self._pools:
            self._lookup(name)

    def deployment_status(self, key: str) -> DeploymentStatus | None:
        """Load and health of deployment ``provider/name`` in this instance (None: not seen)."""
        state = self._dep_states.get(key)
        return state.status() if state is not None else None

    async def shared_statuses(self) -> dict[str, SharedStatus]:
        """Each deployment's status over every instance reporting (``deployment_share``); this
        instance's alone without Redis. Keyed ``provider/name``."""
        local, windows = await self._collect()
        others = await self._share.others() if self._share is not None else []
        return combine(local, windows, others)

    async def _collect(self) -> tuple[dict[str, DeploymentStatus], dict[str, Usage]]:
        states = dict(self._dep_states)
        windows = {k: await self._windows.usage(k, shared=False) for k in states}
        return {k: s.status() for k, s in states.items()}, windows

    def deployment_errors(self) -> dict[str, str]:
        """Why each broken deployment is left out, by ``provider/name`` (never a secret)."""
        return dict(self._dep_errors)

    @property
    def windows(self) -> Windows:
        """The deployments' rpm/tpm windows (shared through Redis when configured)."""
        return self._windows

    @contextlib.asynccontextmanager
    async def use(self, name: str) -> AsyncIterator[Provider]:
        """Hold ``name``'s current adapter; its client stays open until the block ends."""
        pool = self._pools.get(name)
        if pool is not None:
            yield pool  # each call holds the entry of the deployment it goes to
            return
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
        if name in self._entries or name in self._pools:
            return None
        reason = self._unusable(name)
        return reason[1] if reason else None

    # -- changing ------------------------------------------------------------------------------

    async def apply(
        self,
        configs: Mapping[str, ProviderConfig],
        errors: Mapping[str, str] | None = None,
        deployments: DeploymentSpecs | None = None,
        deployment_errors: Mapping[str, str] | None = None,
    ) -> set[str]:
        """Make ``configs`` current; returns the names whose adapter was built, changed or removed.

        Unchanged providers keep their client and adapter. Providers named in ``errors`` (from
        ``load_provider_configs``) are removed and report that reason. ``deployments`` (from
        ``load_deployments``) give a provider a ``DeploymentPool``; each deployment keeps its
        client while its connection is unchanged, and its live state while it exists.
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

            dep_errors = dict(deployment_errors or {})
            dep_entries, pools, dep_built = await self._build_pools(
                deployments or {}, errors, disabled, new_entries, dep_errors
            )
            built += dep_built
            retired = [e for n, e in self._entries.items() if new_entries.get(n) is not e]
            retired += [e for n, e in self._dep_entries.items() if dep_entries.get(n) is not e]
            changed = {e.config.name for e in retired} | {e.config.name for e in built}
            changed |= set(pools) ^ set(self._pools)
            # The swap: readers see either the old set or the new one (no await in between).
            self._entries = new_entries
            self._dep_entries = dep_entries
            self._pools = pools
            self._dep_errors = dep_errors
            self._errors = errors
            self._disabled = frozenset(disabled)
            # A cause that changed (or went away) is worth a new warning when it comes back.
            self._warned = {w for w in self._warned if self._reason_text(w[0]) == w[1]}
            for entry in retired:
                self._retire(entry)
            if self._share is not None and self._sharing is None and self._dep_states:
                self._sharing = asyncio.get_running_loop().create_task(
                    self._share.run(self._collect), name="deployment-status-share"
                )
            if changed:
                log.info("providers rebuilt: %s", ", ".join(sorted(changed)))
            return changed

    async def _build_pools(
        self,
        deployments: DeploymentSpecs,
        errors: Mapping[str, str],
        disabled: set[str],
        own: Mapping[str, _Entry],
        failures: dict[str, str],
    ) -> tuple[dict[str, _Entry], dict[str, DeploymentPool], list[_Entry]]:
        """Entries and pools of the providers that have deployments (not disabled, not broken);
        a deployment whose adapter fails to start is left out with its reason in ``failures``."""
        entries: dict[str, _Entry] = {}
        pools: dict[str, DeploymentPool] = {}
        built: list[_Entry] = []
        for provider, specs in deployments.items():
            if provider in errors or provider in disabled or not specs:
                continue
            members: list[Member] = []
            for spec in specs:
                entry = self._dep_entries.get(spec.key)
                if entry is None or entry.config != spec.config:
                    entry, reason = await self._build(spec.config)
                    if entry is None:
                        failures[spec.key] = reason
                        continue
                    built.append(entry)
                entries[spec.key] = entry
                members.append(Member(spec, _Counted(entry), self._dep_state(spec)))
            if members:
                own_entry = own.get(provider)
                pools[provider] = DeploymentPool(
                    provider,
                    own_entry.config if own_entry is not None else specs[0].config,
                    members,
                    own=_Counted(own_entry) if own_entry is not None else None,
                    windows=self._windows,
                    turns=self._turns,
                    background=self._settling,
                )
        live = set(entries)
        self._dep_states = {k: s for k, s in self._dep_states.items() if k in live}
        return entries, pools, built

    def _dep_state(self, spec: DeploymentSpec) -> DeploymentState:
        state = self._dep_states.get(spec.key)
        if state is None:
            state = self._dep_states[spec.key] = DeploymentState(
                cooldown_s=self._deployment_cooldown_s
            )
        return state

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

    async def wait_settled(self) -> None:
        """Wait until the deployments' token corrections under way are written (tests)."""
        while self._settling:
            await asyncio.gather(*list(self._settling), return_exceptions=True)

    async def wait_retired(self) -> None:
        """Wait until every retired client is closed (tests, orderly shutdown)."""
        while self._retiring:
            await asyncio.gather(*list(self._retiring), return_exceptions=True)

    async def close(self) -> None:
        """Close every client now, current and retiring (the app drains requests before this)."""
        if self._sharing is not None:
            self._sharing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sharing
            self._sharing = None
            if self._share is not None:
                await self._share.withdraw()
        async with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            entries += list(self._dep_entries.values())
            self._dep_entries, self._pools = {}, {}
            if self._settling:
                await asyncio.wait(list(self._settling), timeout=2)
            for task in list(self._retiring):
                task.cancel()
            await asyncio.gather(*list(self._retiring), return_exceptions=True)
            for entry in entries:
                await self._close_client(entry.client, entry.config.name)
