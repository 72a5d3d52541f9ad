"""Subscriptions live no longer than their session, over real WebSockets (graphql-transport-ws).

- ``logout`` (and revoking an admin token) closes the sockets opened with that token (4403),
  on every instance (the ``sessions`` event travels through Redis);
- suspending or deleting the user closes their sockets; a ``subscribe`` on a socket whose user
  is gone is refused even when no event said so (the session is re-checked on every subscribe);
- a role change ends the running subscriptions with ``SESSION_CHANGED``; a new one on the same
  socket runs with the new role's scope;
- a session that expires ends its sockets when it expires (and by the periodic re-check).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from backend.config import Settings
from backend.data.events import RedisBus
from backend.data.models.tenancy import User
from backend.gateway import Gateway
from backend.graphql import live_sessions
from backend.security.sessions import SESSION_TTL, create_session, issue_token
from backend.state.store import ConfigStore
from tests.graphql.harness import Env, World, build_app, data, gql
from tests.graphql.test_subscriptions import (
    SUB,
    record,
    recv,
    redis_client,
    send,
    serve,
    subscribe,
    wait_subscribers,
)

LOGS = "subscription { gatewayLogs { requestId organizationId } }"


def log_event(world: World, who: str, org: Any, request_id: str) -> dict[str, Any]:
    return record(world, who, org, request_id).event()


async def assert_revoked(ws: ClientConnection) -> None:
    """The server closes the socket with 4403 (no event slips through before it)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            msg = await recv(ws, timeout=30)
            assert msg["type"] != "next", f"an event reached a revoked session: {msg}"
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        4403,
        "session revoked, expired or suspended",
    )


async def next_request_id(ws: ClientConnection) -> str:
    msg = await recv(ws, timeout=30)
    assert msg["type"] == "next", msg
    return str(msg["payload"]["data"]["gatewayLogs"]["requestId"])


async def test_logout_ends_the_subscriptions_of_that_token(env: Env, world: World) -> None:
    async with serve(env.app) as url:
        session, _ = await create_session(world.users["admin_a"], now=env.clock())
        ws = await subscribe(url, session, LOGS)
        other = await subscribe(url, world.token("admin_a") or "", LOGS)  # another token
        await wait_subscribers(env, "logs", 2)
        await wait_subscribers(env, "sessions", 2)
        await env.bus.publish("logs", log_event(world, "member_a", world.org_a, "before"))
        assert await next_request_id(ws) == "before"
        assert await next_request_id(other) == "before"

        assert data(await gql(env, "mutation { logout }", token=session))["logout"] is True
        await assert_revoked(ws)
        # The user's other token is still good: its subscription carries on.
        await env.bus.publish("logs", log_event(world, "member_a", world.org_a, "after"))
        assert await next_request_id(other) == "after"
        await other.close()


async def test_revoking_an_admin_token_ends_its_subscriptions(env: Env, world: World) -> None:
    made = data(
        await gql(
            env,
            'mutation { createAdminToken(name: "ci") { token adminToken { id } } }',
            token=world.token("admin_a"),
        )
    )["createAdminToken"]
    async with serve(env.app) as url:
        ws = await subscribe(url, made["token"], LOGS)
        await wait_subscribers(env, "sessions", 1)
        q = "mutation($id: Int!) { revokeAdminToken(id: $id) { id } }"
        await gql(env, q, {"id": made["adminToken"]["id"]}, world.token("admin_a"))
        await assert_revoked(ws)


@pytest.mark.parametrize("change", ["suspend", "delete"])
async def test_suspending_or_deleting_the_user_ends_their_subscriptions(
    env: Env, world: World, change: str
) -> None:
    victim = world.users["admin_b"]
    async with serve(env.app) as url:
        ws = await subscribe(url, world.token("admin_b") or "", LOGS)
        await wait_subscribers(env, "config", 1)
        if change == "suspend":
            q = "mutation($id: Int!) { updateUser(id: $id, input: {status: SUSPENDED}) { id } }"
        else:
            q = "mutation($id: Int!) { deleteUser(id: $id) }"
        data(await gql(env, q, {"id": victim.id}, world.token("super")))
        await assert_revoked(ws)


async def test_subscribe_rechecks_the_session(env: Env, world: World) -> None:
    """No event at all (the row vanished behind the gateway's back): the next subscribe is
    refused, and nothing of any organization is delivered on the socket."""
    async with serve(env.app) as url:
        ws = await subscribe(url, world.token("admin_a") or "", LOGS)
        await wait_subscribers(env, "logs", 1)
        await User.filter(id=world.users["admin_a"].id).delete()  # no bus event
        await send(ws, {"id": "2", "type": "subscribe", "payload": {"query": SUB}})
        await env.bus.publish("logs", log_event(world, "member_b", world.org_b, "org-b"))
        await assert_revoked(ws)


