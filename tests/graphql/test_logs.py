"""Gateway logs and per-user usage through GraphQL: filters, cursors, role scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from backend.data.models.logs import RequestLog, UsageRollup
from tests.graphql.harness import T0, Env, World, data, error, gql, roll_up_days

LOG = (
    "id requestId keyPrefix userId organizationId endpoint "
    "requestedModel actualModel provider status totalTokens costUsd "
    "superseded user { email } requestBody"
)
LIST = (
    "query($f: GatewayLogFilter, $s: LogSort!, $first: Int, $after: "
    f"String) {{ gatewayLogs(filter: $f, sort: $s, first: $first, "
    f"after: $after) {{ nodes {{ {LOG} }} totalCount pageInfo {{ "
    f"hasNextPage endCursor }} }} }}"
)


async def seed_logs(world: World) -> list[RequestLog]:
    """12 requests: users x models x statuses over 12 minutes, one superseded, one unpriced."""
    people = [
        ("member_a", world.org_a.id),
        ("admin_a", world.org_a.id),
        ("member_b", world.org_b.id),
    ]
    rows = []
    for i in range(12):
        who, org = people[i % 3]
        rows.append(
            await RequestLog.create(
                request_id=f"req-{i:02d}",
                created_at=T0 + dt.timedelta(minutes=i),
                key_prefix=f"sb-{who[:8]}",
                user_id=world.users[who].id,
                org_id=org,
                endpoint="/v1/chat/completions",
                requested_model="gpt-4o" if i % 2 else "claude",
                actual_model="openai/gpt-4o" if i % 2 else "anthropic/claude-sonnet",
                provider="openai" if i % 2 else "anthropic",
                status=500 if i == 5 else 200,
                input_tokens=10 * i,
                output_tokens=i,
                cost_usd=None if i == 7 else Decimal("0.001") * i,
                latency_ms=100.0 + i,
                superseded=i == 11,
                request_body='{"messages": [{"role": "user", "content": "[EMAIL_1]"}]}',
            )
        )
    return rows


async def test_filters_and_scope(env: Env, world: World) -> None:
    await seed_logs(world)
    sup = world.token("super")

    async def ids(token: str | None, f: dict[str, object] | None = None) -> list[str]:
        page = data(await gql(env, LIST, {"f": f, "s": "NEWEST", "first": 50}, token))[
            "gatewayLogs"
        ]
        return [n["requestId"] for n in page["nodes"]]

    assert await ids(sup) == [f"req-{i:02d}" for i in range(10, -1, -1)]  # superseded hidden
    assert "req-11" in await ids(sup, {"includeSuperseded": True})
    assert await ids(sup, {"userId": world.users["member_b"].id}) == ["req-08", "req-05", "req-02"]
    assert await ids(sup, {"organizationId": world.org_b.id, "status": 500}) == ["req-05"]
    assert await ids(sup, {"errorsOnly": True}) == ["req-05"]
    assert await ids(sup, {"model": "gpt-4o"}) == ["req-09", "req-07", "req-05", "req-03", "req-01"]
    assert await ids(sup, {"model": "anthropic/claude-sonnet", "provider": "anthropic"}) == [
        "req-10",
        "req-08",
        "req-06",
        "req-04",
        "req-02",
        "req-00",
    ]
    window: dict[str, object] = {
        "since": (T0 + dt.timedelta(minutes=3)).isoformat(),
        "until": (T0 + dt.timedelta(minutes=5)).isoformat(),
    }
    assert await ids(sup, window) == ["req-04", "req-03"]
    # Role scope: an org_admin sees their organization, a member only their own requests.
    assert await ids(world.token("admin_b")) == ["req-08", "req-05", "req-02"]
    assert await ids(world.token("admin_b"), {"organizationId": world.org_a.id}) == []
    assert await ids(world.token("member_a")) == ["req-09", "req-06", "req-03", "req-00"]
    assert await ids(world.token("member_a"), {"userId": world.users["member_b"].id}) == []


async def test_entry_fields_and_cost_unknown(env: Env, world: World) -> None:
    rows = await seed_logs(world)
    q = f"query($id: Int!) {{ gatewayLog(id: $id) {{ {LOG} }} }}"
    unpriced = data(await gql(env, q, {"id": rows[7].id}, world.token("super")))["gatewayLog"]
    assert unpriced["costUsd"] is None  # unknown, never 0
    assert unpriced["totalTokens"] == 77
    assert unpriced["user"] == {"email": "admin_a@example.com"}
    priced = data(await gql(env, q, {"id": rows[4].id}, world.token("super")))["gatewayLog"]
    assert Decimal(priced["costUsd"]) == Decimal("0.004")
    assert (
        error(await gql(env, q, {"id": rows[4].id}, world.token("admin_b")))["code"] == "NOT_FOUND"
    )


async def test_cursor_pagination(env: Env, world: World) -> None:
    await seed_logs(world)
    for sort, expected in (("NEWEST", list(range(10, -1, -1))), ("OLDEST", list(range(11)))):
        seen: list[str] = []
        after = None
        while True:
            page = data(
                await gql(env, LIST, {"s": sort, "first": 4, "after": after}, world.token("super"))
            )["gatewayLogs"]
            assert page["totalCount"] == 11
            seen += [n["requestId"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == [f"req-{i:02d}" for i in expected]


USAGE = (
    "query($since: DateTime, $until: DateTime, $s: UsageSort!) { "
    "userUsage(since: $since, until: $until, sort: $s) { nodes { "
    "userId requests errors inputTokens outputTokens costUsd "
    "exportUrl user { email } } totalCount } }"
)


async def test_user_usage_from_rollups(env: Env, world: World) -> None:
    hour = T0.replace(minute=0, second=0)
    a, m, b = (world.users[k].id for k in ("admin_a", "member_a", "member_b"))
    rollups = [
        (hour, m, world.org_a.id, "openai/gpt-4o", 10, 1, 1000, 200, "1.25"),
        (hour, m, world.org_a.id, "anthropic/claude", 5, 0, 500, 50, "0.75"),
        (hour - dt.timedelta(hours=1), m, world.org_a.id, "openai/gpt-4o", 1, 0, 10, 2, "0.10"),
        (hour, a, world.org_a.id, "openai/gpt-4o", 2, 0, 20, 4, "0.30"),
        (hour, b, world.org_b.id, "openai/gpt-4o", 7, 2, 70, 14, "3.00"),
        (hour - dt.timedelta(days=40), b, world.org_b.id, "openai/gpt-4o", 99, 0, 1, 1, "99"),
        (hour, 0, world.org_a.id, "openai/gpt-4o", 3, 0, 1, 1, "5"),  # an app key's traffic
    ]
    for bucket, user, org, model, n, e, i, o, cost in rollups:
        await UsageRollup.create(
            bucket=bucket,
            user_id=user,
            org_id=org,
            model=model,
            provider=model.split("/")[0],
            requests=n,
            errors=e,
            input_tokens=i,
            output_tokens=o,
            cost_usd=Decimal(cost),
        )
    await roll_up_days()
    rows = data(await gql(env, USAGE, {"s": "COST_DESC"}, world.token("super")))["userUsage"][
        "nodes"
    ]
    assert [
        (
            r["user"]["email"],
            r["requests"],
            r["errors"],
            r["inputTokens"],
            r["outputTokens"],
            Decimal(r["costUsd"]),
        )
        for r in rows
    ] == [
        ("member_b@example.com", 7, 2, 70, 14, Decimal("3.00")),
        ("member_a@example.com", 16, 1, 1510, 252, Decimal("2.10")),
        ("admin_a@example.com", 2, 0, 20, 4, Decimal("0.30")),
    ]
    assert rows[0]["exportUrl"] == f"/admin/users/{b}/activity.csv"
    by_requests = data(await gql(env, USAGE, {"s": "REQUESTS_DESC"}, world.token("admin_a")))[
        "userUsage"
    ]["nodes"]
    assert [r["userId"] for r in by_requests] == [m, a]
    only_me = data(await gql(env, USAGE, {"s": "COST_DESC"}, world.token("member_a")))["userUsage"][
        "nodes"
    ]
    assert [r["userId"] for r in only_me] == [m]
    window = {
        "since": hour.isoformat(),
        "until": (hour + dt.timedelta(hours=1)).isoformat(),
        "s": "COST_DESC",
    }
    this_hour = data(await gql(env, USAGE, window, world.token("admin_a")))["userUsage"]["nodes"]
    assert {r["userId"]: Decimal(r["costUsd"]) for r in this_hour} == {
        m: Decimal("2.00"),
        a: Decimal("0.30"),
    }
