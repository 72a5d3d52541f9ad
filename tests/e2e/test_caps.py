"""Spend caps and per-key rate limits through the real gateway (issue 4, "Must show" 1, 2, 5).

Prices are pinned with a ``ModelPrice`` override so every number below is exact:
``openai/gpt-4o-mini`` costs $0 per input token and $0.01 per output token (10 000 USD per
million). Rules relied on (backend/budget/README.md, backend/policies/budget.py):

- The reservation is the worst case: estimated input tokens x input price + ``max_tokens`` x
  output price. Input is free and every request sends ``max_tokens=10``: $0.10 exactly.
- The fake upstream reports 10 output tokens, so the real cost is also $0.10 exactly.
- A request is refused when ``spent + reserved + reservation > limit``, before it reaches the
  provider. A $1.00 cap therefore admits exactly 10 such requests whatever the interleaving
  (nothing is released: no request fails upstream), and spend ends at exactly $1.00, within the
  promised bound "cap + one request's cost" ($1.10).
- The refusal is 429 ``insufficient_quota`` (OpenAI) / 429 ``rate_limit_error`` (Anthropic, the
  Messages API's type for 429), with ``x-should-retry: false``, and the message names the cap and
  the ISO instant it resets (next Monday 00:00 UTC, or the 1st of next month 00:00 UTC).
- Spend is persisted in ``SpendCounter`` (one row per scope, id, period start) by the flush that
  follows each log-writer flush; the gateway reads those rows at startup.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from backend.data.models.keys import ApiKey
from backend.data.models.logs import RequestLog, SpendCounter
from backend.data.models.routing import ModelPrice
from backend.data.models.tenancy import App, Organization, User
from backend.security.api_keys import generate_key
from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.conftest import Stack, gateway_env
from tests.e2e.harness import GatewayProc, orm, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

MODEL = "openai/gpt-4o-mini"
MAX_TOKENS = 10
#: $0.01 per output token, input free.
OUT_PER_MTOK = Decimal(10_000)
PER_REQUEST = Decimal("0.10")
CAP = Decimal("1.00")
CHAT_PATH = "/v1/chat/completions"


# -- periods, computed here independently of backend.budget.periods ------------------------------


def week_start(now: dt.datetime) -> dt.datetime:
    monday = now.date() - dt.timedelta(days=now.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)


def month_start(now: dt.datetime) -> dt.datetime:
    return dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)


def next_month_start(now: dt.datetime) -> dt.datetime:
    return (month_start(now) + dt.timedelta(days=32)).replace(day=1)


def previous_month_start(now: dt.datetime) -> dt.datetime:
    return (month_start(now) - dt.timedelta(days=1)).replace(day=1)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def skip_near_period_edge(margin_s: float = 120.0) -> None:
    """The gateway's clock is real: a test straddling Monday 00:00 or the 1st would see a reset."""
    now = utcnow()
    for edge in (week_start(now) + dt.timedelta(days=7), next_month_start(now)):
        if (edge - now).total_seconds() < margin_s:
            pytest.skip(f"too close to the period boundary {edge.isoformat()}")


# -- the stack: seeded before the gateway starts (prices and counters are read at startup) -------


@dataclass
class CapsWorld:
    stack: Stack = field(init=False)
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


async def _key(world: CapsWorld, name: str, **owner: Any) -> None:
    secret, prefix, digest = generate_key()
    await ApiKey.create(prefix=prefix, key_hash=digest, name=name, **owner)
    world.keys[name] = secret
    world.names[f"{name}.prefix"] = prefix


async def _org(
    world: CapsWorld,
    name: str,
    cap: Decimal | None,
    period: str = "weekly",
    rollover: bool = False,
) -> Organization:
    org = await Organization.create(
        name=name,
        slug=f"{name.lower()}-{os.urandom(3).hex()}",
        spend_cap_usd=cap,
        cap_period=period,
        rollover=rollover,
    )
    world.ids[name] = org.id
    return org


