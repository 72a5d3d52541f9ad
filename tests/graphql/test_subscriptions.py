"""Live subscriptions over real WebSockets (uvicorn on a loopback port, the ``websockets`` client).

- ``gatewayLogs`` over graphql-transport-ws: a request recorded by the log writer arrives within
  a second; filters and role scope apply (an org_admin never sees another organization's events).
- a connection without a valid token is closed (4403) after ``connection_init``.
- ``errorReports`` over the legacy graphql-ws protocol.
- with Redis: a subscriber on instance A sees a request served by instance B.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from backend.config import Settings
from backend.data.events import RedisBus
from backend.data.log_record import ErrorRecord, LogRecord
from backend.data.log_writer import LogWriter
from backend.gateway import Gateway
from backend.state.store import ConfigStore
from tests.graphql.harness import Env, World, build_app

SUB = """subscription($org: Int, $model: String) {
  gatewayLogs(organizationId: $org, model: $model) {
    requestId status organizationId actualModel costUsd totalTokens user { email }
  }
}"""


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def send(ws: ClientConnection, msg: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(msg).decode())


async def recv(ws: ClientConnection, timeout: float = 1.0) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg["type"] not in ("ping", "pong", "ka"):
            return msg


async def subscribe(
    url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert (await recv(ws))["type"] == "connection_ack"
    await send(
        ws,
        {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables or {}}},
    )
    return ws


async def wait_subscribers(env: Env, channel: str, n: int) -> None:
    for _ in range(200):
        if env.bus.subscriber_count(channel) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{n} subscriber(s) on {channel!r} never attached")


def record(world: World, who: str, org: Any, request_id: str, **kw: Any) -> LogRecord:
    return LogRecord(
        request_id=request_id,
        created_at=dt.datetime.now(dt.UTC),
        endpoint="/v1/chat/completions",
        user_id=world.users[who].id,
        org_id=org.id,
        requested_model="gpt-4o",
        actual_model="openai/gpt-4o",
        provider="openai",
        input_tokens=12,
        output_tokens=30,
        cost_usd=Decimal("0.00042"),
        latency_ms=321.0,
        request_body='{"secret body": true}',
        **kw,
    )


async def test_gateway_logs_arrive_within_a_second(env: Env, world: World) -> None:
    writer = LogWriter(env.bus, interval=0.05)
    await writer.start()
    try:
        async with serve(env.app) as url:
            sup = await subscribe(url, world.token("super") or "", SUB)
            org_b = await subscribe(url, world.token("admin_b") or "", SUB)
            member_a = await subscribe(url, world.token("member_a") or "", SUB)
            filtered = await subscribe(url, world.token("super") or "", SUB, {"model": "claude"})
            await wait_subscribers(env, "logs", 4)

            sent = asyncio.get_running_loop().time()
            writer.submit(record(world, "member_a", world.org_a, "req-a"))
            msg = await recv(sup, timeout=1.0)
            assert asyncio.get_running_loop().time() - sent < 1.0
            assert msg["type"] == "next" and msg["id"] == "1"
            event = msg["payload"]["data"]["gatewayLogs"]
            assert event == {
                "requestId": "req-a",
                "status": 200,
                "organizationId": world.org_a.id,
                "actualModel": "openai/gpt-4o",
                "costUsd": "0.00042",
                "totalTokens": 42,
                "user": {"email": "member_a@example.com"},
            }
            assert (await recv(member_a))["payload"]["data"]["gatewayLogs"]["requestId"] == "req-a"

            writer.submit(record(world, "member_b", world.org_b, "req-b"))
            # The org_admin of Globex never saw Acme's request: their first event is their own.
            got = (await recv(org_b))["payload"]["data"]["gatewayLogs"]
            assert (got["requestId"], got["organizationId"]) == ("req-b", world.org_b.id)
            assert (await recv(sup))["payload"]["data"]["gatewayLogs"]["requestId"] == "req-b"
            with pytest.raises(TimeoutError):
                await recv(member_a, timeout=0.3)  # not their request
            with pytest.raises(TimeoutError):
                await recv(filtered, timeout=0.3)  # model filter
            for ws in (sup, org_b, member_a, filtered):
                await ws.close()
    finally:
        await writer.close()


async def test_websocket_without_a_valid_token_is_closed(env: Env, world: World) -> None:
    async with serve(env.app) as url:
        for payload in ({}, {"token": "sba-00000000-nope"}, {"Authorization": "Bearer garbage"}):
            ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
            await send(ws, {"type": "connection_init", "payload": payload})
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        # The {"token": ...} form is accepted too.
        ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await send(ws, {"type": "connection_init", "payload": {"token": world.token("super")}})
        assert (await recv(ws))["type"] == "connection_ack"
        await ws.close()


async def test_error_reports_over_legacy_graphql_ws(env: Env, world: World) -> None:
    async with serve(env.app) as url:
        ws = await connect(url, subprotocols=["graphql-ws"])  # type: ignore[list-item]
        await send(
            ws,
            {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {world.token('admin_a')}"},
            },
        )
        assert (await recv(ws))["type"] == "connection_ack"
        q = "subscription { errorReports { source type error userId } }"
        await send(ws, {"id": "e", "type": "start", "payload": {"query": q}})
        await wait_subscribers(env, "errors", 1)
        for who in ("member_b", "member_a"):
            rec = ErrorRecord(
                created_at=dt.datetime.now(dt.UTC),
                source="gateway",
                type="timeout",
                error=f"upstream timed out for {who}",
                user_id=world.users[who].id,
                org_id=world.users[who].organization_id,  # type: ignore[attr-defined]
            )
            await env.bus.publish("errors", rec.event())
        msg = await recv(ws)
        assert msg["type"] == "data"
        assert msg["payload"]["data"]["errorReports"]["error"] == "upstream timed out for member_a"
        await ws.close()


REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


async def redis_client() -> Any:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()  # type: ignore[misc]
    except Exception as exc:
        await client.aclose()
        if os.environ.get("REDIS_URL"):
            pytest.fail(f"REDIS_URL is set but Redis is not reachable: {exc!r}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return client


async def test_subscriber_on_one_instance_sees_requests_of_another(env: Env, world: World) -> None:
    prefix = f"sbtest:{uuid.uuid4().hex}:"
    ra, rb = await redis_client(), await redis_client()
    bus_a, bus_b = RedisBus(ra, prefix=prefix), RedisBus(rb, prefix=prefix)
    await bus_a.start()
    await bus_b.start()
    store_a = ConfigStore(bus_a)
    await store_a.load_all()
    instance_a = Gateway(settings=Settings(database_url=env.url), bus=bus_a, store=store_a)
    writer_b = LogWriter(bus_b, interval=0.05)  # instance B's log writer
    await writer_b.start()
    try:
        async with serve(build_app(instance_a)) as url:
            ws = await subscribe(url, world.token("super") or "", SUB)
            for _ in range(200):
                if bus_a._subs.get("logs"):
                    break
                await asyncio.sleep(0.01)
            sent = asyncio.get_running_loop().time()
            writer_b.submit(record(world, "member_a", world.org_a, "served-by-b"))
            msg = await recv(ws, timeout=1.0)
            assert asyncio.get_running_loop().time() - sent < 1.0
            assert msg["payload"]["data"]["gatewayLogs"]["requestId"] == "served-by-b"
            await ws.close()
    finally:
        await writer_b.close()
        await bus_a.close()
        await bus_b.close()
        await ra.aclose()
        await rb.aclose()
