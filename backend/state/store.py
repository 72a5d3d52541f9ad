"""ConfigStore: loads each config domain from the database and swaps it in on change events.

Admin mutations call ``changed(domain)``: this instance reloads the domain at once, then
announces ``{"domain": ...}`` on the ``config`` channel of the event bus (``Announcer``: retried in
the background while the bus is down, never failing the committed change). Every other instance
reloads that domain (one query batch, off the request path), and reloads its whole snapshot when
its subscription comes back after a loss, since it may have missed announcements meanwhile.
Readers use the current attribute value and never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from backend.data.events import EventBus
from backend.data.models.dlp import DlpPolicy
from backend.data.models.keys import ApiKey
from backend.data.models.routing import AgentConfig, FallbackChain, ModelAlias, ModelPrice
from backend.data.models.settings import Setting, UserFeature
from backend.data.models.tenancy import App, Organization, User
from backend.state.announce import Announcer
from backend.state.snapshot import (
    AgentInfo,
    AppInfo,
    DlpPolicyInfo,
    GatewaySettings,
    KeyInfo,
    Keys,
    Limits,
    OrgInfo,
    PriceOverride,
    RoutingConfig,
    Tenancy,
    UserInfo,
)

log = logging.getLogger("switchboard.config")

DOMAINS = ("tenancy", "keys", "routing", "settings", "dlp", "credentials")


def limits_of(row: Any, *, cap: bool = False) -> Limits:
    """The ``Limits`` of an organization, user, app or key row; ``cap``: an app or key, whose
    spend cap lives here (users and organizations keep theirs in their own fields)."""
    allowed = row.allowed_models
    return Limits(
        rpm=row.rate_limit_rpm,
        tpm=row.rate_limit_tpm,
        allowed_models=None if allowed is None else tuple(str(m) for m in allowed),
        spend_cap_usd=row.spend_cap_usd if cap else None,
        cap_period=row.cap_period if cap else "monthly",
    )


async def load_tenancy() -> Tenancy:
    orgs = {
        o.id: OrgInfo(
            o.id,
            o.name,
            o.slug,
            o.spend_cap_usd,
            o.cap_period,
            o.rollover,
            o.dlp_enabled,
            limits_of(o),
        )
        for o in await Organization.all()
    }
    users = {
        u.id: UserInfo(
            u.id,
            u.name,
            u.email,
            u.status,
            u.role,
            u.weekly_cap_usd,
            u.organization_id,  # type: ignore[attr-defined]
            limits_of(u),
        )
        for u in await User.all()
    }
    apps = {
        a.id: AppInfo(
            a.id,
            a.name,
            a.slug,
            a.active,
            a.dlp_enabled,
            a.organization_id,  # type: ignore[attr-defined]
            limits_of(a, cap=True),
        )
        for a in await App.all()
    }
    features: dict[int, set[str]] = {}
    for f in await UserFeature.filter(enabled=True):
        features.setdefault(f.user_id, set()).add(f.feature)  # type: ignore[attr-defined]
    return Tenancy(orgs, users, apps, {k: frozenset(v) for k, v in features.items()})


async def load_keys() -> Keys:
    return Keys(
        {
            k.key_hash: KeyInfo(
                k.id,
                k.prefix,
                k.user_id,  # type: ignore[attr-defined]
                k.app_id,  # type: ignore[attr-defined]
                k.rate_limit_rpm,
                k.expires_at,
                k.revoked_at is not None,
                limits_of(k, cap=True),
                k.lineage_id,
            )
            for k in await ApiKey.all()
        }
    )


async def load_routing() -> RoutingConfig:
    global_aliases: dict[str, str] = {}
    org_aliases: dict[int, dict[str, str]] = {}
    for a in await ModelAlias.all():
        org_id = a.organization_id  # type: ignore[attr-defined]
        if org_id is None:
            global_aliases[a.requested_model] = a.target_model
        else:
            org_aliases.setdefault(org_id, {})[a.requested_model] = a.target_model
    agents = {
        a.agent_id: AgentInfo(
            a.agent_id, a.name, a.role, a.normal_model, a.heavy_model, a.max_model
        )
        for a in await AgentConfig.all()
    }
    chains = {c.primary_model: tuple(c.chain) for c in await FallbackChain.all()}
    prices = {
        p.model: PriceOverride(
            p.input_per_mtok, p.output_per_mtok, p.cached_per_mtok, p.context_window
        )
        for p in await ModelPrice.all()
    }
    return RoutingConfig(global_aliases, org_aliases, agents, chains, prices)


async def load_settings() -> GatewaySettings:
    raw: dict[str, Any] = {s.key: s.value for s in await Setting.all()}
    return GatewaySettings(
        routing_strategy=str(raw.get("routing_strategy", "ordered")),
        ollama_base_url=raw.get("ollama_base_url") or None,
        offered_features=frozenset(raw.get("offered_features", [])),
        response_cache_ttl_s=int(raw.get("response_cache_ttl_s", 300)),
        raw=raw,
    )


async def load_dlp() -> dict[tuple[str, int], DlpPolicyInfo]:
    out: dict[tuple[str, int], DlpPolicyInfo] = {}
    for p in await DlpPolicy.all():
        info = DlpPolicyInfo(
            p.id,
            p.scope,
            p.organization_id,  # type: ignore[attr-defined]
            p.app_id,  # type: ignore[attr-defined]
            tuple(p.rules),
            tuple((r["name"], r["pattern"]) for r in p.custom_rules),
        )
        owner = info.org_id if p.scope == "org" else info.app_id
        if owner is not None:
            out[(p.scope, owner)] = info
    return out


class ConfigStore:
    """The current snapshot of every config domain; hooks run after a domain reloads."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.tenancy = Tenancy()
        self.keys = Keys()
        self.routing = RoutingConfig()
        self.settings = GatewaySettings()
        self.dlp: dict[tuple[str, int], DlpPolicyInfo] = {}
        self._hooks: dict[str, list[Callable[[], Awaitable[None]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        #: Events this instance published itself are skipped: it reloaded before publishing.
        self.instance_id = uuid.uuid4().hex
        self._last_key_refresh = 0.0
        self.announcer = Announcer(bus, self.instance_id)
        # One reload of a domain at a time: two overlapping reloads (a mutation here, an event,
        # a resync) could otherwise finish in the wrong order and leave the older read in place.
        # Hooks must therefore not reload their own domain.
        self._locks = {domain: asyncio.Lock() for domain in DOMAINS}
        self._resync = asyncio.Event()
        self._resync_task: asyncio.Task[None] | None = None

    async def refresh_keys_throttled(self, min_interval_s: float = 1.0) -> bool:
        """Reload keys and tenancy unless that was done less than ``min_interval_s`` ago."""
        now = time.monotonic()
        if now - self._last_key_refresh < min_interval_s:
            return False
        self._last_key_refresh = now
        try:
            await self.reload("tenancy")
            await self.reload("keys")
        except Exception:
            log.warning("on-demand key reload failed, keeping the cached keys", exc_info=True)
            return False
        return True

    def on_reload(self, domain: str, hook: Callable[[], Awaitable[None]]) -> None:
        self._hooks.setdefault(domain, []).append(hook)

    async def load_all(self) -> None:
        for domain in DOMAINS:
            await self.reload(domain)

    async def changed(self, domain: str) -> None:
        """A committed admin change: reload ``domain`` here, then announce it to the others.

        The announcement never raises: the change is in the database, and a bus outage only
        delays the other instances (``Announcer`` retries; they also resync on reconnect).
        """
        await self.reload(domain)
        await self.announcer.announce(domain)

    async def reload(self, domain: str) -> None:
        async with self._locks.get(domain) or asyncio.Lock():
            if domain == "tenancy":
                self.tenancy = await load_tenancy()
            elif domain == "keys":
                self.keys = await load_keys()
            elif domain == "routing":
                self.routing = await load_routing()
            elif domain == "settings":
                self.settings = await load_settings()
            elif domain == "dlp":
                self.dlp = await load_dlp()
            # Under the lock too, so what hooks derive (providers, prices) follows the same order.
            for hook in self._hooks.get(domain, ()):
                await hook()

    async def start(self) -> None:
        """Subscribe to config events; call ``load_all`` after this, so no change falls between."""
        self._bus.on_resubscribe(self._resync.set)
        self._resync_task = asyncio.create_task(self._resync_loop(), name="config-resync")
        self._task = asyncio.create_task(self._listen(), name="config-listener")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def close(self) -> None:
        for task in (self._task, self._resync_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.announcer.close()

    async def _resync_loop(self, first_delay_s: float = 0.5, max_delay_s: float = 10.0) -> None:
        """Reload every domain each time the bus subscription comes back after a loss."""
        delay = first_delay_s
        while True:
            await self._resync.wait()
            self._resync.clear()
            try:
                await self.load_all()
            except Exception:  # the database may be out too: keep the old view, try again
                log.exception("reloading the config after a bus reconnect failed, retrying")
                self._resync.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay_s)
                continue
            delay = first_delay_s
            log.info("config reloaded: the event subscription reconnected (events may be missed)")

    async def _listen(self) -> None:
        async with self._bus.subscribe("config") as events:
            self._ready.set()
            async for event in events:
                domain = event.get("domain")
                if domain not in DOMAINS or event.get("origin") == self.instance_id:
                    continue
                try:
                    await self.reload(domain)
                except Exception:  # a DB hiccup must not kill the listener: keep the old view
                    log.exception("reloading config domain %s failed, keeping previous", domain)