async def _user(
    world: CapsWorld, name: str, org: Organization, weekly_cap: Decimal | None = None
) -> User:
    user = await User.create(
        name=name,
        email=f"{name.lower()}-{os.urandom(3).hex()}@caps.test",
        organization=org,
        weekly_cap_usd=weekly_cap,
    )
    world.ids[name] = user.id
    world.names[f"{name}.email"] = user.email
    return user


#: Rollover scenarios: (org name, period, rollover, previous period's spend or None for no row,
#: spend already in this period, the limit this period, requests of $0.10 that fit).
ROLLOVER = [
    # $0.40 used of $1.00 last week: $0.60 carries over -> $1.60 -> 16 requests.
    ("RollOn", "weekly", True, Decimal("0.40"), Decimal(0), Decimal("1.60"), 16),
    # Same history with rollover off: the plain $1.00 -> 10 requests.
    ("RollOff", "weekly", False, Decimal("0.40"), Decimal(0), Decimal("1.00"), 10),
    # Last month overspent ($1.30 of $1.00): nothing carries, nothing is taken away -> $1.00.
    ("RollOver", "monthly", True, Decimal("1.30"), Decimal(0), Decimal("1.00"), 10),
    # Nothing spent last week (no row at all): a full cap carries -> $2.00, the most possible;
    # $0.50 already spent this week (persisted before a restart) -> $1.50 left -> 15 requests.
    ("RollMax", "weekly", True, None, Decimal("0.50"), Decimal("2.00"), 15),
]


async def seed_caps(world: CapsWorld, now: dt.datetime) -> None:
    await ModelPrice.create(model=MODEL, input_per_mtok=0, output_per_mtok=OUT_PER_MTOK)
    # 1. an organization cap covering a user key and an app key (one process).
    org = await _org(world, "CapOrg", CAP)
    await _key(world, "org_user", user=await _user(world, "OrgMember", org))
    app = await App.create(name="CapApp", slug=f"capapp-{os.urandom(3).hex()}", organization=org)
    await _key(world, "org_app", app=app)
    # 1b. the same for two processes sharing the budget.
    org2 = await _org(world, "SharedOrg", CAP)
    await _key(world, "shared_user", user=await _user(world, "SharedMember", org2))
    app2 = await App.create(
        name="SharedApp", slug=f"sharedapp-{os.urandom(3).hex()}", organization=org2
    )
    await _key(world, "shared_app", app=app2)
    # 1c. a user weekly cap in an organization without a cap.
    free = await _org(world, "Uncapped", None)
    await _key(world, "capped_user", user=await _user(world, "Capped", free, CAP))
    # 2. rollover.
    for name, period, rollover, prev, cur, _, _ in ROLLOVER:
        o = await _org(world, name, CAP, period, rollover)
        await _key(world, name, user=await _user(world, f"{name}User", o))
        start = week_start(now) if period == "weekly" else month_start(now)
        before = start - dt.timedelta(days=7) if period == "weekly" else previous_month_start(now)
        if prev is not None:
            await SpendCounter.create(
                scope="org", scope_id=o.id, period_start=before, spent_usd=prev
            )
        if cur:
            await SpendCounter.create(scope="org", scope_id=o.id, period_start=start, spent_usd=cur)
    # 5. rate limits: 3 requests per minute, one key per SDK.
    rl = await _user(world, "Limited", free)
    await _key(world, "rate_openai", user=rl, rate_limit_rpm=3)
    await _key(world, "rate_anthropic", user=rl, rate_limit_rpm=3)
    # Embeddings count against caps too: a $0 and a $1 user weekly cap.
    await _key(world, "embed_zero", user=await _user(world, "EmbedZero", free, Decimal(0)))
    await _key(world, "embed_one", user=await _user(world, "EmbedOne", free, Decimal(1)))
    # A stream the upstream cuts short: a $5 weekly cap.
    await _key(world, "stream_cut", user=await _user(world, "StreamCut", free, Decimal(5)))
    # Persistence across a restart: a $0.30 weekly org cap.
    kept = await _org(world, "Kept", Decimal("0.30"))
    await _key(world, "kept", user=await _user(world, "KeptUser", kept))


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CapsWorld]:
    tmp = tmp_path_factory.mktemp("caps")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    fakes: dict[str, object] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    gw: GatewayProc | None = None
    try:
        world = CapsWorld()
        async with orm(db):
            await seed_caps(world, utcnow())
        # The Redis budget's 1 s timeout counts event-loop lag: on a shared CI host a burst of 20
        # requests per process can exceed it and get 503 instead of a verdict. The cap rules
        # under test do not depend on it.
        env = gateway_env(db, tmp, fakes) | {"SWITCHBOARD_BUDGET_TIMEOUT": "10"}
        gw = GatewayProc(env, tmp / "gateway.log").start()
        world.stack = Stack(gw, db, seeded, tmp=tmp, **fakes)  # type: ignore[arg-type]
        yield world
    finally:
        if gw is not None:
            gw.stop()
        for fake in fakes.values():
            fake.stop()  # type: ignore[attr-defined]
        await drop_database(db)


