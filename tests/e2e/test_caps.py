"""Spend caps and per-key rate limits through the real gateway under concurrency (issue 4, "Must
show" 1 and 5): 40 concurrent requests against an organization cap, a user's weekly cap, and one
organization cap shared by two gateway processes; three requests per minute per key. Rollover,
what is charged and persistence are ``test_caps_accounting.py``; the prices, the rules relied on
and the shared world are ``caps_support.py``.

Each test makes one SDK client (per SDK), with an explicit timeout, and closes it; the other keys
and gateways are ``with_options`` variants sharing its connections.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable
from decimal import Decimal

import pytest

from backend.data.models.logs import SpendCounter
from tests.e2e.caps_support import (
    CAP,
    PER_REQUEST,
    CapsWorld,
    Outcome,
    ant,
    assert_cap_refusal,
    call,
    call_anthropic,
    call_openai,
    oai,
    queue_priced_replies,
    shared_setup,
    skip_near_period_edge,
    upstream_calls,
    utcnow,
    wait_org_rows,
    wait_spend,
    week_start,
)
from tests.e2e.caps_support import world as world
from tests.e2e.harness import GatewayProc, orm

# -- 1. concurrency --------------------------------------------------------------------------


async def run_concurrent(calls: list[Awaitable[Outcome]]) -> tuple[list[Outcome], list[Outcome]]:
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
    async with oai(stack.gateway, world.keys["org_user"]) as user_client:
        app_client = user_client.with_options(api_key=world.keys["org_app"])
        ok, refused = await run_concurrent(
            [call_openai(app_client if i % 2 else user_client, i % 4 < 2) for i in range(40)]
        )
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
    rows = await wait_org_rows(stack.database_url, 40, org_id=org_id)
    assert len(rows) == 40
    assert sorted(r.status for r in rows) == [200] * 10 + [429] * 30
    assert {r.error_type for r in rows if r.status == 429} == {"quota"}
    assert sum((Decimal(r.cost_usd) for r in rows if r.cost_usd is not None), Decimal(0)) == CAP
    assert {r.output_tokens for r in rows if r.status == 200} == {10}
    # Every request is logged, so nothing can charge the counter any more: it is final.
    spent = await wait_spend(stack.database_url, "org", org_id, week_start(now), CAP)
    assert spent == CAP <= CAP + PER_REQUEST


async def test_user_weekly_cap_holds_under_40_concurrent_requests(world: CapsWorld) -> None:
    """The same through the Anthropic SDK against a user's weekly cap of $1.00 (org uncapped):
    10 pass, 30 get 429 ``rate_limit_error`` naming the user's weekly cap and next Monday."""
    skip_near_period_edge()
    stack = world.stack
    queue_priced_replies(stack, 40, delay=0.3)
    async with ant(stack.gateway, world.keys["capped_user"]) as client:
        ok, refused = await run_concurrent([call_anthropic(client, i % 2 == 0) for i in range(40)])
    now = utcnow()
    email = world.names["Capped.email"]
    assert len(ok) == 10 and len(refused) == 30, [o.message for o in refused[:3]]
    for o in refused:
        assert_cap_refusal(
            o, "anthropic", f"weekly cap of user {email} ($1.00)", week_start(now) + dt.timedelta(7)
        )
    assert upstream_calls(stack) == 10
    user_id = world.ids["Capped"]
    rows = await wait_org_rows(stack.database_url, 40, user_id=user_id)
    assert sorted(r.status for r in rows) == [200] * 10 + [429] * 30
    spent = await wait_spend(stack.database_url, "user", user_id, week_start(now), CAP)
    assert spent == CAP
    # Spend is counted only where a cap applies: the uncapped organization has no counter.
    async with orm(stack.database_url):
        assert not await SpendCounter.filter(scope="org", scope_id=world.ids["Uncapped"]).exists()


@pytest.mark.skipif(shared_setup() is not None, reason=str(shared_setup()))
async def test_two_gateways_share_one_org_cap(world: CapsWorld) -> None:
    """Two gateway processes on the same PostgreSQL database and the same Redis prefix: 40
    concurrent requests spread over both (both SDKs, user and app keys of one org) against a $1.00
    org cap. Exactly 10 pass in total, not 10 per process; persisted spend is $1.00."""
    skip_near_period_edge()
    stack = world.stack
    env = dict(stack.gateway.env)
    assert env.get("REDIS_URL") and env.get("SWITCHBOARD_REDIS_PREFIX")
    second = GatewayProc(env, stack.tmp / f"gateway2-{uuid.uuid4().hex[:6]}.log").start()
    user_key, app_key = world.keys["shared_user"], world.keys["shared_app"]
    try:
        queue_priced_replies(stack, 40, delay=0.3)
        async with oai(stack.gateway, user_key) as oc, ant(stack.gateway, user_key) as ac:
            calls: list[Awaitable[Outcome]] = []
            for i in range(40):
                gw = stack.gateway if i % 2 else second
                key = app_key if i % 3 else user_key
                if i % 4 < 2:
                    client = oc.with_options(base_url=gw.openai_base_url, api_key=key)
                    calls.append(call_openai(client, i % 8 < 4))
                else:
                    aclient = ac.with_options(base_url=gw.url, api_key=key)
                    calls.append(call_anthropic(aclient, i % 8 < 4))
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
        second.stop()


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
