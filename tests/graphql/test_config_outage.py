"""A config change while the event bus is down (issue 13 item 13), through GraphQL.

Instance A's mutation commits, answers without an error and applies on A at once; instance B
(another ``ConfigStore`` on the same bus) gets it when the bus takes publishes again. And an
instance whose subscription comes back after a loss reloads its whole snapshot from the database:
a change whose announcement it missed is applied anyway. A client error report, stored while the
bus is down, does not fail either (only live subscribers miss it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backend.data.models.logs import ErrorReport
from backend.data.models.routing import ModelAlias
from backend.gateway import Gateway
from backend.state.store import ConfigStore
from tests.graphql.harness import Env, World, build_app
from tests.state.flaky_bus import FlakyBus

DEADLINE_S = 30.0
CREATE = """mutation($a: String!) { createModelAlias(input: {requestedModel: $a,
  targetModel: "openai/gpt-4o-mini"}) { id requestedModel } }"""


async def until(check: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def bus() -> FlakyBus:
    return FlakyBus()


@pytest.fixture
async def instance_b(env: Env, world: World, bus: FlakyBus) -> AsyncIterator[ConfigStore]:
    store = ConfigStore(bus)
    await store.start()
    await store.load_all()
    try:
        yield store
    finally:
        await store.close()


async def test_a_change_made_while_the_bus_is_down_commits_and_reaches_b(
    env: Env, world: World, bus: FlakyBus, instance_b: ConfigStore
) -> None:
    store_a = ConfigStore(bus)
    await store_a.start()
    await store_a.load_all()
    gw_a = Gateway(settings=env.gw.settings, bus=bus, store=store_a, clock=env.clock)
    gw_a.secret_key = env.gw.secret_key
    try:
        transport = httpx.ASGITransport(app=build_app(gw_a))
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            bus.down = True
            resp = await client.post(
                "/graphql",
                json={"query": CREATE, "variables": {"a": "outage-alias"}},
                headers={"Authorization": f"Bearer {world.token('super')}"},
            )
        body = resp.json()
        assert resp.status_code == 200 and not body.get("errors"), body
        assert body["data"]["createModelAlias"]["requestedModel"] == "outage-alias"
        assert await ModelAlias.exists(requested_model="outage-alias")
        assert store_a.routing.global_aliases["outage-alias"] == "openai/gpt-4o-mini"  # A: at once
        assert bus.refused >= 1 and store_a.announcer.pending == ("routing",)
        assert "outage-alias" not in instance_b.routing.global_aliases  # B could not be told

        bus.down = False
        await until(
            lambda: "outage-alias" in instance_b.routing.global_aliases, "B to get the alias"
        )
        assert not store_a.announcer.pending
    finally:
        await store_a.close()


async def test_b_reloads_everything_when_its_subscription_comes_back(
    env: Env, world: World, bus: FlakyBus, instance_b: ConfigStore
) -> None:
    # Committed while B's subscription was lost: B never sees the announcement.
    await ModelAlias.create(requested_model="missed-alias", target_model="openai/gpt-4o")
    await ModelAlias.create(
        requested_model="missed-org-alias", target_model="openai/gpt-4o", organization=world.org_a
    )
    assert "missed-alias" not in instance_b.routing.global_aliases

    bus._resubscribed()  # what RedisBus does once Redis confirms its subscription again
    await until(
        lambda: "missed-alias" in instance_b.routing.global_aliases, "B to reload its snapshot"
    )
    assert instance_b.routing.org_aliases[world.org_a.id] == {"missed-org-alias": "openai/gpt-4o"}


async def test_an_error_report_is_stored_while_the_bus_is_down(
    env: Env, world: World, bus: FlakyBus
) -> None:
    gw = Gateway(settings=env.gw.settings, bus=bus, store=ConfigStore(bus), clock=env.clock)
    transport = httpx.ASGITransport(app=build_app(gw))
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        bus.down = True
        resp = await client.post(
            "/graphql",
            json={
                "query": 'mutation { reportError(input: {type: "crash", error: "boom"}) { id } }'
            },
            headers={"Authorization": f"Bearer {world.token('member_a')}"},
        )
    body = resp.json()
    assert resp.status_code == 200 and not body.get("errors"), body
    assert await ErrorReport.exists(id=body["data"]["reportError"]["id"], error="boom")
    assert bus.refused == 1  # the live event was tried, and its failure did not fail the report
