"""Money without holes (issue 13, items 2, 3, 11, 12; "Must show" 3).

The upstream here is ``EndlessUpstream`` (tests/fakes/endless_fake.py), a model that always
writes as much as it may: a plain answer reports the request's ``max_tokens`` as its output (or
``LONG`` tokens when the request has no limit), and a stream never ends unless told to. Prices
are pinned with ``ModelPrice`` overrides: input free, output $100 per million tokens, so the
gateway's worst case for a request without ``max_tokens`` is 4096 x $0.0001 = $0.4096.

- Item 2: a capped caller that names no ``max_tokens`` gets the reserved limit sent upstream, so
  no answer can cost more than its reservation; the cap holds within one request's worst case.
- Item 3: a stream the client abandons is billed (input + output so far, estimated where the
  provider had not counted yet), and the spend counter equals the sum of the log rows.
- Item 11: a capped caller asking for a model without a price is refused naming the model,
  unless the operator set ``SWITCHBOARD_UNPRICED_MODEL_PRICE``; uncapped callers are served.
- Item 12: a client hanging up on an endless stream stops the upstream read at once; a log row
  keeps at most ``MAX_BODY_CHARS`` of an answer.
- Web searches: a capped caller's Anthropic web search tool is reserved at its ``max_uses`` (sent
  as the reserved default when it names none), so searches cannot overshoot the cap either.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from backend.data.log_record import MAX_BODY_CHARS
from backend.data.models.keys import ApiKey
from backend.data.models.logs import RequestLog, SpendCounter
from backend.data.models.routing import FallbackChain, ModelPrice
from backend.data.models.tenancy import Organization, User
from backend.security.api_keys import generate_key
from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, orm, prepare_database, seed_basic
from tests.fakes.endless_fake import EndlessUpstream, limit_of
from tests.fakes.ollama_fake import OllamaFake

GPT = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-sonnet-4-5"
UNPRICED = "openai/ft:gpt-4o-mini:acme:custom:abc123"
#: Unpriced too, with a priced fallback (``FallbackChain``).
UNPRICED_WITH_FALLBACK = "openai/ft:gpt-4o-mini:acme:custom:fb"
OLLAMA = "ollama/llama3.2"
OUT_PER_MTOK = Decimal(100)
#: What the "model" writes when nothing limits it.
LONG = 200_000
#: The gateway's reservation for a request without max_tokens (Settings default).
DEFAULT_LIMIT = 4096
WORST = DEFAULT_LIMIT * OUT_PER_MTOK / Decimal(1_000_000)  # $0.4096
CAP = Decimal("2.00")
#: Anthropic's web search tool, without ``max_uses``: the endless model then searches
#: ``EndlessUpstream.long_searches`` (100) times, $1.00 at Anthropic's $10 per 1,000.
SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search"}
PER_SEARCH = Decimal(10) / 1000
#: Searches sent as ``max_uses`` for a capped caller's tool without one (Settings default).
RESERVED_SEARCHES = 5
SEARCH_CAP = Decimal("0.50")
#: Any wait for the gateway to act (a loaded 2-core machine): poll up to this.
DEADLINE_S = 30.0


def week_start(now: dt.datetime) -> dt.datetime:
    monday = now.date() - dt.timedelta(days=now.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)


def skip_near_week_edge(margin_s: float = 120.0) -> None:
    now = dt.datetime.now(dt.UTC)
    if (week_start(now) + dt.timedelta(days=7) - now).total_seconds() < margin_s:
        pytest.skip("too close to Monday 00:00 UTC: the weekly cap would reset mid-test")


async def until(check: Callable[[], bool], timeout: float = DEADLINE_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


# -- the world: one gateway whose OpenAI and Anthropic upstreams never stop talking --------------


@dataclass
class World:
    gateway: GatewayProc
    db: str
    upstream: EndlessUpstream
    keys: dict[str, str] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)


async def _capped_user(world_keys: dict[str, str], users: dict[str, int], name: str,
                       org: Organization, cap: Decimal | None) -> None:  # fmt: skip
    user = await User.create(
        name=name,
        email=f"{name}-{os.urandom(3).hex()}@money.test",
        organization=org,
        weekly_cap_usd=cap,
    )
    secret, prefix, digest = generate_key()
    await ApiKey.create(prefix=prefix, key_hash=digest, name=name, user=user)
    world_keys[name] = secret
    users[name] = user.id


async def start_world(
    tmp: Path, overrides: dict[str, str] | None = None
) -> tuple[World, OllamaFake]:
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    keys: dict[str, str] = {"uncapped": seeded.user_key}
    users: dict[str, int] = {"uncapped": seeded.user_id}
    async with orm(db):
        for model in (GPT, CLAUDE):
            await ModelPrice.create(model=model, input_per_mtok=0, output_per_mtok=OUT_PER_MTOK)
        await FallbackChain.create(primary_model=UNPRICED_WITH_FALLBACK, chain=[GPT])
        org = await Organization.create(name="Money", slug=f"money-{os.urandom(3).hex()}")
        await _capped_user(keys, users, "capped", org, CAP)
        await _capped_user(keys, users, "abandoner", org, Decimal(1000))
        await _capped_user(keys, users, "zero", org, Decimal(0))
        await _capped_user(keys, users, "priced", org, Decimal(1))
        await _capped_user(keys, users, "searcher", org, SEARCH_CAP)
        await _capped_user(keys, users, "roomy_searcher", org, Decimal(1000))
    upstream = EndlessUpstream(long_output_tokens=LONG).start()
    ollama = OllamaFake().start()
    fakes: dict[str, object] = {
        "openai": upstream,
        "anthropic": upstream,
        "gemini": upstream,
        "ollama": ollama,
    }
    env = (
        gateway_env(db, tmp, fakes)
        | {
            # Anthropic's SDK base URL has no /v1; the endless fake serves both protocols.
            "ANTHROPIC_BASE_URL": upstream.base_url,
            "SWITCHBOARD_UPSTREAM_TIMEOUT": "30",
            # Counted event-loop lag included: 50 concurrent streams on a loaded 2-core host.
            "SWITCHBOARD_BUDGET_TIMEOUT": "10",
        }
        | (overrides or {})
    )
    try:
        gw = GatewayProc(env, tmp / "gateway.log").start()
    except BaseException:
        upstream.stop()
        ollama.stop()
        raise
    return World(gw, db, upstream, keys, users), ollama


async def stop_world(world: World, ollama: OllamaFake) -> None:
    world.gateway.stop()
    world.upstream.stop()
    ollama.stop()
    await drop_database(world.db)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    w, ollama = await start_world(tmp_path_factory.mktemp("money"))
    try:
        yield w
    finally:
        await stop_world(w, ollama)


def oai(world: World, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=world.gateway.openai_base_url, api_key=world.keys[key], max_retries=0
    )


def ant(world: World, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=world.gateway.url, api_key=world.keys[key], max_retries=0
    )


async def rows_of(db: str, **filters: Any) -> list[RequestLog]:
    async with orm(db):
        return await RequestLog.filter(superseded=False, **filters).order_by("id")


async def wait_rows(db: str, n: int, **filters: Any) -> list[RequestLog]:
    deadline = time.monotonic() + DEADLINE_S
    rows = await rows_of(db, **filters)
    while len(rows) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        rows = await rows_of(db, **filters)
    return rows


async def counter(db: str, user_id: int) -> Decimal:
    start = week_start(dt.datetime.now(dt.UTC))
    async with orm(db):
        row = await SpendCounter.get_or_none(scope="user", scope_id=user_id, period_start=start)
    return Decimal(row.spent_usd) if row is not None else Decimal(0)


async def wait_counter(db: str, user_id: int, want: Decimal) -> Decimal:
    """The persisted weekly counter once it equals ``want`` (or its value at the deadline)."""
    deadline = time.monotonic() + DEADLINE_S
    value = await counter(db, user_id)
    while value != want and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = await counter(db, user_id)
    return value


def billed(rows: list[RequestLog]) -> Decimal:
    return sum((Decimal(r.cost_usd) for r in rows if r.cost_usd is not None), Decimal(0))


def priced(row: RequestLog) -> Decimal:
    """The row's cost recomputed from its tokens (input is free here)."""
    return Decimal(row.output_tokens) * OUT_PER_MTOK / Decimal(1_000_000)