# -- calls -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    status: int
    #: OpenAI: error.code; Anthropic: error.type.
    code: str | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""


def _outcome_from_openai(err: openai.APIStatusError) -> Outcome:
    body = err.body if isinstance(err.body, dict) else {}
    return Outcome(
        False, err.status_code, body.get("code"), str(body.get("message", "")),
        dict(err.response.headers),
    )  # fmt: skip


def _outcome_from_anthropic(err: anthropic.APIStatusError) -> Outcome:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error")
    if not isinstance(inner, dict):
        inner = {}
    return Outcome(
        False, err.status_code, inner.get("type"), str(inner.get("message", "")),
        dict(err.response.headers),
    )  # fmt: skip


async def call_openai(client: openai.AsyncOpenAI, stream: bool, content: str = "hi") -> Outcome:
    messages: Any = [{"role": "user", "content": content}]
    try:
        if stream:
            chunks = await client.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=MAX_TOKENS, stream=True
            )
            text = ""
            async for chunk in chunks:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
            return Outcome(True, 200, text=text)
        resp = await client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=MAX_TOKENS
        )
        return Outcome(True, 200, text=resp.choices[0].message.content or "")
    except openai.APIStatusError as err:
        return _outcome_from_openai(err)


async def call_anthropic(
    client: anthropic.AsyncAnthropic, stream: bool, content: str = "hi"
) -> Outcome:
    messages: Any = [{"role": "user", "content": content}]
    try:
        if stream:
            events = await client.messages.create(
                model=MODEL, messages=messages, max_tokens=MAX_TOKENS, stream=True
            )
            text = ""
            async for ev in events:
                if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                    text += ev.delta.text
            return Outcome(True, 200, text=text)
        resp = await client.messages.create(model=MODEL, messages=messages, max_tokens=MAX_TOKENS)
        return Outcome(True, 200, text="".join(b.text for b in resp.content if b.type == "text"))
    except anthropic.APIStatusError as err:
        return _outcome_from_anthropic(err)


async def call(sdk: str, gw: GatewayProc, key: str, stream: bool) -> Outcome:
    if sdk == "openai":
        return await call_openai(oai(gw, key), stream)
    return await call_anthropic(ant(gw, key), stream)


def oai(gw: GatewayProc, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0)


def ant(gw: GatewayProc, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=key, max_retries=0)


def queue_priced_replies(stack: Stack, n: int, delay: float = 0.0) -> None:
    """``n`` answers of exactly 10 output tokens ($0.10); the delay keeps requests in flight."""
    stack.reset()
    for i in range(n):
        stack.openai.replies.append(
            Reply(text=f"answer {i}", input_tokens=7, output_tokens=10, delay=delay)
        )


def upstream_calls(stack: Stack) -> int:
    return sum(1 for r in stack.openai.requests if r.path.endswith("/chat/completions"))


