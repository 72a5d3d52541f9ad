"""Accounting matches the request log exactly after a mixed run (issue 4, "Must show" 4).

One gateway, one fresh database, a run mixing both SDKs, streamed and plain answers, four
providers, fallbacks (a failing primary with a ``FallbackChain``), upstream errors, a cut stream,
a cap refusal, an unknown model and an unknown key. Then, over the whole database:

- ``UsageRollup`` summed over its hourly buckets, per (user, app, org, model, provider), equals
  the same sums over the non-superseded ``RequestLog`` rows: requests, errors, input, output and
  cached tokens, cost. Rules relied on (backend/data/log_writer.py): rollups count every
  non-superseded row, errors included (status >= 400); a dimension that is absent is 0; the model
  is the one that answered (``actual_model``), else the requested one; a null (unknown) cost adds 0.
- Superseded rows (the fallback's failed attempts) carry no tokens and no cost.
- Every row's cost is its token breakdown priced with the ``ModelPrice`` overrides seeded here
  (cached input at the cached rate), so the log itself can be recomputed.
- The persisted ``SpendCounter`` of each capped scope (Acme's user weekly cap, Acme's monthly
  org cap) equals the sum of the costs of that scope's rows in the period. Spend is counted only
  where a cap applies (backend/budget/README.md), so the uncapped Globex has no counter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from backend.data.models.keys import ApiKey
from backend.data.models.logs import RequestLog, SpendCounter, UsageRollup
from backend.data.models.routing import FallbackChain, ModelPrice
from backend.data.models.tenancy import Organization, User
from backend.security.api_keys import generate_key
from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import Stack, gateway_env
from tests.e2e.harness import GatewayProc, Seeded, fake_upstreams, orm, prepare_database, seed_basic
from tests.fakes.base import Reply

MINI = "openai/gpt-4o-mini"
PRIMARY = "openai/gpt-4.1"  # always fails here; its chain falls back to CLAUDE
CLAUDE = "anthropic/claude-sonnet-4-5"
GEMINI = "gemini/gemini-2.5-flash"
OLLAMA = "ollama/llama3.2"  # not overridden: Ollama models cost $0

#: USD per million tokens: (input, output, cached input or None = input rate).
PRICES: dict[str, tuple[Decimal, Decimal, Decimal | None]] = {
    MINI: (Decimal(1000), Decimal(2000), Decimal(500)),
    PRIMARY: (Decimal(5000), Decimal(5000), None),
    CLAUDE: (Decimal(3000), Decimal(15000), None),
    GEMINI: (Decimal(700), Decimal(1300), None),
}


def price_of(model: str, inp: int, out: int, cached: int) -> Decimal:
    if model == OLLAMA:
        return Decimal(0)
    pin, pout, pcached = PRICES[model]
    rate_cached = pcached if pcached is not None else pin
    return ((inp - cached) * pin + cached * rate_cached + out * pout) / Decimal(1_000_000)


@dataclass
class World:
    stack: Stack = field(init=False)
    seeded: Seeded = field(init=False)
    tiny_key: str = ""


async def seed(db: str, world: World) -> None:
    async with orm(db):
        for model, (pin, pout, pcached) in PRICES.items():
            await ModelPrice.create(
                model=model, input_per_mtok=pin, output_per_mtok=pout, cached_per_mtok=pcached
            )
        await FallbackChain.create(primary_model=PRIMARY, chain=[CLAUDE])
        s = world.seeded
        await Organization.filter(id=s.org_id).update(
            spend_cap_usd=Decimal(1000), cap_period="monthly"
        )
        await User.filter(id=s.user_id).update(weekly_cap_usd=Decimal(500))
        # A user of the same organization whose weekly cap refuses anything priced.
        org = await Organization.get(id=s.org_id)
        tiny = await User.create(
            name="Tiny",
            email=f"tiny-{os.urandom(3).hex()}@acme.test",
            organization=org,
            weekly_cap_usd=Decimal("0.00001"),
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, user=tiny)
        world.tiny_key = secret


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("accounting")
    db = await create_database(tmp)
    await prepare_database(db)
    w = World()
    w.seeded = await seed_basic(db)
    await seed(db, w)
    with fake_upstreams() as fakes:
        gw: GatewayProc | None = None
        try:
            gw = GatewayProc(gateway_env(db, tmp, fakes), tmp / "gateway.log").start()
            w.stack = Stack(gw, db, w.seeded, tmp=tmp, **fakes)  # type: ignore[arg-type]
            yield w
        finally:
            if gw is not None:
                gw.stop()
            await drop_database(db)


# -- one step of the mixed run ---------------------------------------------------------------


@dataclass
class Step:
    name: str
    sdk: str  # openai | anthropic
    key: str  # user | app | other | tiny | bogus
    model: str
    stream: bool
    #: provider name -> replies to queue there before the call.
    replies: dict[str, list[Reply]]
    status: int
    #: (input, output) tokens of the answer the client saw, when it succeeds.
    tokens: tuple[int, int] | None = None
    #: The log row's status when it differs from what the client got first (a cut stream).
    logged: int | None = None


def steps() -> list[Step]:
    fail = Reply(status=500, error_message="primary down")
    return [
        Step("openai json", "openai", "user", MINI, False,
             {"openai": [Reply(text="one", input_tokens=11, output_tokens=7)]}, 200, (11, 7)),
        Step("openai stream, cached input", "openai", "user", MINI, True,
             {"openai": [Reply(text="two parts", input_tokens=13, output_tokens=9,
                               cached_tokens=4)]}, 200, (13, 9)),
        Step("anthropic json on app key", "anthropic", "app", CLAUDE, False,
             {"anthropic": [Reply(text="three", input_tokens=21, output_tokens=4)]}, 200,
             (21, 4)),
        Step("anthropic stream on app key", "anthropic", "app", CLAUDE, True,
             {"anthropic": [Reply(text="four four", input_tokens=17, output_tokens=6)]}, 200,
             (17, 6)),
        Step("fallback json", "openai", "user", PRIMARY, False,
             {"openai": [fail, fail],
              "anthropic": [Reply(text="five", input_tokens=30, output_tokens=10)]}, 200,
             (30, 10)),
        Step("fallback stream", "anthropic", "app", PRIMARY, True,
             {"openai": [fail, fail],
              "anthropic": [Reply(text="six", input_tokens=5, output_tokens=3)]}, 200, (5, 3)),
        Step("gemini, other org", "openai", "other", GEMINI, False,
             {"gemini": [Reply(text="seven", input_tokens=9, output_tokens=2)]}, 200, (9, 2)),
        Step("gemini stream, other org", "anthropic", "other", GEMINI, True,
             {"gemini": [Reply(text="eight", input_tokens=4, output_tokens=4)]}, 200, (4, 4)),
        Step("ollama stream, free", "openai", "user", OLLAMA, True,
             {"ollama": [Reply(text="ten", input_tokens=6, output_tokens=2)]}, 200, (6, 2)),
        Step("upstream 400", "openai", "user", MINI, False,
             {"openai": [Reply(status=400, error_message="bad thing")]}, 400),
        Step("upstream 500 twice, no chain", "anthropic", "app", MINI, False,
             {"openai": [fail, fail]}, 502),
        Step("stream cut after message_start", "anthropic", "user", CLAUDE, True,
             {"anthropic": [Reply(text="a long answer cut short", input_tokens=12,
                                  output_tokens=8, drop_after=3)]}, 200, None, 503),
        Step("unknown model", "openai", "app", "openai-nope/none", False, {}, 404),
        Step("over the user's weekly cap", "anthropic", "tiny", MINI, False, {}, 429),
        Step("unknown key", "openai", "bogus", MINI, False, {}, 401),
        Step("openai json again", "openai", "app", MINI, False,
             {"openai": [Reply(text="nine", input_tokens=3, output_tokens=1)]}, 200, (3, 1)),
    ]  # fmt: skip


def key_of(world: World, name: str) -> str:
    s = world.seeded
    return {
        "user": s.user_key,
        "app": s.app_key,
        "other": s.other_key,
        "tiny": world.tiny_key,
        "bogus": "sb-00000000-not-a-real-key-at-all",
    }[name]


def run_step(world: World, step: Step) -> tuple[int, tuple[int, int] | None]:
    """Drive one step through its SDK; (status seen by the client, usage seen by the client)."""
    stack = world.stack
    key = key_of(world, step.key)
    msgs: Any = [{"role": "user", "content": f"step {step.name}"}]
    try:
        if step.sdk == "openai":
            oc = openai.OpenAI(base_url=stack.gateway.openai_base_url, api_key=key, max_retries=0)
            if not step.stream:
                r = oc.chat.completions.create(model=step.model, messages=msgs, max_tokens=50)
                assert r.usage is not None
                return 200, (r.usage.prompt_tokens, r.usage.completion_tokens)
            usage = None
            for chunk in oc.chat.completions.create(
                model=step.model,
                messages=msgs,
                max_tokens=50,
                stream=True,
                stream_options={"include_usage": True},
            ):
                if chunk.usage is not None:
                    usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            return 200, usage
        ac = anthropic.Anthropic(base_url=stack.gateway.url, api_key=key, max_retries=0)
        if not step.stream:
            m = ac.messages.create(model=step.model, messages=msgs, max_tokens=50)
            return 200, (m.usage.input_tokens, m.usage.output_tokens)
        with ac.messages.stream(model=step.model, messages=msgs, max_tokens=50) as s:
            final = s.get_final_message()
        return 200, (final.usage.input_tokens, final.usage.output_tokens)
    except openai.APIStatusError as err:
        return err.status_code, None
    except anthropic.APIStatusError as err:
        return err.status_code, None
    except (openai.APIError, anthropic.APIError):
        return 200, None  # the stream started (200) and broke off


# -- the comparison --------------------------------------------------------------------------

Dims = tuple[int, int, int, str, str]


def _zero() -> dict[str, Any]:
    return {"requests": 0, "errors": 0, "in": 0, "out": 0, "cached": 0, "cost": Decimal(0)}


def sums_from_logs(rows: list[RequestLog]) -> dict[Dims, dict[str, Any]]:
    out: dict[Dims, dict[str, Any]] = defaultdict(_zero)
    for r in rows:
        dims = (
            r.user_id or 0,
            r.app_id or 0,
            r.org_id or 0,
            r.actual_model or r.requested_model or "",
            r.provider or "",
        )
        agg = out[dims]
        agg["requests"] += 1
        agg["errors"] += 1 if r.status >= 400 else 0
        agg["in"] += r.input_tokens
        agg["out"] += r.output_tokens
        agg["cached"] += r.cached_tokens
        agg["cost"] += Decimal(r.cost_usd) if r.cost_usd is not None else 0
    return dict(out)


def sums_from_rollups(rows: list[UsageRollup]) -> dict[Dims, dict[str, Any]]:
    out: dict[Dims, dict[str, Any]] = defaultdict(_zero)
    for r in rows:
        agg = out[(r.user_id, r.app_id, r.org_id, r.model, r.provider)]
        agg["requests"] += r.requests
        agg["errors"] += r.errors
        agg["in"] += r.input_tokens
        agg["out"] += r.output_tokens
        agg["cached"] += r.cached_tokens
        agg["cost"] += Decimal(r.cost_usd)
    return dict(out)


async def settled_rows(db: str, want: int, timeout: float = 15.0) -> list[RequestLog]:
    """All log rows once ``want`` exist, after one more flush round for rollups and counters."""
    deadline = time.monotonic() + timeout
    rows: list[RequestLog] = []
    while time.monotonic() < deadline:
        async with orm(db):
            rows = await RequestLog.all().order_by("id")
        if len(rows) >= want:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.6)  # counters flush right after the log batch that carried them
    async with orm(db):
        return await RequestLog.all().order_by("id")


def week_start(now: dt.datetime) -> dt.datetime:
    monday = now.date() - dt.timedelta(days=now.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)


async def test_accounting_matches_request_log(world: World) -> None:
    stack = world.stack
    plan = steps()
    started = dt.datetime.now(dt.UTC)
    for step in plan:
        stack.reset()
        for provider, replies in step.replies.items():
            getattr(stack, provider).replies.extend(replies)
        status, usage = run_step(world, step)
        assert status == step.status, step.name
        if step.tokens is not None:
            assert usage == step.tokens, step.name
    finished = dt.datetime.now(dt.UTC)
    if week_start(started) != week_start(finished) or started.month != finished.month:
        pytest.skip("the run straddled a cap period boundary")

    # One row per request, plus a superseded row per failed attempt that another replaced: the
    # primary twice (one same-model retry) in each fallback, and the first of the two failed
    # attempts of the 502 (its last attempt is the request's own row).
    rows = await settled_rows(stack.database_url, len(plan) + 5)
    assert len(rows) == len(plan) + 5
    live = [r for r in rows if not r.superseded]
    superseded = [r for r in rows if r.superseded]
    assert len(live) == len(plan)
    assert sorted((r.actual_model or "", r.status) for r in superseded) == [(PRIMARY, 502)] * 4 + [
        (MINI, 502)
    ]
    assert all(r.cost_usd is None and r.input_tokens == r.output_tokens == 0 for r in superseded)
    fallbacks = [r for r in live if r.requested_model == PRIMARY]
    assert [(r.actual_model, r.attempts) for r in fallbacks] == [(CLAUDE, 3), (CLAUDE, 3)]

    # Every row's cost is its own tokens priced; failures before any token cost nothing.
    for r in live:
        if r.status < 400 or r.input_tokens or r.output_tokens:
            assert r.actual_model is not None
            want = price_of(r.actual_model, r.input_tokens, r.output_tokens, r.cached_tokens)
            assert r.cost_usd is not None and Decimal(r.cost_usd) == want, r.request_id
        else:
            assert r.cost_usd in (None, Decimal(0)), r.request_id
    cut = [r for r in live if r.streamed and r.error_type is not None]
    assert len(cut) == 1 and cut[0].input_tokens == 12  # billed what the provider had counted
    assert [r.status for r in live] == [s.logged or s.status for s in plan]
    assert sum(r.cached_tokens for r in live) == 4

    async with orm(stack.database_url):
        rollups = await UsageRollup.all()
        counters = {
            (c.scope, c.scope_id, c.period_start): Decimal(c.spent_usd)
            for c in await SpendCounter.all()
        }
    assert sums_from_rollups(rollups) == sums_from_logs(live)
    total = sum((Decimal(r.cost_usd) for r in live if r.cost_usd is not None), Decimal(0))
    assert total > 0

    s = world.seeded
    month = dt.datetime(started.year, started.month, 1, tzinfo=dt.UTC)
    org_cost = sum(
        (Decimal(r.cost_usd) for r in live if r.org_id == s.org_id and r.cost_usd is not None),
        Decimal(0),
    )
    user_cost = sum(
        (
            Decimal(r.cost_usd)
            for r in live
            if r.user_id == s.user_id and r.app_id is None and r.cost_usd is not None
        ),
        Decimal(0),
    )
    assert org_cost > user_cost > 0
    assert counters == {
        ("org", s.org_id, month): org_cost,
        ("user", s.user_id, week_start(started)): user_cost,
    }