# -- item 2: no max_tokens, the cap still holds ---------------------------------------------------


async def ask_openai_without_limit(world: World, model: str, stream: bool) -> bool:
    """One request through the OpenAI SDK without max_tokens; True when it was served."""
    client = oai(world, "capped")
    messages: Any = [{"role": "user", "content": "write as much as you can"}]
    try:
        if stream:
            chunks = await client.chat.completions.create(
                model=model, messages=messages, stream=True
            )
            async for _ in chunks:
                pass
        else:
            await client.chat.completions.create(model=model, messages=messages)
        return True
    except openai.APIStatusError as err:
        assert err.status_code == 429, err
        return False


async def test_cap_holds_without_max_tokens_under_concurrency(world: World) -> None:
    """12 concurrent OpenAI-SDK requests without ``max_tokens`` (streamed and not, to an
    OpenAI-format and an Anthropic-format upstream) against a $2.00 weekly cap. The upstream
    writes as much as it may: without a limit, 200,000 tokens ($20) per answer. Each served
    request must have been sent the reserved limit (4096), so the spend stays within the cap
    plus one request's worst case ($0.4096), in the rows and in the counter."""
    skip_near_week_edge()
    world.upstream.reset()
    world.upstream.total_frames = 40  # streams end (with usage) after 40 text frames
    calls = [
        ask_openai_without_limit(world, GPT if i % 2 else CLAUDE, stream=i % 4 < 2)
        for i in range(12)
    ]
    served = await asyncio.gather(*calls)
    assert any(served) and not all(served), served
    rows = await wait_rows(world.db, 12, user_id=world.users["capped"])
    assert len(rows) == 12
    spent = billed(rows)
    assert spent <= CAP + WORST, f"${spent} spent against a ${CAP} cap"
    assert await wait_counter(world.db, world.users["capped"], spent) == spent
    ok = [r for r in rows if r.status == 200]
    assert len(ok) == sum(served)
    for r in ok:
        assert r.output_tokens == DEFAULT_LIMIT and Decimal(r.cost_usd) == priced(r) == WORST
    upstream_bodies = [c.body for c in world.upstream.conns]
    assert len(upstream_bodies) == len(ok)
    assert all(limit_of(b) == DEFAULT_LIMIT for b in upstream_bodies), upstream_bodies


