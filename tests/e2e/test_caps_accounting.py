"""Spend caps through the real gateway, what they count and what they keep (issue 4, "Must show"
2): rollover across a period boundary, embeddings and a stream the upstream cuts short charged
like chat, and spend that survives a gateway restart (and a Redis that lost its keys).
Admission under concurrency and the per-key rate limit are ``test_caps.py``; the prices, rules
and shared world are ``caps_support.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.dbutil import redis_url
from tests.e2e.caps_support import (
    CAP,
    MODEL,
    OUT_PER_MTOK,
    PER_REQUEST,
    ROLLOVER,
    CapsWorld,
    Outcome,
    assert_cap_refusal,
    call,
    month_start,
    next_month_start,
    oai,
    queue_priced_replies,
    skip_near_period_edge,
    upstream_calls,
    utcnow,
    wait_org_rows,
    wait_spend,
    week_start,
)
from tests.e2e.caps_support import world as world
from tests.fakes.base import Reply

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


# -- embeddings count against caps ---------------------------------------------------------------


async def test_embeddings_count_against_the_cap(world: CapsWorld) -> None:
    """``/v1/embeddings`` is reserved and settled like chat: a $0 cap refuses a priced embedding
    model (429, before the provider) and an unpriced one (403 naming it); under a $1 cap the
    answer's cost lands in the user's spend counter."""
    skip_near_period_edge()
    stack = world.stack
    stack.reset()
    unpriced = "openai/ft:text-embedding:acme:custom:e1"
    async with oai(stack.gateway, world.keys["embed_zero"]) as zero:
        with pytest.raises(openai.RateLimitError) as refused:
            await zero.embeddings.create(model="openai/text-embedding-3-small", input="hello")
        assert "weekly cap of user" in str(refused.value)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await zero.embeddings.create(model=unpriced, input="hello")
        assert unpriced in str(denied.value)
        assert not any(r.path.endswith("/embeddings") for r in stack.openai.requests)

        stack.openai.replies.append(Reply(input_tokens=5000))
        one = zero.with_options(api_key=world.keys["embed_one"])
        await one.embeddings.create(model="openai/text-embedding-3-small", input="hello")
    rows = await wait_org_rows(stack.database_url, 1, user_id=world.ids["EmbedOne"])
    assert rows[0].cost_usd is not None, "the embedding was not priced"
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
    messages: Any = [{"role": "user", "content": "tell me a long story"}]
    received = ""
    async with oai(stack.gateway, world.keys["stream_cut"]) as client:
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