async def wait_spend(
    db: str, scope: str, scope_id: int, start: dt.datetime, want: Decimal
) -> Decimal:
    """The persisted counter once it reaches ``want`` (or its last value after a timeout)."""
    deadline = time.monotonic() + 10
    value = Decimal(-1)
    while time.monotonic() < deadline:
        async with orm(db):
            row = await SpendCounter.get_or_none(scope=scope, scope_id=scope_id, period_start=start)
        value = Decimal(row.spent_usd) if row is not None else Decimal(0)
        if value >= want:
            # One more flush interval: a counter must not keep growing past the cap.
            await asyncio.sleep(0.5)
            async with orm(db):
                row = await SpendCounter.get(scope=scope, scope_id=scope_id, period_start=start)
            return Decimal(row.spent_usd)
        await asyncio.sleep(0.1)
    return value


async def wait_org_rows(db: str, n: int, **filters: Any) -> list[RequestLog]:
    deadline = time.monotonic() + 10
    rows: list[RequestLog] = []
    while time.monotonic() < deadline:
        async with orm(db):
            rows = await RequestLog.filter(superseded=False, **filters).order_by("id")
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.1)
    return rows


def assert_cap_refusal(o: Outcome, sdk: str, cap_name: str, resets: dt.datetime) -> None:
    assert o.status == 429, o
    if sdk == "openai":
        assert o.code == "insufficient_quota", o
    else:
        assert o.code == "rate_limit_error", o
    assert cap_name in o.message, o.message
    assert f"It resets at {resets.isoformat()}" in o.message, o.message
    assert o.headers.get("x-should-retry") == "false"


# -- 1. concurrency --------------------------------------------------------------------------


async def run_concurrent(calls: list[Any], stack: Stack) -> tuple[list[Outcome], list[Outcome]]:
    outcomes = await asyncio.gather(*calls)
    ok = [o for o in outcomes if o.ok]
    refused = [o for o in outcomes if not o.ok]
    return ok, refused


async def test_org_cap_holds_under_40_concurrent_requests(world: CapsWorld) -> None:
    """40 concurrent requests (OpenAI SDK, half streamed, half on the org's app key) against an
    organization cap of $1.00 at $0.10 each: exactly 10 pass, 30 get the org cap error, and the
    org's persisted spend is $1.00 (<= cap + one request)."""
    skip_near_period_edge()
    stack = world.stack
    queue_priced_replies(stack, 40, delay=0.3)
    calls = [
        call_openai(oai(stack.gateway, world.keys["org_app" if i % 2 else "org_user"]), i % 4 < 2)
        for i in range(40)
    ]
    ok, refused = await run_concurrent(calls, stack)
    now = utcnow()
    name = f"organization CapOrg weekly API spend cap (${CAP})"
    assert len(ok) == 10 and len(refused) == 30, [o.message for o in refused[:3]]
    for o in refused:
        assert_cap_refusal(o, "openai", name, week_start(now) + dt.timedelta(days=7))
        assert "($1.00 of $1.00 spent or reserved this period, request needs up to $0.10)" in (
            o.message
        )
    assert all(o.text.startswith("answer ") for o in ok)
    assert upstream_calls(stack) == 10, "a refused request reached the provider"
    org_id = world.ids["CapOrg"]
    spent = await wait_spend(stack.database_url, "org", org_id, week_start(now), CAP)
    assert spent == CAP <= CAP + PER_REQUEST
    rows = await wait_org_rows(stack.database_url, 40, org_id=org_id)
    assert len(rows) == 40
    assert sorted(r.status for r in rows) == [200] * 10 + [429] * 30
    assert {r.error_type for r in rows if r.status == 429} == {"quota"}
    assert sum((Decimal(r.cost_usd) for r in rows if r.cost_usd is not None), Decimal(0)) == CAP
    assert {r.output_tokens for r in rows if r.status == 200} == {10}


