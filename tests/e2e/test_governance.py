"""Per-key budgets, model allowlists, cost-attribution tags and unknown prices through the real
gateway with the official SDKs (issue 18 items 3, 6, 7).

Prices are pinned: ``openai/gpt-4o-mini`` costs $0 per input token and $0.01 per output token,
the fake answers 10 output tokens and every request says ``max_tokens=10``: $0.10 each, reserved
and charged. ``openai/ft:gpt-4o-mini:acme`` has no price anywhere (cost "unknown").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import openai
import orjson
import pytest

from backend.data.models.keys import ApiKey
from backend.data.models.logs import RequestLog, SpendCounter
from backend.data.models.routing import ModelPrice
from backend.data.models.tenancy import Organization, User
from backend.security.api_keys import generate_key
from backend.security.sessions import issue_token
from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, fake_upstreams, gql_data, orm, prepare_database
from tests.fakes.base import Reply
from tests.fakes.openai_fake import OpenAIFake

MODEL = "openai/gpt-4o-mini"
UNPRICED = "openai/ft:gpt-4o-mini:acme"
WAIT_S = 30.0


@dataclass
class World:
    gateway: GatewayProc
    db: str
    openai: OpenAIFake
    token: str = ""
    keys: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


async def _key(world: World, name: str, user: User, **limits: Any) -> None:
    secret, prefix, digest = generate_key()
    await ApiKey.create(prefix=prefix, key_hash=digest, name=name, user=user, **limits)
    world.keys[name] = secret
    world.prefixes[name] = prefix


async def seed(world: World) -> None:
    await ModelPrice.create(model=MODEL, input_per_mtok=0, output_per_mtok=Decimal(10_000))
    org = await Organization.create(name="Gov", slug=f"gov-{os.urandom(3).hex()}")

    async def user(name: str, **extra: Any) -> User:
        made = await User.create(
            name=name, email=f"{name}-{os.urandom(3).hex()}@gov.test", organization=org, **extra
        )
        world.ids[name] = made.id
        return made

    admin = await user("root", role="super_admin")
    world.token, _ = await issue_token(admin, "admin", now=dt.datetime.now(dt.UTC), name="e2e")
    await _key(
        world, "budget", await user("spender"), spend_cap_usd=Decimal("0.25"), cap_period="daily"
    )
    await _key(world, "allow", await user("allowed"), allowed_models=["gpt-4o*"])
    narrow = await user("narrow", allowed_models=["gpt-4o-mini"])
    await _key(world, "narrow", narrow, allowed_models=["gpt-4o*"])
    await _key(world, "tags", await user("tagger"))
    await _key(world, "unknown", await user("unpriced"))


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("governance")
    db = await create_database(tmp)
    await prepare_database(db)
    with fake_upstreams() as fakes:
        gw: GatewayProc | None = None
        try:
            env = gateway_env(db, tmp, fakes) | {"SWITCHBOARD_BUDGET_TIMEOUT": "10"}
            gw = GatewayProc(env, tmp / "gateway.log")
            made = World(gw, db, fakes["openai"])
            async with orm(db):
                await seed(made)
            gw.start()
            yield made
        finally:
            if gw is not None:
                gw.stop()
            await drop_database(db)


def oai(world: World, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=world.gateway.openai_base_url, api_key=world.keys[key], max_retries=0, timeout=60
    )


def ant(world: World, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=world.gateway.url, api_key=world.keys[key], max_retries=0, timeout=60
    )


def queue(world: World, n: int, delay: float = 0.0) -> None:
    world.openai.reset()
    for i in range(n):
        world.openai.replies.append(
            Reply(text=f"answer {i}", input_tokens=7, output_tokens=10, delay=delay)
        )


def upstream_bodies(world: World) -> list[dict[str, Any]]:
    return [r.json for r in world.openai.requests if r.path.endswith("/chat/completions")]


def gql(world: World, query: str, **variables: Any) -> dict[str, Any]:
    return gql_data(world.gateway.url, world.token, query, **variables)


async def wait_for(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + WAIT_S
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def rows_of(world: World, key: str, n: int) -> list[RequestLog]:
    async def fetch() -> list[RequestLog] | None:
        async with orm(world.db):
            rows = await RequestLog.filter(key_prefix=world.prefixes[key], superseded=False)
        return rows if len(rows) >= n else None

    rows: list[RequestLog] = await wait_for(fetch, f"{n} log rows of key {key}")
    return sorted(rows, key=lambda r: r.id)


# -- item 3: a key's own budget ------------------------------------------------------------------


async def test_a_key_spend_cap_holds_under_concurrency(world: World) -> None:
    """A $0.25 daily cap on one key: of 6 concurrent $0.10 requests (both SDKs) exactly 2 pass;
    the others are refused naming the key's cap and tomorrow 00:00 UTC."""
    now = dt.datetime.now(dt.UTC)
    tomorrow = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    if (tomorrow - now).total_seconds() < 120:
        pytest.skip("too close to midnight UTC, when the daily cap resets")
    queue(world, 6, delay=0.3)
    messages: Any = [{"role": "user", "content": "hi"}]

    async def one(i: int) -> tuple[bool, str, int, str]:
        try:
            if i % 2:
                await oai(world, "budget").chat.completions.create(
                    model=MODEL, messages=messages, max_tokens=10
                )
            else:
                await ant(world, "budget").messages.create(
                    model=MODEL, messages=messages, max_tokens=10
                )
            return True, "", 200, ""
        except (openai.APIStatusError, anthropic.APIStatusError) as err:
            return False, str(err), err.status_code, err.response.headers.get("x-should-retry", "")

    outcomes = await asyncio.gather(*(one(i) for i in range(6)))
    assert sum(ok for ok, *_ in outcomes) == 2
    prefix = world.prefixes["budget"]
    for ok, message, status, retry in outcomes:
        if not ok:
            assert status == 429 and retry == "false"
            assert f"daily spend cap of key {prefix} ($0.25)" in message, message
            assert f"It resets at {tomorrow.isoformat()}" in message, message
    assert len(upstream_bodies(world)) == 2

    async def counter() -> bool:
        async with orm(world.db):
            row = await SpendCounter.get_or_none(
                scope="key", period_start=tomorrow - dt.timedelta(1)
            )
        # Flushed after each log write: it may show the first answer's $0.10 before both.
        return row is not None and Decimal(row.spent_usd) == Decimal("0.20")

    await wait_for(counter, "the key's spend counter to reach $0.20 (both answers)")


