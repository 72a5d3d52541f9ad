"""The log explorer's API (issue 17 items 1-3): free-text search, one request's attempts, the
bounded count (scoped like the list), the stored refusal and price, and the keys list's
kind/organization filters, spend this period and rotation's rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.keys import ApiKey
from backend.data.models.logs import RequestLog
from backend.security.api_keys import generate_key
from tests.graphql.harness import T0, Env, World, data, error, gql
from tests.graphql.test_logs import seed_logs

IDS = """query($f: GatewayLogFilter, $n: Int!) {
  gatewayLogs(filter: $f, first: 50) { nodes { requestId } }
  gatewayLogCount(filter: $f, upTo: $n) { count exact } }"""


async def _ids(env: Env, token: str | None, f: dict[str, object], n: int = 10_000) -> tuple:
    got = data(await gql(env, IDS, {"f": f, "n": n}, token))
    count = got["gatewayLogCount"]
    return [r["requestId"] for r in got["gatewayLogs"]["nodes"]], count["count"], count["exact"]


async def test_search_attempts_and_bounded_counts(env: Env, world: World) -> None:
    await seed_logs(world)
    sup = world.token("super")
    # A request id from its start, a key prefix from its start, a model anywhere in its name.
    assert await _ids(env, sup, {"search": "req-0"}) == (
        [f"req-{i:02d}" for i in range(9, -1, -1)],
        10,
        True,
    )
    ids, count, _ = await _ids(env, sup, {"search": "sb-member_b"})
    assert ids == ["req-08", "req-05", "req-02"] and count == 3
    ids, count, _ = await _ids(env, sup, {"search": "CLAUDE-SON"})
    assert ids == ["req-10", "req-08", "req-06", "req-04", "req-02", "req-00"] and count == 6
    assert (await _ids(env, sup, {"search": "q-0"}))[1] == 0, "ids match from their start"
    # One request with its superseded attempt.
    assert (await _ids(env, sup, {"requestId": "req-11"}))[1] == 0
    assert await _ids(env, sup, {"requestId": "req-11", "includeSuperseded": True}) == (
        ["req-11"],
        1,
        True,
    )
    # Counted up to upTo: "at least 4" when more match.
    assert (await _ids(env, sup, {}, 4))[1:] == (4, False)
    assert (await _ids(env, sup, {}, 11))[1:] == (11, True)
    # Scoped like the list: a member counts their own rows only, whatever they filter on.
    member = world.token("member_a")
    assert (await _ids(env, member, {}))[1] == 4
    assert (await _ids(env, member, {"userId": world.users["member_b"].id}))[1] == 0
    assert (await _ids(env, world.token("admin_b"), {"organizationId": world.org_a.id}))[1] == 0
    bad = error(await gql(env, IDS, {"f": {}, "n": 0}, sup))
    assert bad["code"] == "BAD_USER_INPUT" and "upTo" in bad["message"]
    long = error(await gql(env, IDS, {"f": {"search": "x" * 201}, "n": 5}, sup))
    assert long["field"] == "search"


async def test_refusal_and_price_read_back(env: Env, world: World) -> None:
    await RequestLog.create(
        request_id="req-cap",
        created_at=T0,
        key_prefix="sb-x",
        user_id=world.users["member_a"].id,
        org_id=world.org_a.id,
        endpoint="/v1/chat/completions",
        status=429,
        error_type="quota",
        error_code="insufficient_quota",
        refusal={
            "kind": "spend_cap",
            "cap": "user_weekly",
            "scope": "user",
            "scope_id": world.users["member_a"].id,
            "limit_usd": "25.00000000",
            "used_usd": "24.90000000",
            "resets_at": "2026-03-16T00:00:00+00:00",
        },
    )
    await RequestLog.create(
        request_id="req-ok",
        created_at=T0,
        endpoint="/v1/chat/completions",
        status=200,
        input_tokens=100,
        output_tokens=10,
        reasoning_tokens=4,
        cost_usd=Decimal("0.000021"),
        price={
            "input_per_mtok": "0.15",
            "output_per_mtok": "0.6",
            "cached_per_mtok": None,
            "source": "price-table",
        },
    )
    q = """query { gatewayLogs(sort: OLDEST) { nodes { requestId reasoningTokens errorCode
      upstreamStatus price { inputPerMtok outputPerMtok cachedPerMtok source }
      refusal { kind summary scope scopeId period limit used resetsAt } } } }"""
    cap, ok = data(await gql(env, q, None, world.token("super")))["gatewayLogs"]["nodes"]
    assert cap["refusal"] == {
        "kind": "SPEND_CAP",
        "summary": f"Spend cap: the weekly cap of user #{world.users['member_a'].id} "
        "($24.90 of $25.00 used); resets 2026-03-16T00:00:00+00:00.",
        "scope": "user",
        "scopeId": world.users["member_a"].id,
        "period": "weekly",
        "limit": "25.00000000",
        "used": "24.90000000",
        "resetsAt": "2026-03-16T00:00:00+00:00",
    }
    assert cap["errorCode"] == "insufficient_quota" and cap["upstreamStatus"] is None
    assert ok["refusal"] is None and ok["reasoningTokens"] == 4
    assert ok["price"] == {
        "inputPerMtok": "0.15",
        "outputPerMtok": "0.6",
        "cachedPerMtok": None,
        "source": "price-table",
    }


KEYS = """query($f: ApiKeyFilter) { apiKeys(filter: $f) { totalCount nodes { prefix kind
  spendThisPeriod { period periodStart costUsd requests unknownCostRequests } } } }"""
ROTATE = """mutation($id: Int!, $g: Int) { rotateApiKey(id: $id, graceSeconds: $g) {
  secret apiKey { id name status limits { requestsPerMinute spendCapUsd locks { limit } } }
  previous { status expiresAt revokedAt } } }"""


async def _key(owner: dict[str, object], **fields: object) -> ApiKey:
    _, prefix, digest = generate_key()
    return await ApiKey.create(prefix=prefix, key_hash=digest, **owner, **fields)


async def test_keys_filters_spend_and_rotation(env: Env, world: World) -> None:
    mine = await _key({"user": world.users["member_a"]}, name="laptop", cap_period="weekly")
    app_key = await _key({"app": world.app_a})
    await _key({"user": world.users["member_b"]})
    # Written as the gateway writes them (rows and rollups), whatever spendThisPeriod reads.
    writer = LogWriter(LocalBus())
    for i, (when, cost, superseded) in enumerate(
        [
            (T0, "0.25", False),  # this ISO week (T0 is a Tuesday)
            (T0 - dt.timedelta(days=1), "0.50", False),  # Monday: same week
            (T0 - dt.timedelta(days=2), "9.00", False),  # Sunday: last week
            (T0, "4.00", True),  # a superseded attempt: never billed
            (T0, None, False),  # unpriced
        ]
    ):
        writer.submit(
            LogRecord(
                f"k{i}",
                when,
                "/v1/chat/completions",
                key_prefix=mine.prefix,
                user_id=world.users["member_a"].id,
                org_id=world.org_a.id,
                requested_model="openai/gpt-4o",
                actual_model="openai/gpt-4o",
                provider="openai",
                input_tokens=10,
                output_tokens=5,
                cost_usd=None if cost is None else Decimal(cost),
                superseded=superseded,
            )
        )
    assert await writer.flush()
    sup = world.token("super")
    got = data(await gql(env, KEYS, {"f": {"kind": "APP"}}, sup))["apiKeys"]
    assert [n["prefix"] for n in got["nodes"]] == [app_key.prefix]
    got = data(await gql(env, KEYS, {"f": {"organizationId": world.org_a.id}}, sup))["apiKeys"]
    assert {n["prefix"] for n in got["nodes"]} == {mine.prefix, app_key.prefix}
    [row] = data(await gql(env, KEYS, {"f": {"search": mine.prefix}}, sup))["apiKeys"]["nodes"]
    assert row["spendThisPeriod"] == {
        "period": "WEEKLY",
        "periodStart": "2026-03-09T00:00:00+00:00",
        "costUsd": "0.75000000",
        "requests": 3,
        "unknownCostRequests": 1,
    }

    # Rotation: the member rotates their key; locks and limits go along; grace bounded.
    await ApiKey.filter(id=mine.id).update(
        rate_limit_rpm=7,
        admin_limits={"rate_limit_rpm": {"value": 7, "by": 1, "role": "super_admin"}},
    )
    member = world.token("member_a")
    over = error(await gql(env, ROTATE, {"id": mine.id, "g": 31 * 24 * 3600}, member))
    assert over["field"] == "graceSeconds"
    other = error(await gql(env, ROTATE, {"id": app_key.id, "g": None}, member))
    assert other["code"] == "FORBIDDEN"
    done = data(await gql(env, ROTATE, {"id": mine.id, "g": 600}, member))["rotateApiKey"]
    assert done["apiKey"]["name"] == "laptop" and done["apiKey"]["status"] == "ACTIVE"
    assert done["apiKey"]["limits"]["requestsPerMinute"] == 7
    assert done["apiKey"]["limits"]["locks"] == [{"limit": "REQUESTS_PER_MINUTE"}]
    assert done["previous"]["status"] == "ACTIVE" and done["previous"]["revokedAt"] is None
    assert done["previous"]["expiresAt"] == (T0 + dt.timedelta(seconds=600)).isoformat()
    env.clock.now = T0 + dt.timedelta(seconds=601)
    status = data(
        await gql(env, "query($id: Int!) { apiKey(id: $id) { status } }", {"id": mine.id}, member)
    )
    assert status["apiKey"]["status"] == "EXPIRED"
    again = error(await gql(env, ROTATE, {"id": mine.id, "g": None}, member))
    assert "only an active key can be rotated" in again["message"]