async def test_uncapped_callers_get_no_limit_injected(world: World) -> None:
    """The limit is the cap's business: a caller without a cap is sent upstream as it asked."""
    world.upstream.reset()
    resp = await oai(world, "uncapped").chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.usage is not None and resp.usage.completion_tokens == LONG
    assert limit_of(world.upstream.conns[0].body) is None


# -- item 3: abandoned streams are billed ---------------------------------------------------------


async def abandon_openai(world: World, model: str) -> None:
    stream = await oai(world, "abandoner").chat.completions.create(
        model=model, messages=[{"role": "user", "content": "tell me everything"}], stream=True
    )
    try:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
    finally:
        await stream.close()


async def abandon_anthropic(world: World, model: str) -> None:
    async with ant(world, "abandoner").messages.stream(
        model=model, max_tokens=100_000, messages=[{"role": "user", "content": "tell me all"}]
    ) as stream:
        async for text in stream.text_stream:
            if text:
                break


async def test_fifty_abandoned_streams_are_billed_and_the_counter_matches(world: World) -> None:
    """50 clients (both SDKs, both upstream protocols) hang up after their first chunk of a
    stream that would never end. Every row is a 499 ``client_closed`` with a cost (input plus
    the output relayed so far, marked as estimated where the provider had not counted it), and
    the user's spend counter equals the sum of what the rows say was billed."""
    skip_near_week_edge()
    world.upstream.reset()
    calls = []
    for i in range(50):
        model = GPT if i % 2 else CLAUDE
        calls.append(abandon_openai(world, model) if i % 4 < 2 else abandon_anthropic(world, model))
    await asyncio.gather(*calls)
    conns = world.upstream.conns
    assert len(conns) == 50
    assert await until(lambda: all(c.peer_closed_at is not None for c in conns)), (
        "an upstream stream was still being read after its client hung up"
    )
    rows = await wait_rows(world.db, 50, user_id=world.users["abandoner"])
    assert len(rows) == 50
    for r in rows:
        assert r.status == 499 and r.streamed and r.error_type == "client_closed", r.status
        assert r.output_tokens >= 1 and r.input_tokens >= 1
        assert r.cost_usd is not None and Decimal(r.cost_usd) == priced(r) > 0
        assert "estimated" in (r.error_message or "")
    spent = billed(rows)
    assert await wait_counter(world.db, world.users["abandoner"], spent) == spent


