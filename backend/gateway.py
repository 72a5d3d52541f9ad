"""The Gateway container: every long-lived dependency, created and closed by the app lifespan.

Nothing here is global: ``create_app`` builds one ``Gateway`` and hands it to the proxy endpoints
(``request.app.state.gateway``) and to the GraphQL context (``info.context.gateway``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.config import Settings
from backend.data.events import EventBus
from backend.state.store import ConfigStore

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Gateway:
    settings: Settings
    bus: EventBus
    store: ConfigStore
    clock: Clock = utc_now
    #: ``redis.asyncio.Redis`` when REDIS_URL is set.
    redis: Any = None
    #: Filled by the app factory; typed loosely here to keep this module import-light.
    providers: Any = None
    log_writer: Any = None
    budget: Any = None
    prices: Any = None
    router: Any = None
    response_cache: Any = None
    dlp: Any = None
    pipeline: Any = None
    #: ``responses_store.ResponseStore``: stored Responses-API answers (``previous_response_id``).
    responses_store: Any = None
    #: ``observability.tracing.Tracing`` when traces are on, else None (the hot path checks).
    tracing: Any = None
    #: ``observability.logs.RequestLog``: request lines and refusals once per cause.
    request_log: Any = None
    #: ``backend.observability.metrics.Metrics`` (made by the app factory).
    metrics: Any = None
    secret_key: bytes | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    async def config_changed(self, domain: str) -> None:
        """Reload a config domain here at once, then tell every other instance to reload it
        (never failing the committed change when the bus is down: ``ConfigStore.changed``)."""
        await self.store.changed(domain)