# -- item 3: allowlists ----------------------------------------------------------------------------


async def test_model_allowlists_refuse_in_the_callers_protocol(world: World) -> None:
    queue(world, 3)
    messages: Any = [{"role": "user", "content": "hi"}]
    ok = await oai(world, "allow").chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert ok.choices[0].message.content == "answer 0"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await oai(world, "allow").chat.completions.create(
            model="anthropic/claude-sonnet-4-5", messages=messages
        )
    body: Any = refused.value.body
    assert body["code"] == "model_not_allowed" and body["param"] == "model"
    assert (
        f"Model 'anthropic/claude-sonnet-4-5' is not allowed for key {world.prefixes['allow']}; "
        "it may use: gpt-4o*." == body["message"]
    )
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        await ant(world, "allow").messages.create(
            model="gemini/gemini-2.5-flash", messages=messages, max_tokens=10
        )
    assert denied.value.status_code == 403
    assert "Model 'gemini/gemini-2.5-flash' is not allowed" in str(denied.value)
    with pytest.raises(openai.PermissionDeniedError) as embed:
        await oai(world, "allow").embeddings.create(
            model="openai/text-embedding-3-small", input="hi"
        )
    assert "not allowed for key" in str(embed.value)
    # The key allows gpt-4o*, its user only gpt-4o-mini: the tightest applies.
    await oai(world, "narrow").chat.completions.create(model=MODEL, messages=messages)
    with pytest.raises(openai.PermissionDeniedError) as narrower:
        await oai(world, "narrow").chat.completions.create(model="gpt-4o", messages=messages)
    assert "is not allowed for user narrow-" in str(narrower.value)
    assert len(upstream_bodies(world)) == 2  # no refused request reached a provider


# -- item 6: tags ----------------------------------------------------------------------------------

SPEND_BY_TAG = """query($tags: [String!]) {
  spendByTag(tags: $tags) {
    tag requests errors inputTokens outputTokens costUsd unknownCostRequests
  }
}"""


async def test_tags_reach_the_log_and_spend_by_tag(world: World) -> None:
    queue(world, 3)
    messages: Any = [{"role": "user", "content": "hi"}]
    await oai(world, "tags").chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=10,
        metadata={"tags": "team-a,proj-x", "ticket": "T-1"},
        extra_headers={"x-switchboard-tags": "proj-x, batch"},
    )
    stream = await ant(world, "tags").messages.create(
        model=MODEL,
        messages=messages,
        max_tokens=10,
        metadata={"user_id": "u-1", "tags": ["team-a"]},  # type: ignore[typeddict-unknown-key]
        stream=True,
    )
    async for _ in stream:
        pass
    await oai(world, "tags").chat.completions.create(model=MODEL, messages=messages, max_tokens=10)
    # Tags never leave for the provider; the rest of metadata does (OpenAI to OpenAI; what an
    # Anthropic client's metadata becomes elsewhere is the translation rules' business).
    bodies = upstream_bodies(world)
    assert bodies[0]["metadata"] == {"ticket": "T-1"}
    for body in bodies:
        assert "team-a" not in orjson.dumps(body).decode(), body
    rows = await rows_of(world, "tags", 3)
    assert [r.tags for r in rows] == [["team-a", "proj-x", "batch"], ["team-a"], None]
    logs = gql(world, "{ gatewayLogs(first: 50) { nodes { requestId tags } } }")
    by_id = {n["requestId"]: n["tags"] for n in logs["gatewayLogs"]["nodes"]}
    assert by_id[rows[0].request_id] == ["team-a", "proj-x", "batch"]
    assert by_id[rows[2].request_id] == []

    def spend() -> dict[str, Any] | None:
        got = gql(world, SPEND_BY_TAG, tags=["team-a", "proj-x", "batch"])["spendByTag"]
        by_tag = {t["tag"]: t for t in got}
        return by_tag if by_tag.get("team-a", {}).get("requests") == 2 else None

    by_tag = await wait_for(spend, "spend by tag")
    assert [t for t in by_tag] == ["team-a", "batch", "proj-x"]  # by cost, then name
    assert Decimal(by_tag["team-a"]["costUsd"]) == Decimal("0.20")
    assert (by_tag["proj-x"]["requests"], Decimal(by_tag["proj-x"]["costUsd"])) == (
        1,
        Decimal("0.1"),
    )
    assert by_tag["batch"]["outputTokens"] == 10 and by_tag["batch"]["unknownCostRequests"] == 0