# -- item 12: a hang-up stops the upstream read; rows are bounded ---------------------------------


def hang_up_after_first_chunk(world: World, path: str, model: str) -> str:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 100_000,
        "stream": True,
        "messages": [{"role": "user", "content": "never stop"}],
    }
    headers = {
        "authorization": f"Bearer {world.keys['uncapped']}",
        "anthropic-version": "2023-06-01",
    }
    with (
        httpx.Client(timeout=DEADLINE_S) as client,
        client.stream(
            "POST", world.gateway.url + path, content=orjson.dumps(body), headers=headers
        ) as resp,
    ):
        assert resp.status_code == 200
        next(resp.iter_raw())
        return resp.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
@pytest.mark.parametrize("model", [GPT, CLAUDE])
async def test_hang_up_stops_reading_an_endless_stream(world: World, path: str, model: str) -> None:
    """The upstream never ends its stream and writes as fast as it is read. Once the client
    hangs up, the gateway closes the upstream connection (the fake sees EOF) and stops reading:
    the frames the fake managed to write stop growing. The row is a bounded 499."""
    world.upstream.reset()
    rid = hang_up_after_first_chunk(world, path, model)
    conn = world.upstream.conns[0]
    assert await until(lambda: conn.peer_closed_at is not None), (
        f"the gateway kept reading the upstream ({conn.bytes_sent} bytes so far)"
    )
    rows = await wait_rows(world.db, 1, request_id=rid)
    assert len(rows) == 1
    row = rows[0]
    assert row.status == 499 and row.error_type == "client_closed"
    assert row.response_body is not None and len(row.response_body) <= MAX_BODY_CHARS


async def test_a_long_answer_is_clipped_in_its_log_row(world: World) -> None:
    """A stream of 1.2 million characters is relayed whole to the client, but its row keeps
    exactly ``MAX_BODY_CHARS`` of it, marked as clipped."""
    world.upstream.reset()
    world.upstream.total_frames = 100_000  # x 12 characters
    client = oai(world, "uncapped")
    chunks = await client.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "long"}], stream=True
    )
    received = 0
    async for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            received += len(chunk.choices[0].delta.content)
    assert received == 100_000 * len(world.upstream.piece)
    rows = await wait_rows(world.db, 1, user_id=world.users["uncapped"], status=200, streamed=True)
    row = rows[-1]
    assert row.response_body is not None
    assert len(row.response_body) == MAX_BODY_CHARS
    assert row.response_body.endswith("[clipped]")


# -- item 11: unpriced models and caps ------------------------------------------------------------


