"""The alerts service of one gateway instance: the rule watcher and the delivery loop.

Wiring (``services.build_gateway``)::

    alerts = Alerts(gw, interval_s=settings.alert_interval_s)
    registry.on_change = fan_out(metrics.circuit_changed, alerts.circuit_changed)
    alerts.start()
    ...
    await alerts.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from typing import Any

import httpx

from backend.alerts import messages
from backend.alerts.deliveries import LEASE_S, Deliveries
from backend.alerts.watch import AlertWatcher, fire
from backend.data.models.alerts import AlertChannel, AlertDelivery

WEBHOOK_TIMEOUT_S = 10.0


class Alerts:
    def __init__(self, gateway: Any, *, interval_s: float = 10.0) -> None:
        self._http = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False)
        self.deliveries = Deliveries(gateway.secret_key or b"", self._http)
        self.watcher = AlertWatcher(gateway, self.deliveries.kick, interval_s=interval_s)
        self._tasks: list[asyncio.Task[None]] = []

    def circuit_changed(self, provider: str, model: str | None, state: str) -> None:
        self.watcher.circuit_changed(provider, model, state)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.watcher.run(), name="alert-watcher"),
            asyncio.create_task(self.deliveries.run(), name="alert-deliveries"),
        ]

    async def send_test(self, channel: AlertChannel) -> AlertDelivery:
        """A test alert to ``channel``: recorded like any other, first attempt made now.

        The row is stored leased (due only after ``LEASE_S``), so that this attempt, not a
        delivery loop that happened to poll in between, is the one that claims it: the answer is
        then the outcome of the send, never a row still pending. Should this instance die before
        attempting, the row becomes due when the lease ends and a loop delivers it.
        """
        alert = messages.test_alert(channel.name, uuid.uuid4().hex)
        lease_end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=LEASE_S)
        await fire(alert, [channel], due=lease_end)
        row = await AlertDelivery.get(dedupe_key=alert.dedupe_key, channel_id=channel.id)
        return await self.deliveries.attempt(row)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._http.aclose()