async def test_role_change_ends_running_subscriptions(env: Env, world: World) -> None:
    admin = world.users["admin_a"]
    async with serve(env.app) as url:
        ws = await subscribe(url, world.token("admin_a") or "", LOGS)
        await wait_subscribers(env, "logs", 1)
        await env.bus.publish("logs", log_event(world, "member_a", world.org_a, "as-admin"))
        assert await next_request_id(ws) == "as-admin"  # an org_admin sees the org's members

        q = "mutation($id: Int!) { updateUser(id: $id, input: {role: MEMBER}) { role } }"
        assert data(await gql(env, q, {"id": admin.id}, world.token("super")))["updateUser"] == {
            "role": "MEMBER"
        }
        msg = await recv(ws, timeout=30)
        assert msg == {
            "id": "1",
            "type": "error",
            "payload": [
                {
                    "message": "your role or organization changed: subscribe again",
                    "extensions": {"code": "SESSION_CHANGED"},
                }
            ],
        }
        # The socket stays open; a new subscription runs with the member's scope.
        await send(ws, {"id": "2", "type": "subscribe", "payload": {"query": LOGS}})
        await wait_subscribers(env, "logs", 1)
        await env.bus.publish("logs", log_event(world, "member_a", world.org_a, "not-mine"))
        await env.bus.publish("logs", log_event(world, "admin_a", world.org_a, "mine"))
        msg = await recv(ws, timeout=30)
        assert (msg["id"], msg["payload"]["data"]["gatewayLogs"]["requestId"]) == ("2", "mine")
        await ws.close()


async def test_expired_session_is_ended_by_the_periodic_recheck(
    env: Env, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_sessions, "RECHECK_S", 0.05)
    async with serve(env.app) as url:
        session, _ = await create_session(world.users["member_a"], now=env.clock())
        ws = await subscribe(url, session, LOGS)
        await wait_subscribers(env, "logs", 1)
        env.clock.now += SESSION_TTL + dt.timedelta(seconds=1)
        await assert_revoked(ws)


async def test_a_subscription_ends_when_its_session_expires(env: Env, world: World) -> None:
    """At the token's expiry, not at the next 60 s re-check: the watcher wakes when the token
    expires (here the gateway clock passes it; assert_revoked waits at most 30 s)."""
    assert live_sessions.RECHECK_S >= 60
    token, _ = await issue_token(
        world.users["member_a"],
        "session",
        now=env.clock(),
        expires_at=env.clock() + dt.timedelta(seconds=1),
    )
    async with serve(env.app) as url:
        started = asyncio.get_running_loop().time()
        ws = await subscribe(url, token, LOGS)
        await wait_subscribers(env, "logs", 1)
        env.clock.now += dt.timedelta(seconds=2)
        await assert_revoked(ws)
        assert asyncio.get_running_loop().time() - started < live_sessions.RECHECK_S / 2


async def test_logout_on_one_instance_ends_the_subscription_on_another(
    env: Env, world: World
) -> None:
    prefix = f"sbtest:{uuid.uuid4().hex}:"
    ra, rb = await redis_client(), await redis_client()
    bus_a, bus_b = RedisBus(ra, prefix=prefix), RedisBus(rb, prefix=prefix)
    await bus_a.start()
    await bus_b.start()
    gateways = []
    for bus in (bus_a, bus_b):
        store = ConfigStore(bus)
        await store.load_all()
        gateways.append(
            Gateway(settings=Settings(database_url=env.url), bus=bus, store=store, clock=env.clock)
        )
    try:
        session, _ = await create_session(world.users["admin_a"], now=env.clock())
        async with serve(build_app(gateways[1])) as url_b:
            ws = await subscribe(url_b, session, LOGS)
            for _ in range(3000):
                if bus_b._subs.get("sessions"):
                    break
                await asyncio.sleep(0.01)
            assert bus_b._subs.get("sessions"), "the socket on B never watched its session"
            # Logged out through instance A.
            app_a = build_app(gateways[0])
            async with serve(app_a) as url_a:
                http_a = url_a.replace("ws://", "http://")
                async with httpx.AsyncClient() as client:
                    resp = await client.post(
                        http_a,
                        json={"query": "mutation { logout }"},
                        headers={"Authorization": f"Bearer {session}"},
                    )
                assert resp.json() == {"data": {"logout": True}}
            await assert_revoked(ws)
    finally:
        await bus_a.close()
        await bus_b.close()
        await ra.aclose()
        await rb.aclose()
