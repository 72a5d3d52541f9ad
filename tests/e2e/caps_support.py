"""Shared by the spend-cap e2e modules (``test_caps.py``: admission under concurrency and rate
limits; ``test_caps_accounting.py``: rollover, what is charged, persistence): the seeded world,
the gateway stack, SDK calls and waits.

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
from tests.e2e.harness import GatewayProc, fake_upstreams, orm, prepare_database, seed_basic
from tests.fakes.base import Reply

MODEL = "openai/gpt-4o-mini"
MAX_TOKENS = 10
#: $0.01 per output token, input free.
OUT_PER_MTOK = Decimal(10_000)
PER_REQUEST = Decimal("0.10")
CAP = Decimal("1.00")
CHAT_PATH = "/v1/chat/completions"
#: Bounds every SDK call (the SDKs' default is 600 s) and every wait for rows or counters.
SDK_TIMEOUT_S = 60.0
WAIT_S = 30.0


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
    """A fresh database seeded by ``seed_caps``, the fakes, and the gateway: a test module's
    world (import it as ``from tests.e2e.caps_support import world as world``)."""
    tmp = tmp_path_factory.mktemp("caps")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    with fake_upstreams() as fakes:
        gw: GatewayProc | None = None
        try:
            world = CapsWorld()
            async with orm(db):
                await seed_caps(world, utcnow())
            # The Redis budget's 1 s timeout counts event-loop lag: on a shared CI host a burst
            # of 20 requests per process can exceed it and get 503 instead of a verdict. The cap
            # rules under test do not depend on it.
            env = gateway_env(db, tmp, fakes) | {"SWITCHBOARD_BUDGET_TIMEOUT": "10"}
            gw = GatewayProc(env, tmp / "gateway.log").start()
            world.stack = Stack(gw, db, seeded, tmp=tmp, **fakes)  # type: ignore[arg-type]
            yield world
        finally:
            if gw is not None:
                gw.stop()
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
    """One call on a client of its own, closed after it (for sequences of single calls)."""
    if sdk == "openai":
        async with oai(gw, key) as client:
            return await call_openai(client, stream)
    async with ant(gw, key) as anthropic_client:
        return await call_anthropic(anthropic_client, stream)


def oai(gw: GatewayProc, key: str) -> openai.AsyncOpenAI:
    """An OpenAI SDK client of ``gw``; close it (``async with``). ``with_options(api_key=...,
    base_url=...)`` gives variants sharing its connections, closed with it."""
    return openai.AsyncOpenAI(
        base_url=gw.openai_base_url, api_key=key, max_retries=0, timeout=SDK_TIMEOUT_S
    )


def ant(gw: GatewayProc, key: str) -> anthropic.AsyncAnthropic:
    """An Anthropic SDK client of ``gw``; close it (``async with``), variants as for ``oai``."""
    return anthropic.AsyncAnthropic(
        base_url=gw.url, api_key=key, max_retries=0, timeout=SDK_TIMEOUT_S
    )


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
    """The persisted counter once it equals ``want``, or its last value after ``WAIT_S``.

    Call it when every request that can charge the counter has ended (answered, or its log row
    written): the counter cannot grow after that, so equality is final and no settling time is
    needed; a counter past ``want`` never equals it and is returned for the assertion to show.
    """
    deadline = time.monotonic() + WAIT_S
    value = Decimal(-1)
    while time.monotonic() < deadline:
        async with orm(db):
            row = await SpendCounter.get_or_none(scope=scope, scope_id=scope_id, period_start=start)
        value = Decimal(row.spent_usd) if row is not None else Decimal(0)
        if value == want:
            return value
        await asyncio.sleep(0.1)
    return value


async def wait_org_rows(db: str, n: int, **filters: Any) -> list[RequestLog]:
    """The log rows matching ``filters`` once there are ``n`` (or those there after ``WAIT_S``)."""
    deadline = time.monotonic() + WAIT_S
    rows: list[RequestLog] = []
    while time.monotonic() < deadline:
        async with orm(db):
            rows = await RequestLog.filter(superseded=False, **filters).order_by("id")
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.1)
    return rows


def shared_setup() -> str | None:
    """Why two gateway processes cannot share one budget here (None: they can)."""
    db = os.environ.get("DATABASE_URL", "")
    if not db.startswith(("postgres://", "postgresql://")):
        return "needs DATABASE_URL=postgres://... (two processes share one PostgreSQL database)"
    if not redis_url():
        return "needs REDIS_URL (two processes share one budget through Redis)"
    return None


def assert_cap_refusal(o: Outcome, sdk: str, cap_name: str, resets: dt.datetime) -> None:
    assert o.status == 429, o
    if sdk == "openai":
        assert o.code == "insufficient_quota", o
    else:
        assert o.code == "rate_limit_error", o
    assert cap_name in o.message, o.message
    assert f"It resets at {resets.isoformat()}" in o.message, o.message
    assert o.headers.get("x-should-retry") == "false"