async def test_capped_caller_is_refused_an_unpriced_model(world: World) -> None:
    """A $0 cap and a model without a price: refused before the provider, naming the model, in
    each SDK's error format. A priced-at-$0 Ollama model is served; an uncapped caller gets the
    unpriced model (cost unknown)."""
    world.upstream.reset()
    with pytest.raises(openai.PermissionDeniedError) as oerr:
        await oai(world, "zero").chat.completions.create(
            model=UNPRICED, messages=[{"role": "user", "content": "hi"}]
        )
    obody = oerr.value.body
    assert isinstance(obody, dict) and obody.get("code") == "unpriced_model", obody
    assert UNPRICED in str(obody.get("message")) and "no known price" in str(obody["message"])
    with pytest.raises(anthropic.PermissionDeniedError) as aerr:
        await ant(world, "zero").messages.create(
            model=UNPRICED, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    abody = aerr.value.body
    assert isinstance(abody, dict) and abody["error"]["type"] == "permission_error", abody
    assert UNPRICED in abody["error"]["message"]
    assert world.upstream.conns == [], "a refused request reached the provider"

    served = await oai(world, "zero").chat.completions.create(
        model=OLLAMA, messages=[{"role": "user", "content": "hi"}]
    )
    assert served.choices[0].message.content
    free = await oai(world, "uncapped").chat.completions.create(
        model=UNPRICED, messages=[{"role": "user", "content": "hi"}]
    )
    assert free.choices[0].message.content
    zero_rows = await wait_rows(world.db, 3, user_id=world.users["zero"])
    assert [(r.status, r.requested_model) for r in zero_rows] == [
        (403, UNPRICED), (403, UNPRICED), (200, OLLAMA)
    ]  # fmt: skip
    assert Decimal(zero_rows[2].cost_usd) == 0
    rows = await wait_rows(world.db, 1, user_id=world.users["uncapped"], requested_model=UNPRICED)
    assert rows[-1].status == 200 and rows[-1].cost_usd is None


async def test_capped_caller_skips_an_unpriced_candidate_for_a_priced_fallback(
    world: World,
) -> None:
    """An unpriced model whose fallback chain has a priced one: a capped caller is served (and
    billed) by the priced fallback, never by the model its cap cannot count; an uncapped caller
    gets the model it asked for."""
    world.upstream.reset()
    capped = await oai(world, "priced").chat.completions.with_raw_response.create(
        model=UNPRICED_WITH_FALLBACK, messages=[{"role": "user", "content": "hi"}]
    )
    assert capped.headers["x-switchboard-model"] == GPT
    uncapped = await oai(world, "uncapped").chat.completions.with_raw_response.create(
        model=UNPRICED_WITH_FALLBACK, messages=[{"role": "user", "content": "hi"}]
    )
    assert uncapped.headers["x-switchboard-model"] == UNPRICED_WITH_FALLBACK
    assert [c.body["model"] for c in world.upstream.conns] == [
        "gpt-4o-mini", "ft:gpt-4o-mini:acme:custom:fb"
    ]  # fmt: skip
    rows = await wait_rows(world.db, 1, user_id=world.users["priced"], actual_model=GPT)
    assert rows[-1].cost_usd is not None and Decimal(rows[-1].cost_usd) == priced(rows[-1])


@pytest.fixture(scope="module")
async def default_priced(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """A second gateway whose operator set a price for unpriced models: $0 in, $100/M out."""
    w, ollama = await start_world(
        tmp_path_factory.mktemp("money-default"), {"SWITCHBOARD_UNPRICED_MODEL_PRICE": "0,100"}
    )
    try:
        yield w
    finally:
        await stop_world(w, ollama)


async def test_configured_default_price_reserves_and_bills_unpriced_models(
    default_priced: World,
) -> None:
    """With ``SWITCHBOARD_UNPRICED_MODEL_PRICE``, a capped caller is served an unpriced model:
    reserved (4096 tokens sent upstream, the $0.4096 worst case) and billed at that price; the
    $1 cap then admits two such requests and refuses the third."""
    skip_near_week_edge()
    w = default_priced
    client = oai(w, "priced")
    outcomes = []
    for _ in range(3):
        try:
            await client.chat.completions.create(
                model=UNPRICED, messages=[{"role": "user", "content": "hi"}]
            )
            outcomes.append(200)
        except openai.APIStatusError as err:
            outcomes.append(err.status_code)
    assert outcomes == [200, 200, 429]
    assert [limit_of(c.body) for c in w.upstream.conns] == [DEFAULT_LIMIT, DEFAULT_LIMIT]
    rows = await wait_rows(w.db, 3, user_id=w.users["priced"])
    assert [Decimal(r.cost_usd) if r.cost_usd is not None else None for r in rows] == [
        WORST, WORST, None
    ]  # fmt: skip
    assert await wait_counter(w.db, w.users["priced"], 2 * WORST) == 2 * WORST


# -- web searches are reserved, not only billed ---------------------------------------------------


def search_cost(output_tokens: int, searches: int) -> Decimal:
    return output_tokens * OUT_PER_MTOK / Decimal(1_000_000) + searches * PER_SEARCH


async def ask_with_search(world: World, key: str, tool: dict[str, Any]) -> str | None:
    """One Anthropic-SDK request with ``tool`` and max_tokens 10; its request id when served."""
    try:
        answer = await ant(world, key).messages.with_raw_response.create(
            model=CLAUDE,
            max_tokens=10,
            tools=[tool],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "search as much as you like"}],
        )
    except anthropic.RateLimitError:
        return None
    return answer.headers["x-request-id"]