async def test_user_weekly_cap_holds_under_40_concurrent_requests(world: CapsWorld) -> None:
    """The same through the Anthropic SDK against a user's weekly cap of $1.00 (org uncapped):
    10 pass, 30 get 429 ``rate_limit_error`` naming the user's weekly cap and next Monday."""
    skip_near_period_edge()
    stack = world.stack
    queue_priced_replies(stack, 40, delay=0.3)
    client = ant(stack.gateway, world.keys["capped_user"])
    ok, refused = await run_concurrent(
        [call_anthropic(client, i % 2 == 0) for i in range(40)], stack
    )
    now = utcnow()
    email = world.names["Capped.email"]
    assert len(ok) == 10 and len(refused) == 30, [o.message for o in refused[:3]]
    for o in refused:
        assert_cap_refusal(
            o, "anthropic", f"weekly cap of user {email} ($1.00)", week_start(now) + dt.timedelta(7)
        )
    assert upstream_calls(stack) == 10
    spent = await wait_spend(stack.database_url, "user", world.ids["Capped"], week_start(now), CAP)
    assert spent == CAP
    # Spend is counted only where a cap applies: the uncapped organization has no counter.
    async with orm(stack.database_url):
        assert not await SpendCounter.filter(scope="org", scope_id=world.ids["Uncapped"]).exists()


def _shared_setup() -> str | None:
    db = os.environ.get("DATABASE_URL", "")
    if not db.startswith(("postgres://", "postgresql://")):
        return "needs DATABASE_URL=postgres://... (two processes share one PostgreSQL database)"
    if not redis_url():
        return "needs REDIS_URL (two processes share one budget through Redis)"
    return None


@pytest.mark.skipif(_shared_setup() is not None, reason=str(_shared_setup()))
async def test_two_gateways_share_one_org_cap(world: CapsWorld) -> None:
    """Two gateway processes on the same PostgreSQL database and the same Redis prefix: 40
    concurrent requests spread over both (both SDKs, user and app keys of one org) against a $1.00
    org cap. Exactly 10 pass in total, not 10 per process; persisted spend is $1.00."""
    skip_near_period_edge()
    stack = world.stack
    env = dict(stack.gateway.env)
    assert env.get("REDIS_URL") and env.get("SWITCHBOARD_REDIS_PREFIX")
    second = GatewayProc(env, stack.tmp / f"gateway2-{uuid.uuid4().hex[:6]}.log").start()
    # One client per gateway, key and SDK, closed at the end, with a 60 s timeout. With a fresh
    # client per call (forty, never closed) one call once waited the SDK's default 600 s while
    # its answer sat unread on the socket: not understood, but a hang must not stall the suite.
    sdk_clients: dict[tuple[str, str, str], Any] = {}

    def client(kind: str, gw: GatewayProc, key: str) -> Any:
        made = sdk_clients.get((kind, gw.url, key))
        if made is None:
            made = (oai if kind == "openai" else ant)(gw, key).with_options(timeout=60)
            sdk_clients[(kind, gw.url, key)] = made
        return made

    try:
        queue_priced_replies(stack, 40, delay=0.3)
        calls = []
        for i in range(40):
            gw = stack.gateway if i % 2 else second
            key = world.keys["shared_app" if i % 3 else "shared_user"]
            if i % 4 < 2:
                calls.append(call_openai(client("openai", gw, key), i % 8 < 4))
            else:
                calls.append(call_anthropic(client("anthropic", gw, key), i % 8 < 4))
        outcomes = await asyncio.gather(*calls)
        now = utcnow()
        ok = [o for o in outcomes if o.ok]
        assert len(ok) == 10, [o.message for o in outcomes if not o.ok][:3]
        name = f"organization SharedOrg weekly API spend cap (${CAP})"
        resets = week_start(now) + dt.timedelta(days=7)
        for i, o in enumerate(outcomes):
            if not o.ok:
                assert_cap_refusal(o, "openai" if i % 4 < 2 else "anthropic", name, resets)
        assert upstream_calls(stack) == 10
        org_id = world.ids["SharedOrg"]
        rows = await wait_org_rows(stack.database_url, 40, org_id=org_id)
        assert sorted(r.status for r in rows) == [200] * 10 + [429] * 30
        spent = await wait_spend(stack.database_url, "org", org_id, week_start(now), CAP)
        assert spent == CAP
    finally:
        for made in sdk_clients.values():
            await made.close()
        second.stop()


