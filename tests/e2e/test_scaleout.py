"""Two gateway processes sharing PostgreSQL and Redis (issue 7 must-show 2, issue 5 must-show 2).

Both instances run with the same ``SWITCHBOARD_REDIS_PREFIX`` and ``SWITCHBOARD_SECRET_KEY``, as
several instances behind a load balancer do. A change made through instance A's admin API is used
by instance B on its next request within a second, with no restart; a live-log subscription on A
sees the requests B serves.

Runs only when the suite runs on PostgreSQL with Redis (``DATABASE_URL=postgres://...`` and
``REDIS_URL``): without Redis, instances share nothing but the database.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.conftest import UPSTREAM_KEYS, gateway_env
from tests.e2e.harness import (
    GatewayProc,
    Seeded,
    gql_data,
    orm,
    prepare_database,
    seed_basic,
    wait_for_rows,
)
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
pytestmark = pytest.mark.skipif(
    not (ON_POSTGRES and redis_url()),
    reason="several gateway instances need a shared PostgreSQL (DATABASE_URL=postgres://...) "
    f"and Redis (REDIS_URL); this run has DATABASE_URL={'postgres' if ON_POSTGRES else 'sqlite'}"
    f" and REDIS_URL {'set' if redis_url() else 'unset'}",
)

ADMIN = ("ops@switchboard.test", "ops-password-1234")
#: Generous: the test machine is shared, and a start is mostly imports and migrations.
START_TIMEOUT_S = 120.0
#: Propagation budget of a change between instances (the issue's "within a second").
WITHIN_S = 1.0
STRATEGY_PRIMARY = "strat/cheap-a"
STRATEGY_CHAIN = ["strat/cheap-b", "strat/cheap-c"]
PRICES = {"strat/cheap-a": "5", "strat/cheap-b": "0.5", "strat/cheap-c": "2"}


@dataclass
class Pair:
    a: GatewayProc
    b: GatewayProc
    database_url: str
    seeded: Seeded
    x: OpenAIFake  # OPENAI_BASE_URL of both instances
    y: OpenAIFake  # a second OpenAI upstream, named only by a credential set at run time
    strat: OpenAIFake
    token: str = ""

    def reset(self) -> None:
        for fake in (self.x, self.y, self.strat):
            fake.reset()


async def start_all(*gateways: GatewayProc) -> None:
    """Start gateways concurrently (a start is mostly imports and migrations)."""
    await asyncio.gather(*(asyncio.to_thread(gw.start, START_TIMEOUT_S) for gw in gateways))


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    from backend.admin.bootstrap import bootstrap_super_admin
    from backend.data.models.routing import FallbackChain, ModelPrice

    tmp = tmp_path_factory.mktemp("scaleout")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    async with orm(db):
        await bootstrap_super_admin(*ADMIN)
        await FallbackChain.create(primary_model=STRATEGY_PRIMARY, chain=STRATEGY_CHAIN)
        for model, price in PRICES.items():
            await ModelPrice.create(
                model=model, input_per_mtok=Decimal(price), output_per_mtok=Decimal(price)
            )
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    y, strat = OpenAIFake(), OpenAIFake()
    y.start()
    strat.start()
    # One environment for both: same database, Redis prefix and secret key.
    env = gateway_env(db, tmp, fakes) | {
        "SWITCHBOARD_PROVIDER_STRAT_BASE_URL": strat.sdk_base_url,
        "SWITCHBOARD_PROVIDER_STRAT_API_KEY": "sk-strat-0123456789",
    }
    assert env["SWITCHBOARD_REDIS_PREFIX"]
    a = GatewayProc(dict(env), tmp / "gateway-a.log")
    b = GatewayProc(dict(env), tmp / "gateway-b.log")
    try:
        await start_all(a, b)
        p = Pair(a, b, db, seeded, fakes["openai"], y, strat)
        p.token = login(a)
        yield p
    finally:
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
        for fake in [*fakes.values(), y, strat]:
            fake.stop()
        await drop_database(db)


# -- helpers ----------------------------------------------------------------------------------


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


def gql(gw: GatewayProc, token: str, query: str, **variables: Any) -> dict[str, Any]:
    return gql_data(gw.url, token, query, **variables)


def client(gw: GatewayProc, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0)


def ask(gw: GatewayProc, key: str, model: str = "openai/gpt-4o-mini") -> str:
    resp = client(gw, key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    return resp.choices[0].message.content or ""


def until_switched(probe: Any, done: Any) -> float:
    """Call ``probe()`` until ``done(result)``; every probe *started* more than ``WITHIN_S``
    after the change must already see it. Returns how long the switch took."""
    t0 = time.monotonic()
    while True:
        started = time.monotonic() - t0
        result = probe()
        if done(result):
            return started
        assert started < WITHIN_S, f"still the old behaviour {started:.2f}s after the change"
        time.sleep(0.05)


def upstream_of(pair: Pair) -> tuple[str, str]:
    """Which OpenAI upstream got the one request since the last reset, with which key."""
    got = [(name, f) for name, f in (("x", pair.x), ("y", pair.y)) if f.requests]
    assert len(got) == 1 and len(got[0][1].requests) == 1, [n for n, _ in got]
    name, fake = got[0]
    return name, fake.requests[0].headers["authorization"].removeprefix("Bearer ")


# -- credentials ------------------------------------------------------------------------------


@pytest.fixture
def no_openai_row(pair: Pair) -> Iterator[None]:
    yield
    httpx.post(
        f"{pair.a.url}/graphql",
        json={"query": 'mutation { deleteProviderCredential(provider: "openai") }'},
        headers={"authorization": f"Bearer {pair.token}"},
        timeout=30,
    )


def test_credential_changed_on_a_is_used_by_b_within_a_second(
    pair: Pair, no_openai_row: None
) -> None:
    pid_b = pair.b.proc.pid if pair.b.proc else None
    pair.reset()
    ask(pair.b, pair.seeded.user_key)
    assert upstream_of(pair) == ("x", UPSTREAM_KEYS["openai"])

    key = f"sk-live-{uuid.uuid4().hex}"
    data = gql(
        pair.a,
        pair.token,
        'mutation($i: ProviderCredentialInput!) { setProviderCredential(provider: "openai", '
        "input: $i) { apiKeyLast4 } }",
        i={"kind": "OPENAI", "baseUrl": pair.y.sdk_base_url, "apiKey": key},
    )
    assert data["setProviderCredential"]["apiKeyLast4"] == key[-4:]

    def probe() -> tuple[str, str]:
        pair.reset()
        ask(pair.b, pair.seeded.user_key)
        return upstream_of(pair)

    until_switched(probe, lambda r: r == ("y", key))
    for _ in range(3):  # and it stays switched
        assert probe() == ("y", key)
    assert pair.b.proc is not None and pair.b.proc.pid == pid_b  # no restart

    # Removing the stored credential through B: A is back on the environment's upstream.
    gql(pair.b, pair.token, 'mutation { deleteProviderCredential(provider: "openai") }')

    def probe_a() -> tuple[str, str]:
        pair.reset()
        ask(pair.a, pair.seeded.user_key)
        return upstream_of(pair)

    until_switched(probe_a, lambda r: r == ("x", UPSTREAM_KEYS["openai"]))


# -- routing strategy -------------------------------------------------------------------------


@pytest.fixture
def ordered_afterwards(pair: Pair) -> Iterator[None]:
    yield
    gql(
        pair.a,
        pair.token,
        "mutation { setRoutingStrategy(strategy: ORDERED) { routingStrategy } }",
    )


def test_routing_strategy_switched_on_a_applies_on_b_within_a_second(
    pair: Pair, ordered_afterwards: None
) -> None:
    def answering() -> str:
        """The model B sent its one upstream call to."""
        pair.strat.reset()
        pair.strat.replies.append(Reply(text="answer"))
        ask(pair.b, pair.seeded.user_key, STRATEGY_PRIMARY)
        assert len(pair.strat.requests) == 1
        return "strat/" + str(pair.strat.requests[0].json["model"])

    assert answering() == STRATEGY_PRIMARY  # ordered: the primary first
    gql(
        pair.a,
        pair.token,
        "mutation { setRoutingStrategy(strategy: CHEAPEST) { routingStrategy } }",
    )
    # cheapest: b ($0.5) before c ($2) before the primary a ($5)
    until_switched(answering, lambda model: model == "strat/cheap-b")
    assert answering() == "strat/cheap-b"
    gql(
        pair.b,
        pair.token,
        "mutation { setRoutingStrategy(strategy: ORDERED) { routingStrategy } }",
    )
    until_switched(answering, lambda model: model == STRATEGY_PRIMARY)


# -- live logs across instances ---------------------------------------------------------------

SUBSCRIPTION = (
    "subscription { gatewayLogs { requestId endpoint provider actualModel status userId "
    "cacheHit } }"
)


async def test_subscription_on_a_sees_a_request_served_by_b(pair: Pair) -> None:
    ws_url = pair.a.url.replace("http://", "ws://") + "/graphql"
    api = openai.AsyncOpenAI(
        base_url=pair.b.openai_base_url, api_key=pair.seeded.user_key, max_retries=0
    )

    async def request_on_b() -> str:
        raw = await api.chat.completions.with_raw_response.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "live"}]
        )
        return str(raw.headers["x-request-id"])

    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await ws.send(
            orjson.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {pair.token}"}}
            ).decode()
        )
        ack = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            orjson.dumps(
                {"id": "logs", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
            ).decode()
        )

        async def event_for(request_id: str, timeout: float) -> dict[str, Any] | None:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    msg = orjson.loads(await asyncio.wait_for(ws.recv(), left))
                except TimeoutError:
                    return None
                if msg["type"] == "ping":
                    await ws.send(orjson.dumps({"type": "pong"}).decode())
                    continue
                assert msg["type"] == "next" and msg["id"] == "logs", msg
                assert not msg["payload"].get("errors"), msg
                event = dict(msg["payload"]["data"]["gatewayLogs"])
                if event["requestId"] == request_id:
                    return event
            return None

        # The subscription attaches asynchronously after "subscribe": warm up until one of B's
        # requests is seen, then time a fresh one.
        warm_deadline = time.monotonic() + 15
        while await event_for(await request_on_b(), 1.0) is None:
            assert time.monotonic() < warm_deadline, "no event from B ever reached A"

        request_id = await request_on_b()
        answered = time.monotonic()
        event = await event_for(request_id, 5.0)
        assert event is not None, "the subscription on A missed a request served by B"
        assert time.monotonic() - answered < WITHIN_S
        assert event["endpoint"] and event["provider"] == "openai"
        assert event["status"] == 200 and event["userId"] == pair.seeded.user_id
        assert event["cacheHit"] is False


# -- the response cache is shared -------------------------------------------------------------


async def test_response_cache_entry_stored_through_a_answers_on_b(pair: Pair) -> None:
    gql(
        pair.a,
        pair.token,
        "mutation { setOfferedFeatures(features: [RESPONSE_CACHE]) { offeredFeatures } }",
    )
    data = gql(
        pair.a,
        pair.token,
        "mutation($u: Int) { setFeatureOptIn(feature: RESPONSE_CACHE, enabled: true, "
        "userId: $u) { name enabled } }",
        u=pair.seeded.user_id,
    )
    assert {"name": "RESPONSE_CACHE", "enabled": True} in data["setFeatureOptIn"]
    time.sleep(WITHIN_S)  # both instances have the opt-in by now (see the tests above)

    content = f"cache me {uuid.uuid4().hex}"
    messages: Any = [{"role": "user", "content": content}]

    def upstream_calls() -> int:
        return sum(content in r.body.decode() for f in (pair.x, pair.y) for r in f.requests)

    def ask_on(gw: GatewayProc, stream: bool = False) -> tuple[str, str]:
        raw: Any = client(gw, pair.seeded.user_key).chat.completions.with_raw_response.create(
            model="openai/gpt-4o-mini", messages=messages, stream=stream
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        else:
            text = raw.parse().choices[0].message.content or ""
        return text, str(raw.headers["x-request-id"])

    pair.x.replies.append(Reply(text="stored by A"))
    pair.y.replies.append(Reply(text="stored by A"))
    assert ask_on(pair.a)[0] == "stored by A"
    assert upstream_calls() == 1
    text_b, rid_b = ask_on(pair.b)
    streamed_b, rid_bs = ask_on(pair.b, stream=True)
    assert text_b == streamed_b == "stored by A"
    assert upstream_calls() == 1  # B answered from the entry A stored in Redis

    for rid, streamed in ((rid_b, False), (rid_bs, True)):
        (row,) = await wait_for_rows(pair.database_url, 1, request_id=rid)
        assert row.cache_hit is True and Decimal(row.cost_usd) == 0
        assert row.streamed is streamed


# -- the bus itself ---------------------------------------------------------------------------


async def test_a_quiet_redis_bus_keeps_its_subscription() -> None:
    """Regression: the bus listener used ``pubsub.listen()``, which hits the client's
    socket_timeout on a quiet channel, drops the subscription and loses whatever is published
    while it resubscribes (a config change an instance then never applies)."""
    import redis.asyncio as aioredis

    from backend.data.events import RedisBus

    client = aioredis.from_url(redis_url() or "", socket_connect_timeout=5, socket_timeout=1)
    prefix = f"sbtest-bus-{uuid.uuid4().hex[:8]}:"
    bus = RedisBus(client, prefix=prefix)
    await bus.start()
    try:
        async with bus.subscribe("config") as events:
            await asyncio.sleep(1.3)  # quiet for longer than the socket timeout
            for i in range(6):
                await client.publish(prefix + "config", orjson.dumps({"domain": "x", "n": i}))
                await asyncio.sleep(0.25)
            got: list[int] = []
            while len(got) < 6:
                got.append((await asyncio.wait_for(events.__anext__(), 2))["n"])
            assert got == list(range(6))
    finally:
        await bus.close()
        await client.aclose()
