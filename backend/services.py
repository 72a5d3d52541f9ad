"""Wiring: build every long-lived service of a ``Gateway`` from ``Settings``, and close them.

The order matters and is the only place it is written down: bus -> config store -> secret key ->
providers -> router -> budget -> log writer -> caches -> pipeline -> background refreshers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from backend.config import Settings
from backend.data.events import EventBus, LocalBus, RedisBus
from backend.data.log_writer import LogWriter
from backend.gateway import Gateway
from backend.observability.logs import RequestLog
from backend.state.store import ConfigStore

if TYPE_CHECKING:
    from backend.observability.metrics import Metrics

log = logging.getLogger("switchboard")


async def _redis(url: str) -> Any:
    import redis.asyncio as aioredis

    client = aioredis.from_url(
        url, socket_connect_timeout=5, socket_timeout=5, health_check_interval=30
    )
    await client.ping()  # type: ignore[misc]  # redis-py types ping() as sync-or-async
    return client


async def build_gateway(settings: Settings, metrics: Metrics | None = None) -> Gateway:
    """``metrics``: the app's ``Metrics`` (the app factory makes it; one is made when omitted)."""
    from backend.budget import make_budget
    from backend.cache.response_cache import ResponseCache
    from backend.dlp.pool import ScanProcesses
    from backend.dlp.runner import ScanRunner
    from backend.policies.dlp import DlpPolicies
    from backend.policies.pipeline import ChatPipeline
    from backend.providers.credentials import load_provider_configs
    from backend.providers.deployment_limits import LocalWindows, RedisWindows, Windows
    from backend.providers.deployments import load_deployments
    from backend.providers.registry import ProviderRegistry, default_factories
    from backend.routing.router import Router
    from backend.security.crypto import derive_key, load_or_create_secret_key

    redis = await _redis(settings.redis_url) if settings.redis_url else None
    bus: EventBus = (
        RedisBus(redis, prefix=settings.redis_prefix) if redis is not None else LocalBus()
    )
    await bus.start()
    store = ConfigStore(bus)
    await store.start()  # subscribed first: a change committed during the load is not missed
    await store.load_all()
    gw = Gateway(settings=settings, bus=bus, store=store, redis=redis)
    request_lines = settings.request_log
    gw.request_log = RequestLog(
        lines=settings.log_format == "json" if request_lines is None else request_lines
    )
    if metrics is None:
        from backend.observability.metrics_http import create_metrics

        metrics = create_metrics(settings)
    gw.metrics = metrics

    secret = load_or_create_secret_key(settings.data_dir, settings.secret_key, log)
    gw.secret_key = derive_key(secret)

    env = dict(os.environ) | settings.provider_env
    # Deployments' own rpm/tpm windows: shared by every instance through Redis when configured.
    windows: Windows = (
        RedisWindows(redis, settings.redis_prefix) if redis is not None else LocalWindows()
    )
    gw.providers = ProviderRegistry(
        default_factories(),
        transport=settings.transport,
        timeout_s=settings.upstream_timeout_s,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        windows=windows,
        deployment_cooldown_s=settings.circuit_cooldown_s,
    )

    async def reload_providers() -> None:
        key = gw.secret_key or b""
        configs, errors = await load_provider_configs(
            env, key, ollama_base_url=store.settings.ollama_base_url
        )
        deployments, deployment_errors = await load_deployments(env, key, configs, errors)
        await gw.providers.apply(configs, errors, deployments, deployment_errors)

    await reload_providers()
    store.on_reload("credentials", reload_providers)
    store.on_reload("settings", reload_providers)  # the Ollama URL is a gateway setting

    gw.router = Router(
        store,
        clock=gw.clock,
        failure_threshold=settings.circuit_failure_threshold,
        cooldown_s=settings.circuit_cooldown_s,
    )
    # Alerts (backend/alerts): a breaker opening is told to the metrics and the alert watcher.
    from backend.alerts.service import Alerts

    alerts = gw.extras["alerts"] = Alerts(gw, interval_s=settings.alert_interval_s)

    def circuit_changed(provider: str, model: str | None, state: Any) -> None:
        metrics.circuit_changed(provider, model, state)
        alerts.circuit_changed(provider, model, state)

    gw.router.health_registry.on_change = circuit_changed
    store.on_reload("routing", gw.router.refresh_prices)
    await gw.router.start(gw.providers)

    async def refresh_ollama() -> None:
        # A changed Ollama URL is probed at once (bounded by the probe's 2 s timeout), not at
        # the next periodic refresh.
        await gw.router.refresh_ollama()

    store.on_reload("settings", refresh_ollama)

    gw.budget = make_budget(
        redis,
        clock=gw.clock,
        key_prefix=settings.redis_prefix + "budget:",
        timeout_s=settings.budget_timeout_s,
    )
    await gw.budget.load()

    gw.log_writer = LogWriter(
        bus,
        interval=settings.log_flush_interval_s,
        after_flush=gw.budget.flush,
        metrics=metrics,
        last_used_interval_s=settings.key_last_used_interval_s,
    )
    await gw.log_writer.start()

    gw.response_cache = ResponseCache.create(
        settings.redis_url, namespace=settings.redis_prefix + "rc"
    )
    # DLP scans of large bodies run in processes (their own GIL), small scans with custom rules
    # in threads; both bounded, both closed with the gateway (backend/dlp/runner.py).
    scan_threads = ThreadPoolExecutor(settings.dlp_scan_threads, thread_name_prefix="dlp-scan")
    # The scan processes start with the first large scan, not here: idle, they were a third of
    # the gateway's memory (backend/dlp/pool.py).
    scan_processes = None
    if settings.dlp_scan_processes > 0:
        scan_processes = ScanProcesses(settings.dlp_scan_processes)
    scans = ScanRunner(scan_threads, scan_processes, timeout_s=settings.dlp_scan_timeout_s)
    gw.dlp = DlpPolicies(store, scans)
    store.on_reload("dlp", gw.dlp.refresh)
    store.on_reload("tenancy", gw.dlp.refresh)
    gw.pipeline = ChatPipeline(gw)
    alerts.start()  # rule watcher and delivery loop, off the request path
    gw.responses_store = await _responses_store(gw, scans)
    return gw