async def test_web_searches_are_reserved_so_the_cap_holds(world: World) -> None:
    """12 concurrent requests with a web search tool that names no ``max_uses``, against a $0.50
    cap. Unbounded, the model searches 100 times ($1.00) per answer; each served request must
    have been sent ``max_uses`` 5 and had its $0.05 of searches reserved, so the spend stays
    within the cap plus one request's worst case ($0.051), in the rows and in the counter."""
    skip_near_week_edge()
    world.upstream.reset()
    served = await asyncio.gather(
        *(ask_with_search(world, "searcher", SEARCH_TOOL) for _ in range(12))
    )
    assert any(served) and not all(served), served
    rows = await wait_rows(world.db, 12, user_id=world.users["searcher"])
    assert len(rows) == 12
    worst = search_cost(10, RESERVED_SEARCHES)
    spent = billed(rows)
    assert spent <= SEARCH_CAP + worst, f"${spent} spent against a ${SEARCH_CAP} cap"
    assert await wait_counter(world.db, world.users["searcher"], spent) == spent
    ok = [r for r in rows if r.status == 200]
    assert len(ok) == len([rid for rid in served if rid])
    assert all(Decimal(r.cost_usd) == worst for r in ok), [r.cost_usd for r in ok]
    sent_tools = [c.body["tools"] for c in world.upstream.conns]
    assert sent_tools == [[{**SEARCH_TOOL, "max_uses": RESERVED_SEARCHES}]] * len(ok)


async def test_a_search_tools_own_max_uses_is_kept_and_uncapped_callers_get_none_added(
    world: World,
) -> None:
    """The bound is the cap's business: a tool's own ``max_uses`` is sent and reserved as it is,
    and an uncapped caller's tool is sent exactly as asked (and billed every search)."""
    world.upstream.reset()
    own = {**SEARCH_TOOL, "max_uses": 2}
    capped = await ask_with_search(world, "roomy_searcher", own)
    uncapped = await ask_with_search(world, "uncapped", SEARCH_TOOL)
    assert capped and uncapped
    assert [c.body["tools"] for c in world.upstream.conns] == [[own], [SEARCH_TOOL]]
    (row,) = await wait_rows(world.db, 1, request_id=capped)
    assert Decimal(row.cost_usd) == search_cost(10, 2)
    (row,) = await wait_rows(world.db, 1, request_id=uncapped)
    assert Decimal(row.cost_usd) == search_cost(10, 100)
