"""Evaluating the alert rules, every ``SWITCHBOARD_ALERT_INTERVAL`` seconds on every instance.

- ``cap``: every spend cap in the config snapshot (users' weekly caps, organizations', apps' and
  keys' caps; filtered by the rule's ``scope_kind``/``scope_id``) is compared with what the budget
  counted this period (``budget.spent``: Redis when configured, so every instance's spend). Each
  threshold reached fires once per cap and period.
- ``circuit``: a breaker of the router that opened (reported by ``circuit_changed`` as it
  happens, and any still open) fires once per provider/model per ``repeat_s`` period.
- ``error_rate``: failed requests (status >= 500, failed attempts a fallback replaced included)
  over all requests per provider in the last ``window_s``, from the request log (every
  instance's), once at least ``min_requests``; fires once per provider per ``repeat_s`` period.

Firing is inserting one ``AlertDelivery`` per channel; ``(dedupe_key, channel_id)`` is unique, so
the first instance to insert wins and the others' inserts fail quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count

from backend.alerts import messages
from backend.alerts.messages import Alert
from backend.budget.caps import Cap, limit_for
from backend.budget.periods import next_period_start, period_kind, period_start
from backend.budget.periods import previous_period_start as previous_start
from backend.data.models.alerts import AlertChannel, AlertDelivery, AlertRule
from backend.data.models.logs import RequestLog
from backend.state.snapshot import Keys, Tenancy

log = logging.getLogger("switchboard.alerts")

#: Openings remembered between two evaluations (a burst of breakers cannot grow it unbounded).
_MAX_OPENINGS = 1000


def all_caps(tenancy: Tenancy, keys: Keys) -> Iterator[Cap]:
    """Every spend cap the configuration holds now."""
    for user in tenancy.users.values():
        if user.weekly_cap_usd is not None:
            yield Cap(("user", user.id), "weekly", user.weekly_cap_usd, False, user.email)
    for org in tenancy.orgs.values():
        if org.spend_cap_usd is not None:
            period = period_kind(org.cap_period)
            yield Cap(("org", org.id), period, org.spend_cap_usd, org.rollover, org.name)
    for app in tenancy.apps.values():
        limits = getattr(app, "limits", None)
        if limits is not None and limits.spend_cap_usd is not None:
            period = period_kind(limits.cap_period)
            yield Cap(("app", app.id), period, limits.spend_cap_usd, False, app.slug)
    # Keys of one rotation chain share a counter (an old key in its grace period and its
    # successor): one cap for the chain, named after its newest key.
    newest: dict[int, Any] = {}
    for key in keys.by_hash.values():
        limits = getattr(key, "limits", None)
        if not key.revoked and limits is not None and limits.spend_cap_usd is not None:
            seen = newest.get(key.counter_id)
            if seen is None or key.id > seen.id:
                newest[key.counter_id] = key
    for counter_id, key in newest.items():
        period = period_kind(key.limits.cap_period)
        yield Cap(("key", counter_id), period, key.limits.spend_cap_usd, False, key.prefix)


def key_chains(keys: Keys) -> dict[int, set[int]]:
    """Counter id of a key chain -> ids of its keys (a rule naming any of them watches it)."""
    out: dict[int, set[int]] = {}
    for key in keys.by_hash.values():
        out.setdefault(key.counter_id, {key.counter_id}).add(key.id)
    return out


class AlertWatcher:
    def __init__(
        self,
        gateway: Any,
        on_fired: Callable[[], None],
        *,
        interval_s: float = 10.0,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._gw = gateway
        self._on_fired = on_fired
        self._interval_s = interval_s
        self._clock = clock or gateway.clock
        #: (provider, model or None) of breakers that opened since the last evaluation.
        self._opened: list[tuple[str, str | None]] = []
        self._wake = asyncio.Event()
        self._failing = False

    # -- hooks -----------------------------------------------------------------------------------
    def circuit_changed(self, provider: str, model: str | None, state: str) -> None:
        """The router's breaker hook: remember an opening (no I/O here: it is the hot path)."""
        if state == "open" and len(self._opened) < _MAX_OPENINGS:
            self._opened.append((provider, model))
            self._wake.set()

    # -- loop ------------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
            try:
                await self.evaluate()
            except Exception:  # the database or Redis may be away: try again next time
                # Once per outage, not once per interval.
                if not self._failing:
                    log.exception("evaluating alert rules failed, retrying")
                self._failing = True
            else:
                if self._failing:
                    log.info("evaluating alert rules works again")
                self._failing = False

    async def evaluate(self) -> int:
        """Evaluate every enabled rule once; returns how many deliveries were created."""
        now = self._clock()
        opened, self._opened = self._opened, []
        rules = await AlertRule.filter(enabled=True)
        if not rules:
            return 0
        channels = {c.name: c for c in await AlertChannel.filter(enabled=True)}
        fired = 0
        for rule in rules:
            targets = [channels[n] for n in rule.channels or [] if n in channels]
            if not targets:
                continue
            for alert in await self._alerts(rule, now, opened):
                fired += await fire(alert, targets)
        if fired:
            self._on_fired()
        return fired

    async def _alerts(
        self, rule: AlertRule, now: dt.datetime, opened: list[tuple[str, str | None]]
    ) -> list[Alert]:
        if rule.kind == "cap":
            return await self._caps(rule, now)
        period = math.floor(now.timestamp() / max(60, rule.repeat_s))
        if rule.kind == "circuit":
            return self._circuits(rule, opened, period)
        if rule.kind == "error_rate":
            return await self._error_rates(rule, now, period)
        return []

    async def _caps(self, rule: AlertRule, now: dt.datetime) -> list[Alert]:
        out: list[Alert] = []
        thresholds = sorted({int(t) for t in rule.thresholds or []})
        if not thresholds:
            return out
        budget = self._gw.budget
        keys = self._gw.store.keys
        chains = key_chains(keys) if rule.scope_id is not None else {}
        for cap in all_caps(self._gw.store.tenancy, keys):
            if rule.scope_kind and cap.scope[0] != rule.scope_kind:
                continue
            if rule.scope_id is not None and cap.scope[1] != rule.scope_id:
                if cap.scope[0] != "key" or rule.scope_id not in chains.get(cap.scope[1], ()):
                    continue
            start = period_start(cap.period, now)
            previous = Decimal(0)
            if cap.rollover:
                previous = await budget.spent(cap.scope, previous_start(cap.period, now))
            limit = limit_for(cap, previous)
            if limit <= 0:
                continue  # a $0 cap refuses everything: there is nothing to warn about
            spent = await budget.spent(cap.scope, start)
            for threshold in thresholds:
                if spent * 100 >= limit * threshold:
                    out.append(
                        messages.cap_alert(
                            rule_id=rule.id,
                            threshold=threshold,
                            cap_name=cap.describe(),
                            scope=cap.scope,
                            spent=spent,
                            limit=limit,
                            period_start=start,
                            resets_at=next_period_start(cap.period, now),
                        )
                    )
        return out

    def _circuits(
        self, rule: AlertRule, opened: list[tuple[str, str | None]], period: int
    ) -> list[Alert]:
        registry = self._gw.router.health_registry
        subjects = dict.fromkeys(opened)
        for row in registry.rows():
            if row["state"] == "open":
                subjects[(row["provider"], row["model"])] = None
        out = []
        for provider, model in subjects:
            if rule.provider and provider != rule.provider:
                continue
            breaker = (
                registry.provider(provider) if model is None else registry.model(provider, model)
            )
            out.append(
                messages.circuit_alert(
                    rule_id=rule.id,
                    provider=provider,
                    model=model,
                    failures=breaker.failures,
                    last_error=breaker.last_error,
                    period=period,
                )
            )
        return out

    async def _error_rates(self, rule: AlertRule, now: dt.datetime, period: int) -> list[Alert]:
        bound = rule.error_rate_percent
        if bound is None:
            return []
        since = now - dt.timedelta(seconds=max(60, rule.window_s))
        query = RequestLog.filter(created_at__gte=since, provider__isnull=False)
        if rule.provider:
            query = query.filter(provider=rule.provider)
        rows = (
            await query.annotate(n=Count("id"), errors=Count("id", _filter=Q(status__gte=500)))
            .group_by("provider")
            .values("provider", "n", "errors")
        )
        out = []
        for row in rows:
            requests, errors = int(row["n"]), int(row["errors"])
            if requests >= max(1, rule.min_requests) and errors * 100 > bound * requests:
                out.append(
                    messages.error_rate_alert(
                        rule_id=rule.id,
                        provider=str(row["provider"]),
                        errors=errors,
                        requests=requests,
                        bound=bound,
                        window_s=rule.window_s,
                        period=period,
                    )
                )
        return out


async def fire(
    alert: Alert, channels: list[AlertChannel], *, due: dt.datetime | None = None
) -> int:
    """One delivery row per channel, unless this alert already fired there; returns how many.

    ``due`` (default: now) is when a delivery loop may first take the row; a caller that makes
    the first attempt itself passes a lease ahead, so that no loop claims the row before it.
    """
    created = 0
    first_attempt_at = due or dt.datetime.now(dt.UTC)
    for channel in channels:
        try:
            await AlertDelivery.create(
                dedupe_key=alert.dedupe_key[:255],
                rule_id=alert.rule_id,
                channel_id=channel.id,
                kind=alert.kind,
                severity=alert.severity,
                title=alert.title[:300],
                text=alert.text,
                payload=alert.details,
                next_attempt_at=first_attempt_at,
            )
        except IntegrityError:
            continue  # fired already (here or on another instance)
        created += 1
        log.info("alert fired on %s: %s", channel.name, alert.title)
    return created