# -- 2. rollover -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("org", "period", "rollover", "prev", "cur", "limit", "fits"),
    ROLLOVER,
    ids=[r[0] for r in ROLLOVER],
)
async def test_rollover_across_period_boundary(
    world: CapsWorld,
    org: str,
    period: str,
    rollover: bool,
    prev: Decimal | None,
    cur: Decimal,
    limit: Decimal,
    fits: int,
) -> None:
    """Rollover rule (backend/budget/README.md): ``limit = cap + min(cap, max(0, cap - previous
    period's spend))`` when on, ``cap`` when off. The previous period's spend was seeded as a
    persisted ``SpendCounter`` before the gateway started, as a restart after the boundary finds
    it. Requests of $0.10 pass while they fit in ``limit - cur`` and the next one is refused."""
    skip_near_period_edge()
    stack = world.stack
    queue_priced_replies(stack, fits + 1)
    sdk = "anthropic" if fits % 2 else "openai"  # both SDKs over the scenarios
    passed = 0
    refusal: Outcome | None = None
    for i in range(fits + 1):
        o = await call(sdk, stack.gateway, world.keys[org], i % 2 == 0)
        if not o.ok:
            refusal = o
            break
        passed += 1
    assert passed == fits, f"{passed} passed, expected {fits} (limit ${limit}, ${cur} spent)"
    assert refusal is not None
    now = utcnow()
    resets = week_start(now) + dt.timedelta(days=7) if period == "weekly" else next_month_start(now)
    assert_cap_refusal(refusal, sdk, f"organization {org} {period} API spend cap ($1.00)", resets)
    used = cur + fits * PER_REQUEST
    assert f"(${used:.2f} of ${limit:.2f} spent or reserved this period" in refusal.message
    if limit != CAP:
        assert f"; ${limit:.2f} this period with rollover" in refusal.message
    else:
        assert "with rollover" not in refusal.message
    start = week_start(now) if period == "weekly" else month_start(now)
    spent = await wait_spend(stack.database_url, "org", world.ids[org], start, used)
    assert spent == used


# -- 5. per-key rate limit -------------------------------------------------------------------


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_per_key_rate_limit(world: CapsWorld, sdk: str) -> None:
    """``ApiKey.rate_limit_rpm = 3``: three requests in the minute pass, the fourth gets 429
    (``rate_limit_exceeded`` / ``rate_limit_error``) with a ``Retry-After`` of the seconds until
    the first one leaves the sliding window (a request counts for 60 to 61 s), and does not
    reach the provider."""
    stack = world.stack
    queue_priced_replies(stack, 4)
    key = world.keys[f"rate_{sdk}"]
    outcomes = [await call(sdk, stack.gateway, key, i % 2 == 0) for i in range(4)]
    assert [o.ok for o in outcomes] == [True, True, True, False], outcomes[-1]
    refused = outcomes[-1]
    assert refused.status == 429
    assert refused.code == ("rate_limit_exceeded" if sdk == "openai" else "rate_limit_error")
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 61
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert "3 requests per minute" in refused.message
    assert world.names[f"rate_{sdk}.prefix"] in refused.message
    assert upstream_calls(stack) == 3


# -- embeddings count against caps ---------------------------------------------------------------


async def test_embeddings_count_against_the_cap(world: CapsWorld) -> None:
    """``/v1/embeddings`` is reserved and settled like chat: a $0 cap refuses a priced embedding
    model (429, before the provider) and an unpriced one (403 naming it); under a $1 cap the
    answer's cost lands in the user's spend counter."""
    skip_near_period_edge()
    stack = world.stack
    stack.reset()
    zero = oai(stack.gateway, world.keys["embed_zero"])
    with pytest.raises(openai.RateLimitError) as refused:
        await zero.embeddings.create(model="openai/text-embedding-3-small", input="hello")
    assert "weekly cap of user" in str(refused.value)
    unpriced = "openai/ft:text-embedding:acme:custom:e1"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await zero.embeddings.create(model=unpriced, input="hello")
    assert unpriced in str(denied.value)
    assert not any(r.path.endswith("/embeddings") for r in stack.openai.requests)

    stack.openai.replies.append(Reply(input_tokens=5000))
    one = oai(stack.gateway, world.keys["embed_one"])
    await one.embeddings.create(model="openai/text-embedding-3-small", input="hello")
    rows = await wait_org_rows(stack.database_url, 1, user_id=world.ids["EmbedOne"])
    cost = Decimal(rows[0].cost_usd)
    assert rows[0].input_tokens == 5000 and cost > 0
    start = week_start(utcnow())
    assert await wait_spend(stack.database_url, "user", world.ids["EmbedOne"], start, cost) == cost