@pytest.mark.parametrize(
    ("metadata", "header", "where"),
    [
        ({"tags": [f"t{i}" for i in range(11)]}, None, "metadata.tags: 11 tags"),
        (None, "ok," + "x" * 65, "x-switchboard-tags: tag 'xxx"),
        ({"tags": [1]}, None, "metadata.tags: a tag must be a string"),
    ],
)
async def test_malformed_tags_are_a_clear_400(
    world: World, metadata: Any, header: str | None, where: str
) -> None:
    world.openai.reset()
    extra = {"x-switchboard-tags": header} if header else None
    with pytest.raises(openai.BadRequestError) as bad:
        await oai(world, "tags").chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            metadata=metadata,
            extra_headers=extra,
        )
    body: Any = bad.value.body
    assert body["code"] == "invalid_tags" and where in body["message"], body
    assert "at most 10 tags of 1 to 64 printable characters" in body["message"]
    with pytest.raises(anthropic.BadRequestError):
        await ant(world, "tags").messages.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=5,
            extra_headers={"x-switchboard-tags": ",".join(f"t{i}" for i in range(11))},
        )
    assert upstream_bodies(world) == []


# -- item 7: unknown prices ------------------------------------------------------------------------


async def test_unknown_price_is_counted_as_unknown_not_zero(world: World) -> None:
    queue(world, 2)
    messages: Any = [{"role": "user", "content": "hi"}]
    for model in (UNPRICED, MODEL):
        await oai(world, "unknown").chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=10,
            extra_headers={"x-switchboard-tags": "fine-tuned"},
        )
    rows = await rows_of(world, "unknown", 2)
    assert [r.cost_usd is None for r in rows] == [True, False]
    user_id = world.ids["unpriced"]

    def usage() -> dict[str, Any] | None:
        q = (
            "query($u: Int!) { userUsage(userId: $u) "
            "{ nodes { requests costUsd unknownCostRequests } } }"
        )
        nodes = gql(world, q, u=user_id)["userUsage"]["nodes"]
        return nodes[0] if nodes and nodes[0]["requests"] == 2 else None

    got = await wait_for(usage, "the user's usage")
    assert (Decimal(got["costUsd"]), got["unknownCostRequests"]) == (Decimal("0.1"), 1)
    tag = gql(world, SPEND_BY_TAG, tags=["fine-tuned"])["spendByTag"]
    assert [(t["requests"], Decimal(t["costUsd"]), t["unknownCostRequests"]) for t in tag] == [
        (2, Decimal("0.1"), 1)
    ]
    dash = gql(
        world,
        "{ dashboard { live(minutes: 60) { unknownCostRequests } "
        # Two days: the requests may have been made just before midnight UTC.
        "costTrends(days: 2) { unknownCostRequests byModel { model unknownCostRequests } } "
        "topSpenders(days: 2, limit: 100) { userId unknownCostRequests } } }",
    )["dashboard"]
    assert dash["live"]["unknownCostRequests"] == 1
    assert sum(day["unknownCostRequests"] for day in dash["costTrends"]) == 1
    by_model: dict[str, int] = {}
    for day in dash["costTrends"]:
        for m in day["byModel"]:
            by_model[m["model"]] = by_model.get(m["model"], 0) + m["unknownCostRequests"]
    assert by_model[UNPRICED] == 1 and by_model[MODEL] == 0
    spenders = {s["userId"]: s["unknownCostRequests"] for s in dash["topSpenders"]}
    assert spenders[user_id] == 1
    log = gql(
        world,
        "{ gatewayLogs(first: 100) { nodes { actualModel costUsd } } }",
    )["gatewayLogs"]["nodes"]
    assert {n["costUsd"] for n in log if n["actualModel"] == UNPRICED} == {None}