async def _responses_store(gw: Gateway, scans: Any) -> Any:
    """Stored Responses-API answers: redacted by the caller's DLP policy, written in batches."""
    from backend.responses_store import ResponseStore
    from backend.state.snapshot import Principal

    def redactor_for(principal: Principal) -> Any:
        found = gw.dlp.for_principal(principal)
        return found[1] if found is not None else None

    settings = gw.settings
    responses = ResponseStore(
        bus=gw.bus,
        redis=gw.redis,
        redis_prefix=settings.redis_prefix,
        ttl_s=settings.responses_ttl_s,
        flush_interval_s=settings.log_flush_interval_s,
        sweep_interval_s=settings.responses_sweep_interval_s,
        redactor_for=redactor_for,
        scan=scans.run,
        instance_id=gw.store.instance_id,
        clock=lambda: gw.clock().timestamp(),
    )
    await responses.start()
    return responses


async def close_gateway(gw: Gateway) -> None:
    """Reverse order; the log writer's close flushes every queued row and counter.

    Each step is bounded and logged, so one stuck dependency cannot keep the process from
    exiting and the log says which one it was.
    """
    steps: list[tuple[str, Callable[[], Awaitable[Any]] | None, float]] = [
        ("router", gw.router.close if gw.router is not None else None, 10),
        ("alerts", gw.extras["alerts"].close if "alerts" in gw.extras else None, 10),
        ("config listener", gw.store.close, 10),
        # Before the DLP scanners: saves under way redact their copy with them.
        ("stored responses", gw.responses_store.close if gw.responses_store else None, 45),
        ("log writer", gw.log_writer.close if gw.log_writer is not None else None, 45),
        ("providers", gw.providers.close if gw.providers is not None else None, 10),
        ("response cache", gw.response_cache.close if gw.response_cache else None, 10),
        ("DLP scanners", gw.dlp.scans.close if gw.dlp is not None else None, 10),
        ("event bus", gw.bus.close, 10),
        ("redis", gw.redis.aclose if gw.redis is not None else None, 10),
    ]
    if gw.request_log is not None:
        gw.request_log.close()
    # Last: spans of requests that ended while the rest closed are exported too.
    steps.append(("tracing", gw.tracing.close if gw.tracing is not None else None, 10))
    for name, close, timeout in steps:
        if close is None:
            continue
        started = time.monotonic()
        try:
            await asyncio.wait_for(close(), timeout)
        except TimeoutError:
            log.error("shutdown: closing the %s took over %ss, moving on", name, timeout)
        except Exception:
            log.exception("shutdown: closing the %s failed", name)
        else:
            log.info("shutdown: %s closed in %.2fs", name, time.monotonic() - started)
