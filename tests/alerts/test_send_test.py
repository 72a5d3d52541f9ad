"""'Send test' against a delivery loop that polls all the time (a real database and receiver).

The race this guards: the test row used to be stored due at once, so the instance's own delivery
loop could claim it between ``fire`` and ``send_test``'s attempt; ``send_test`` then answered a
row still pending with no error, and the dashboard said "failed: None" for an alert that was in
fact being delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace

import httpx
import pytest

from backend.alerts import messages
from backend.alerts.deliveries import LEASE_S, Deliveries
from backend.alerts.service import Alerts
from backend.alerts.watch import fire
from backend.data.models.alerts import AlertChannel, AlertDelivery
from tests.dbutil import initialised_database
from tests.e2e.alert_receivers import WebhookReceiver

SECRET_KEY = b"k" * 32
ROUNDS = 25


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with initialised_database(tmp_path_factory.mktemp("alerts")) as url:
        yield url


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver().start()
    yield hooks
    hooks.stop()


@pytest.fixture
async def channel(database: str, receiver: WebhookReceiver) -> AsyncIterator[AlertChannel]:
    receiver.hooks.clear()
    await AlertDelivery.all().delete()
    await AlertChannel.all().delete()
    yield await AlertChannel.create(name="ops", kind="webhook", url=f"{receiver.url}/hook")


def _gateway() -> SimpleNamespace:
    """What ``Alerts`` reads of the gateway: the secrets key and the clock."""
    return SimpleNamespace(secret_key=SECRET_KEY, clock=lambda: dt.datetime.now(dt.UTC))


async def test_send_test_answers_its_own_outcome_while_the_loop_polls(
    channel: AlertChannel, receiver: WebhookReceiver
) -> None:
    alerts = Alerts(_gateway())
    alerts.deliveries = Deliveries(SECRET_KEY, alerts._http, poll_s=0)  # polls without pause
    loop = asyncio.create_task(alerts.deliveries.run())
    try:
        answers = [await alerts.send_test(channel) for _ in range(ROUNDS)]
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await alerts.close()
    assert [(a.status, a.attempts, a.last_error) for a in answers] == [("sent", 1, None)] * ROUNDS
    assert len(receiver.hooks) == ROUNDS  # each sent once: the loop took none of them as well
    stored = await AlertDelivery.all().values_list("status", "attempts")
    assert sorted(stored) == [("sent", 1)] * ROUNDS


async def test_an_unattempted_test_row_is_delivered_by_a_loop_after_its_lease(
    channel: AlertChannel, receiver: WebhookReceiver
) -> None:
    """An instance that dies between storing the row and attempting it loses no alert."""
    now = dt.datetime.now(dt.UTC)
    await fire(messages.test_alert("ops", "n1"), [channel], due=now + dt.timedelta(seconds=LEASE_S))
    async with httpx.AsyncClient() as http:
        early = Deliveries(SECRET_KEY, http, clock=lambda: now + dt.timedelta(seconds=1))
        assert await early.process_due() == 0  # leased to the instance that stored it
        late = Deliveries(SECRET_KEY, http, clock=lambda: now + dt.timedelta(seconds=LEASE_S + 1))
        assert await late.process_due() == 1
    row = await AlertDelivery.get(dedupe_key="test:n1")
    assert (row.status, row.attempts) == ("sent", 1)
    assert [h.path for h in receiver.hooks] == ["/hook"]
