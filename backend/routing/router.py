"""Router: the one routing object the pipeline and the admin API hold.

Wiring (the app's lifespan)::

    router = Router(store)              # strategy and routing read from the store on every use
    await router.start(registry)        # provider names + Ollama discovery in the background
    store.on_reload("settings", router.refresh_ollama)   # optional: re-probe on a URL change
    ...
    await router.close()

``Router(store)`` is short for ``Router(strategy=lambda: store.settings.routing_strategy,
routing=lambda: store.routing)``; tests pass getters (or nothing) and fake clocks instead.

Per request::

    tier = headers.get("x-switchboard-tier")
    res = router.resolve(req.model, principal, store.routing, tier=tier)
    candidates = router.order(res.candidates)
    result, model, attempts = await run_with_fallback(candidates, attempt, router_state=router)
    ref = router.parse(model)          # ref.provider, ref.model (the provider's model id)

Everything is in-process and synchronous except ``run_with_fallback``. ``clock`` measures
latency and cooldowns (seconds; ``time.monotonic`` by default); a clock returning ``datetime``
(the gateway's ``utc_now``) is accepted and then also serves as ``wall``. Without a routing
source, the price book follows the ``RoutingConfig`` last passed to ``resolve``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

import httpx

from backend.ir.errors import GatewayError
from backend.pricing import table
from backend.pricing.book import PriceBook
from backend.providers.base import ProviderConfig
from backend.routing import resolve as resolving
from backend.routing.catalog import CatalogEntry, build_catalog
from backend.routing.health import DEFAULT_COOLDOWN_S, DEFAULT_FAILURE_THRESHOLD, HealthRegistry
from backend.routing.ollama_discovery import DEFAULT_INTERVAL_S, DEFAULT_TIMEOUT_S, OllamaDiscovery
from backend.routing.refs import (
    BUILTIN_PROVIDERS,
    ModelRef,
    normalize_ollama_names,
    parse_model_ref,
    ref_of_key,
)
from backend.routing.stats import DEFAULT_EWMA_ALPHA, LatencyStats, RoutingStats
from backend.routing.strategy import normalize_strategy
from backend.routing.strategy import order as order_candidates
from backend.state.snapshot import GatewaySettings, Principal, RoutingConfig

Clock = Callable[[], float] | Callable[[], dt.datetime]


class ConfigSource(Protocol):
    """The parts of ``ConfigStore`` the router reads (current snapshots, never cached here)."""

    @property
    def routing(self) -> RoutingConfig: ...
    @property
    def settings(self) -> GatewaySettings: ...


class ProviderSource(Protocol):
    """The parts of ``ProviderRegistry`` the router reads."""

    def names(self) -> list[str]: ...
    def config(self, name: str) -> ProviderConfig: ...


def _seconds(clock: Clock) -> Callable[[], float]:
    from backend.gateway import utc_now  # here: the gateway module imports the store

    if clock is utc_now:
        # The gateway's own wall clock, read several times per request: the same seconds
        # without building an aware datetime each time.
        return time.time

    def read() -> float:
        value = clock()
        return value.timestamp() if isinstance(value, dt.datetime) else float(value)

    return read


def _strategy_getter(
    store: ConfigSource | None, strategy: Callable[[], str] | str | None
) -> Callable[[], str]:
    if callable(strategy):
        return strategy
    if strategy is None and store is not None:
        return lambda: store.settings.routing_strategy
    name = strategy or "ordered"
    return lambda: name


def _routing_getter(store: ConfigSource) -> Callable[[], RoutingConfig]:
    return lambda: store.routing


#: Consecutive failed discovery probes after which Ollama candidates are skipped.
OLLAMA_DOWN_AFTER = 2


class Router:
    def __init__(
        self,
        store: ConfigSource | None = None,
        *,
        strategy: Callable[[], str] | str | None = None,
        routing: Callable[[], RoutingConfig] | None = None,
        providers: Callable[[], Iterable[str]] | None = None,
        clock: Clock = time.monotonic,
        wall: Clock | None = None,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        provider_failure_threshold: int | None = None,
        ewma_alpha: float = DEFAULT_EWMA_ALPHA,
    ) -> None:
        self._store = store
        self._strategy = _strategy_getter(store, strategy)
        if routing is None and store is not None:
            routing = _routing_getter(store)
        self._routing_getter = routing
        self._last_routing = RoutingConfig()
        self._providers = providers
        self._known: tuple[list[str], frozenset[str]] | None = None
        self._clock = _seconds(clock)
        if wall is None:
            wall = clock if isinstance(clock(), dt.datetime) else time.time
        self._wall = _seconds(wall)
        self._registry: ProviderSource | None = None
        self._discovery: OllamaDiscovery | None = None
        self._http: httpx.AsyncClient | None = None
        self._own_http = False
        self.health_registry = HealthRegistry(
            threshold=failure_threshold,
            cooldown_s=cooldown_s,
            provider_threshold=provider_failure_threshold,
            clock=self._clock,
            wall=self._wall,
        )
        self.stats = RoutingStats(latency=LatencyStats(ewma_alpha))
        self._book: PriceBook | None = None
        self._book_src: object = None
        self._ollama_models: list[str] = []
        self._ollama_set: frozenset[str] = frozenset()
        self._ollama_healthy: bool | None = None
        self._ollama_checked: float | None = None
        self._ollama_since: float | None = None
        self._ollama_failures = 0
        self._ollama_error: str | None = None

    # -- configuration views ---------------------------------------------------------------------

    def routing(self) -> RoutingConfig:
        return self._routing_getter() if self._routing_getter else self._last_routing

    def strategy(self) -> str:
        """The strategy in force now (canonical name)."""
        return normalize_strategy(self._strategy())

    def known_providers(self) -> frozenset[str]:
        extra = list(self._providers()) if self._providers else []
        # Asked several times per request; the set changes only when providers are applied.
        known = self._known
        if known is None or known[0] != extra:
            known = self._known = (list(extra), BUILTIN_PROVIDERS | frozenset(extra))
        return known[1]

    @property
    def prices(self) -> PriceBook:
        """The price book for the current overrides; a new one when the routing snapshot changes."""
        overrides = self.routing().prices
        if self._book is None or self._book_src is not overrides:
            self._book = PriceBook(overrides)
            self._book_src = overrides
        return self._book

    # -- per request -----------------------------------------------------------------------------

    def parse(self, model: str) -> ModelRef:
        """A candidate (or any model name) as provider + the provider's model id."""
        return parse_model_ref(
            model, providers=self.known_providers(), ollama_models=self._ollama_set
        )

    def resolve(
        self,
        requested: str,
        principal: Principal | None,
        routing: RoutingConfig | None = None,
        tier: str | None = None,
    ) -> resolving.Resolution:
        if routing is None:
            routing = self.routing()
        else:
            self._last_routing = routing
        return resolving.resolve(
            requested,
            principal,
            routing,
            tier,
            providers=self.known_providers(),
            ollama_models=self._ollama_set,
        )

    def order(self, candidates: list[str]) -> list[str]:
        """Candidates in the order of the strategy in force *now* (read on every call)."""
        return order_candidates(candidates, self._strategy(), self.stats, self.prices)

    def in_flight(self, model: str) -> contextlib.AbstractContextManager[None]:
        """Count a request on ``model`` while the block runs (hold it for a whole stream)."""
        return self.stats.in_flight.track(model)

    # -- FallbackState (run_with_fallback) ---------------------------------------------------------

    def clock(self) -> float:
        return self._clock()

    def available(self, model: str) -> bool:
        ref = ref_of_key(model)
        if ref.provider == "ollama" and self._ollama_down():
            return False
        return self.health_registry.available(ref.provider, ref.model)

    def acquire(self, model: str) -> bool:
        ref = ref_of_key(model)
        if ref.provider == "ollama" and self._ollama_down():
            return False
        return self.health_registry.acquire(ref.provider, ref.model)

    def _ollama_down(self) -> bool:
        # One failed probe (a busy host, a slow answer) must not block every Ollama request
        # until the next probe: skip Ollama only once consecutive probes confirm it is down.
        return self._ollama_healthy is False and self._ollama_failures >= OLLAMA_DOWN_AFTER

    def record_success(self, model: str, latency_s: float) -> None:
        ref = ref_of_key(model)
        self.health_registry.record_success(ref.provider, ref.model)
        self.stats.latency.observe(model, latency_s)

    def record_failure(self, model: str, error: GatewayError) -> None:
        ref = ref_of_key(model)
        self.health_registry.record_failure(ref.provider, ref.model, error)

    def release(self, model: str) -> None:
        ref = ref_of_key(model)
        self.health_registry.release(ref.provider, ref.model)

    def why_unavailable(self, model: str) -> str:
        """Why ``model`` is skipped now: its open circuit and that circuit's last real cause."""
        ref = ref_of_key(model)
        if ref.provider == "ollama" and self._ollama_down():
            cause = f"; last: {self._ollama_error}" if self._ollama_error else ""
            return (
                f"{model} is unavailable: Ollama failed {self._ollama_failures} discovery probes "
                f"in a row{cause}"
            )
        return self.health_registry.describe(ref.provider, ref.model)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(
        self,
        providers: ProviderSource | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        ollama_interval_s: float = DEFAULT_INTERVAL_S,
        ollama_timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Read provider names from ``providers`` and start Ollama discovery in the background.

        Returns at once (the first probe runs in the background task). The Ollama base URL is
        the registry's ``ollama`` provider's, else the ``ollama_base_url`` setting. Also loads
        the price table, so the first request does not pay for it.
        """
        table.warm()
        if providers is not None:
            self._registry = providers
            if self._providers is None:
                self._providers = providers.names
        self._own_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=ollama_timeout_s)
        self._discovery = OllamaDiscovery(
            self._http,
            self._ollama_base_url,
            self,
            interval_s=ollama_interval_s,
            timeout_s=ollama_timeout_s,
        )
        self._discovery.start()

    async def close(self) -> None:
        if self._discovery is not None:
            await self._discovery.stop()
            self._discovery = None
        if self._http is not None and self._own_http:
            await self._http.aclose()
        self._http = None

    async def refresh_ollama(self) -> list[str]:
        """Probe Ollama now (admin "refresh", or after its URL changed); ``[]`` if not started."""
        if self._discovery is None:
            return []
        return await self._discovery.refresh_now()

    async def refresh_prices(self) -> None:
        """Drop the price book (a new one is built on next use); a ``store.on_reload`` hook."""
        self._book = None

    def _ollama_base_url(self) -> str | None:
        registry = self._registry
        if registry is not None:
            if "ollama" not in registry.names():
                return None
            return registry.config("ollama").base_url
        return self._store.settings.ollama_base_url if self._store is not None else None

    # -- Ollama ----------------------------------------------------------------------------------

    def set_ollama_models(
        self, names: Iterable[str] | None, healthy: bool, error: str | None = None
    ) -> None:
        """Discovery result. ``names=None`` keeps the last known list (Ollama unreachable)."""
        if names is not None:
            self._ollama_models = normalize_ollama_names(list(names))
            self._ollama_set = frozenset(self._ollama_models)
        now = self._wall()
        if healthy != self._ollama_healthy:
            self._ollama_since = now
        self._ollama_healthy = healthy
        self._ollama_checked = now
        self._ollama_failures = 0 if healthy else self._ollama_failures + 1
        self._ollama_error = None if healthy else error

    def reset_ollama(self) -> None:
        """Ollama is not configured: no models, no health state."""
        self._ollama_models = []
        self._ollama_set = frozenset()
        self._ollama_healthy = None
        self._ollama_checked = self._ollama_since = None
        self._ollama_failures = 0
        self._ollama_error = None

    def ollama_models(self) -> list[str]:
        return list(self._ollama_models)

    def ollama_status(self) -> dict[str, Any]:
        """For the admin API: ``healthy`` is ``None`` until the first discovery finished."""
        return {
            "healthy": self._ollama_healthy,
            "models": [f"ollama/{m}" for m in self._ollama_models],
            "checked_at": self._ollama_checked,
            "error": self._ollama_error,
        }

    # -- admin views -----------------------------------------------------------------------------

    def catalog(self, providers_configured: Collection[str]) -> list[CatalogEntry]:
        return build_catalog(
            providers_configured,
            prices=self.prices,
            routing=self.routing(),
            ollama_models=self._ollama_models,
            ollama_healthy=self._ollama_healthy,
            available=lambda ref: self.available(ref.key),
            known_providers=self.known_providers() | frozenset(providers_configured),
        )

    def health(self) -> list[dict[str, Any]]:
        """Breaker rows (``provider``, ``model``, ``state``, ``failures``, ``since``, ``kind``),
        plus Ollama's discovery state as a ``kind: "discovery"`` row once known."""
        rows = self.health_registry.rows()
        if self._ollama_healthy is not None:
            rows.append(
                {
                    "provider": "ollama",
                    "model": None,
                    "state": "up" if self._ollama_healthy else "down",
                    "failures": self._ollama_failures,
                    "since": self._ollama_since,
                    "kind": "discovery",
                    "error": self._ollama_error,
                }
            )
        return rows
