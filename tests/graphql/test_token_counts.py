"""Token totals past 32 bits come back whole (GraphQL's Int would refuse the whole answer).

At ten million requests a 30-day window sums billions of tokens: one rollup row of three
billion input tokens must read back exactly in every summed field (TokenCount scalar).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from backend.data.models.logs import UsageRollup
from tests.graphql.harness import T0, Env, World, data, gql, roll_up_days

BIG = 3_000_000_000

Q = """query($s: DateTime!, $u: DateTime!) {
  userUsage { nodes { inputTokens outputTokens } }
  dashboard { topSpenders(days: 7) { tokens } costTrends(days: 7) { inputTokens } }
  analytics(dimension: MODEL, since: $s, until: $u) { total { inputTokens } }
}"""


async def test_token_sums_past_32_bits(env: Env, world: World) -> None:
    await UsageRollup.create(
        bucket=T0.replace(minute=0, second=0) - dt.timedelta(days=3),
        user_id=world.users["member_a"].id,
        org_id=world.org_a.id,
        model="openai/gpt-4o",
        provider="openai",
        requests=1,
        input_tokens=BIG,
        output_tokens=BIG + 1,
        cost_usd=Decimal("1"),
    )
    await roll_up_days()
    since, until = T0 - dt.timedelta(days=10), T0 + dt.timedelta(hours=1)
    got = data(
        await gql(env, Q, {"s": since.isoformat(), "u": until.isoformat()}, world.token("super"))
    )
    assert got["userUsage"]["nodes"] == [{"inputTokens": BIG, "outputTokens": BIG + 1}]
    assert got["dashboard"]["topSpenders"] == [{"tokens": 2 * BIG + 1}]
    assert sum(d["inputTokens"] for d in got["dashboard"]["costTrends"]) == BIG
    assert got["analytics"]["total"]["inputTokens"] == BIG