# -- a stream the upstream cuts short is billed ---------------------------------------------------


async def test_a_stream_cut_by_the_upstream_is_billed(world: CapsWorld) -> None:
    """The upstream drops the connection mid-stream after 19 chunks of text and before any usage
    (OpenAI reports it in the last chunk). The provider bills what it generated, so the gateway
    bills it like an abandoned stream: the input estimate plus the output relayed so far, marked
    estimated, under the error's own status; the spend counter equals the row's cost."""
    skip_near_period_edge()
    stack = world.stack
    stack.reset()
    stack.openai.replies.append(
        Reply(text="abcdefghij" * 40, chunks=40, drop_after=20, input_tokens=7, output_tokens=10)
    )
    client = oai(stack.gateway, world.keys["stream_cut"])
    messages: Any = [{"role": "user", "content": "tell me a long story"}]
    received = ""
    with pytest.raises(openai.APIError):
        chunks = await client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=200, stream=True
        )
        async for chunk in chunks:
            for choice in chunk.choices:
                received += choice.delta.content or ""
    assert len(received) >= 100, received  # output reached the client before the cut
    rows = await wait_org_rows(stack.database_url, 1, user_id=world.ids["StreamCut"])
    assert len(rows) == 1
    row = rows[0]
    assert row.streamed and row.status >= 500 and row.error_type != "client_closed", row.status
    # Output: the text relayed at ~4 characters per token (input is free here).
    assert row.output_tokens >= len(received) // 4 and row.input_tokens >= 1
    cost = Decimal(row.cost_usd) if row.cost_usd is not None else Decimal(0)
    assert cost == Decimal(row.output_tokens) * OUT_PER_MTOK / Decimal(1_000_000) > 0
    assert "estimated" in (row.error_message or ""), row.error_message
    start = week_start(utcnow())
    spent = await wait_spend(stack.database_url, "user", world.ids["StreamCut"], start, cost)
    assert spent == cost


# -- counters survive a restart ----------------------------------------------------------------


async def _forget_redis(prefix: str) -> int:
    """Drop every Redis key of this stack's prefix, as a Redis restart without persistence would."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url() or "")
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()


async def test_spend_survives_a_restart(world: CapsWorld) -> None:
    """Three $0.10 requests fill a $0.30 cap; after a gateway restart (and, with Redis, after
    its keys are gone too, so the budget must reseed from ``SpendCounter``) the fourth is refused
    with "$0.30 of $0.30" (the clean stop flushes the counters)."""
    skip_near_period_edge()
    stack = world.stack
    queue_priced_replies(stack, 4)
    key = world.keys["kept"]
    assert [(await call("openai", stack.gateway, key, False)).ok for _ in range(3)] == [True] * 3
    assert stack.gateway.stop() == 0
    prefix = stack.gateway.env.get("SWITCHBOARD_REDIS_PREFIX")
    if redis_url() and prefix:
        assert await _forget_redis(prefix) > 0
    stack.gateway.start()
    o = await call("anthropic", stack.gateway, key, False)
    assert_cap_refusal(
        o,
        "anthropic",
        "organization Kept weekly API spend cap ($0.30)",
        week_start(utcnow()) + dt.timedelta(days=7),
    )
    assert "($0.30 of $0.30 spent or reserved this period" in o.message
    assert upstream_calls(stack) == 3
