"""Two gateway instances on PostgreSQL and a Redis that goes away (issue 13 item 13, must-show 5).

Redis here is a private ``redis-server`` on a free port (the shared one on 6379 serves other
tests and is never stopped). With Redis down, ``createModelAlias`` on instance A commits, answers
without an error, and A serves the alias; B cannot be told and still answers 404. Redis comes
back on the same port, empty: within seconds B serves the alias too. Each half of the fix has a
case only it can pass:

- Redis restarts: pub/sub keeps nothing, and A's retried announcement may well go out before B
  has subscribed again; B gets the change by reloading its whole config on reconnecting.
- Only A loses Redis (a ``TcpProxy`` between A and Redis is cut): B's subscription never breaks,
  so nothing makes B reload; A's announcement, retried in the background, gets it there.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.budget.private_redis import PrivateRedis
from tests.dbutil import create_database, drop_database
from tests.e2e.chaos import TcpProxy
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, Seeded, orm, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
pytestmark = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="two gateway instances share a PostgreSQL database (DATABASE_URL=postgres://...); "
    "this run is on SQLite",
)

ADMIN = ("ops-events@switchboard.test", "ops-events-password-1234")
#: Generous: the machine is shared, and a start is mostly imports and migrations.
START_TIMEOUT_S = 120.0
#: "Within seconds of Redis's return", with room for a loaded 2-core machine.
WITHIN_S = 20.0


@dataclass
class Pair:
    a: GatewayProc
    b: GatewayProc
    redis: PrivateRedis
    #: Between instance A and Redis (B connects directly).
    a_proxy: TcpProxy
    seeded: Seeded
    token: str


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    from backend.admin.bootstrap import bootstrap_super_admin

    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    proxy = TcpProxy("127.0.0.1", redis.port).start()
    db = await create_database(tmp_path)
    await prepare_database(db)
    seeded = await seed_basic(db)
    async with orm(db):
        await bootstrap_super_admin(*ADMIN)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    env = gateway_env(db, tmp_path, fakes) | {
        "REDIS_URL": redis.url,
        "SWITCHBOARD_REDIS_PREFIX": f"sbtest-events-{uuid.uuid4().hex[:8]}:",
    }
    a = GatewayProc(env | {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}, tmp_path / "a.log")
    b = GatewayProc(dict(env), tmp_path / "b.log")
    try:
        await asyncio.gather(
            asyncio.to_thread(a.start, START_TIMEOUT_S), asyncio.to_thread(b.start, START_TIMEOUT_S)
        )
        yield Pair(a, b, redis, proxy, seeded, await asyncio.to_thread(login, a))
    finally:
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
        for fake in fakes.values():
            fake.stop()
        proxy.stop()
        redis.stop()
        await drop_database(db)


def login(gw: GatewayProc) -> str:
    resp = httpx.post(
        f"{gw.url}/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ token } }",
            "variables": {"e": ADMIN[0], "p": ADMIN[1]},
        },
        timeout=30,
    )
    assert resp.status_code == 200 and not resp.json().get("errors"), resp.text
    return str(resp.json()["data"]["login"]["token"])


def ask(gw: GatewayProc, key: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        content=orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        timeout=30,
    )


async def create_alias_on_a(pair: Pair, alias: str) -> None:
    created = await asyncio.to_thread(
        httpx.post,
        f"{pair.a.url}/graphql",
        json={
            "query": "mutation($a: String!) { createModelAlias(input: {requestedModel: $a, "
            'targetModel: "openai/gpt-4o-mini"}) { id requestedModel } }',
            "variables": {"a": alias},
        },
        headers={"authorization": f"Bearer {pair.token}"},
        timeout=30,
    )
    body = created.json()
    assert created.status_code == 200 and not body.get("errors"), body  # committed: no error
    assert body["data"]["createModelAlias"]["requestedModel"] == alias
    served = ask(pair.a, pair.seeded.user_key, alias)
    assert served.status_code == 200, served.text  # A applied it at once
    assert ask(pair.b, pair.seeded.user_key, alias).status_code == 404  # B was not told


async def until_b_serves(pair: Pair, alias: str) -> None:
    back = time.monotonic()
    while (resp := ask(pair.b, pair.seeded.user_key, alias)).status_code != 200:
        assert resp.status_code == 404, resp.text
        waited = time.monotonic() - back
        assert waited < WITHIN_S, f"B still answers 404 {waited:.1f}s after Redis came back"
        await asyncio.sleep(0.2)
    for gw in (pair.a, pair.b):
        assert "Exception in ASGI application" not in gw.log_text()


async def test_a_change_made_while_redis_is_down_reaches_the_other_instance(pair: Pair) -> None:
    alias = f"outage-alias-{uuid.uuid4().hex[:6]}"
    assert ask(pair.b, pair.seeded.user_key, alias).status_code == 404  # nothing by that name yet
    pair.redis.kill()
    await create_alias_on_a(pair, alias)
    pair.redis.start()  # the same port, empty
    await until_b_serves(pair, alias)


async def test_a_change_made_while_only_a_lost_redis_reaches_the_other_instance(
    pair: Pair,
) -> None:
    alias = f"partition-alias-{uuid.uuid4().hex[:6]}"
    pair.a_proxy.cut()
    await create_alias_on_a(pair, alias)
    pair.a_proxy.restore()
    await until_b_serves(pair, alias)
