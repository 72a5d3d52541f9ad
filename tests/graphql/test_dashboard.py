"""Home dashboard numbers on a seeded history of rollups, with exact expected values.

Clock: 2026-03-10 12:30:15 UTC (``T0``). The live window is 11:31..12:30; the 7-day trend window is
03-04..03-10; provider load covers the 24 hours from 03-09 13:00.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.logs import MinuteStat, UsageRollup
from tests.graphql.harness import T0, Env, World, data, error, gql, roll_up_days

UTC = dt.UTC


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


async def seed(world: World) -> None:
    for bucket, n, e, tokens, cost, hist in [
        (at(10, 12, 30), 4, 1, 400, "0.04", {"100": 2, "200": 1, "1000": 1}),
        (at(10, 12, 0), 1, 0, 10, "0.01", {"50": 1}),
        (at(10, 11, 30), 100, 0, 1, "9", {"5": 100}),  # 61 minutes ago: outside
        (at(10, 12, 31), 100, 0, 1, "9", {"5": 100}),  # the future: outside
    ]:
        await MinuteStat.create(
            bucket=bucket,
            requests=n,
            errors=e,
            tokens=tokens,
            cost_usd=Decimal(cost),
            latency_hist=hist,
        )
    m, a, b = (world.users[k].id for k in ("member_a", "admin_a", "member_b"))
    oa, ob = world.org_a.id, world.org_b.id
    for bucket, user, org, model, n, e, i, o, cost, lat in [
        (at(10, 10), m, oa, "openai/gpt-4o", 10, 0, 100, 10, "1.00", 1000),
        (at(10, 11), m, oa, "openai/gpt-4o", 5, 0, 50, 5, "0.50", 1000),
        (at(10, 11), b, ob, "anthropic/claude", 4, 1, 40, 4, "2.00", 2000),
        (at(9, 23), a, oa, "openai/gpt-4o", 1, 0, 10, 1, "0.25", 300),
        (at(3, 23), b, ob, "openai/gpt-4o", 50, 0, 1, 1, "100", 1),  # before the window
        (at(4, 0), b, ob, "ollama/llama3", 3, 0, 30, 3, "0", 900),
    ]:
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
            latency_ms_sum=lat,
        )
    await roll_up_days()


LIVE = (
    "{ dashboard { live { requests errors tokens costUsd p50Ms p95Ms "
    "minutes { minute requests errors tokens costUsd p50Ms p95Ms } } "
    "} }"
)


async def test_live(env: Env, world: World) -> None:
    await seed(world)
    live = data(await gql(env, LIVE, token=world.token("super")))["dashboard"]["live"]
    assert (live["requests"], live["errors"], live["tokens"]) == (5, 1, 410)
    assert Decimal(live["costUsd"]) == Decimal("0.05")
    assert (live["p50Ms"], live["p95Ms"]) == (100.0, 1000.0)
    minutes = live["minutes"]
    assert len(minutes) == 60
    assert dt.datetime.fromisoformat(minutes[0]["minute"]) == at(10, 11, 31)
    assert dt.datetime.fromisoformat(minutes[-1]["minute"]) == at(10, 12, 30)
    last = minutes[-1]
    assert (last["requests"], last["errors"], last["tokens"], last["p50Ms"], last["p95Ms"]) == (
        4,
        1,
        400,
        100.0,
        1000.0,
    )
    assert minutes[29]["requests"] == 1 and minutes[29]["p95Ms"] == 50.0
    quiet = [m for i, m in enumerate(minutes) if i not in (29, 59)]
    assert all(m["requests"] == 0 and m["p50Ms"] is None for m in quiet)
    # Those seeded minutes belong to no organization: an org_admin's live hour has none of them.
    mine = data(await gql(env, LIVE, token=world.token("admin_a")))["dashboard"]["live"]
    assert (mine["requests"], len(mine["minutes"]), mine["p95Ms"]) == (0, 60, None)


async def test_an_org_admins_live_hour_counts_only_requests_made_under_their_org(
    env: Env, world: World
) -> None:
    users = world.users
    oa, ob = world.org_a.id, world.org_b.id
    # Written as the gateway writes them (log rows and every rollup, minute tables included).
    writer = LogWriter(LocalBus())
    for i, (when, user, org, status, cost, latency, superseded) in enumerate(
        [
            (T0, "member_a", oa, 200, "0.10", 90.0, False),
            (T0, "admin_a", oa, 500, "0.20", 900.0, False),
            (T0 - dt.timedelta(minutes=10), "member_a", oa, 200, "0.30", 40.0, False),
            # Made under org_a by a user now in org_b: org_a's request.
            (T0 - dt.timedelta(minutes=10), "member_b", oa, 200, "0.40", 40.0, False),
            (T0 - dt.timedelta(minutes=61), "member_a", oa, 200, "5", 40.0, False),  # too old
            (T0, "member_a", oa, 500, "7", 40.0, True),  # a retried attempt: never counted
            (T0, "member_b", ob, 200, "1.00", 3000.0, False),
            (T0 - dt.timedelta(minutes=10), "admin_b", ob, 200, "2.00", 3000.0, False),
            (T0, "super", None, 200, "3.00", 3000.0, False),  # under no organization
        ]
    ):
        writer.submit(
            LogRecord(
                f"live-{i}",
                when,
                "/v1/chat/completions",
                status=status,
                user_id=users[user].id,
                org_id=org,
                requested_model="openai/gpt-4o",
                actual_model="openai/gpt-4o",
                provider="openai",
                input_tokens=10,
                output_tokens=5,
                cost_usd=Decimal(cost),
                latency_ms=latency,
                superseded=superseded,
            )
        )
    assert await writer.flush()

    def totals(live: dict[str, Any]) -> tuple[Any, ...]:
        return (live["requests"], live["errors"], live["tokens"], Decimal(live["costUsd"]))

    a = data(await gql(env, LIVE, token=world.token("admin_a")))["dashboard"]["live"]
    assert totals(a) == (4, 1, 60, Decimal("1.00"))
    assert a["p95Ms"] == 1000.0  # org_b's and the org-less 3 s requests are not in it
    assert [m["requests"] for m in a["minutes"] if m["requests"]] == [2, 2]
    assert (a["minutes"][49]["requests"], a["minutes"][59]["errors"]) == (2, 1)
    b = data(await gql(env, LIVE, token=world.token("admin_b")))["dashboard"]["live"]
    assert totals(b) == (2, 0, 30, Decimal("3.00"))
    # The super_admin's is gateway-wide: both organizations and the request under none.
    every = data(await gql(env, LIVE, token=world.token("super")))["dashboard"]["live"]
    assert totals(every) == (7, 1, 105, Decimal("7.00"))
    for member in ("member_a", "member_b"):
        assert error(await gql(env, LIVE, token=world.token(member)))["code"] == "FORBIDDEN"


TRENDS = (
    "{ dashboard { costTrends { day costUsd requests byModel { model "
    "provider costUsd requests } byProvider { provider costUsd } } } "
    "}"
)


def money(rows: list[dict[str, Any]], key: str) -> list[tuple[str, Decimal]]:
    return [(r[key], Decimal(r["costUsd"])) for r in rows]


async def test_cost_trends(env: Env, world: World) -> None:
    await seed(world)
    days = data(await gql(env, TRENDS, token=world.token("super")))["dashboard"]["costTrends"]
    assert [d["day"] for d in days] == [f"2026-03-{d:02d}" for d in range(4, 11)]
    assert [(Decimal(d["costUsd"]), d["requests"]) for d in days] == [
        (Decimal(0), 3),
        (0, 0),
        (0, 0),
        (0, 0),
        (0, 0),
        (Decimal("0.25"), 1),
        (Decimal("3.50"), 19),
    ]
    today = days[-1]
    assert money(today["byModel"], "model") == [
        ("anthropic/claude", Decimal("2.00")),
        ("openai/gpt-4o", Decimal("1.50")),
    ]
    assert [m["requests"] for m in today["byModel"]] == [4, 15]
    assert money(today["byProvider"], "provider") == [
        ("anthropic", Decimal("2.00")),
        ("openai", Decimal("1.50")),
    ]
    (first,) = days[0]["byModel"]
    assert (first["model"], first["provider"], first["requests"]) == ("ollama/llama3", "ollama", 3)
    assert first["costUsd"] == "0.00000000"  # Ollama is free: a real 0, not "unknown"

    # An org_admin's trends are their organization's traffic only.
    mine = data(await gql(env, TRENDS, token=world.token("admin_a")))["dashboard"]["costTrends"]
    assert [Decimal(d["costUsd"]) for d in mine] == [
        0,
        0,
        0,
        0,
        0,
        Decimal("0.25"),
        Decimal("1.50"),
    ]


LOAD = (
    "{ dashboard { routingStrategy providerLoad { provider requests "
    "share errors errorRate avgLatencyMs costUsd health } } }"
)


class FakeRouter:
    def health(self) -> list[dict[str, Any]]:
        return [
            {"provider": "openai", "model": None, "state": "closed"},
            {"provider": "openai", "model": "gpt-4o", "state": "open"},
            {"provider": "anthropic", "model": None, "state": "open"},
        ]


async def test_provider_load(env: Env, world: World) -> None:
    await seed(world)
    out = data(await gql(env, LOAD, token=world.token("super")))["dashboard"]
    assert out["routingStrategy"] == "ORDERED"
    rows = out["providerLoad"]
    assert [
        (r["provider"], r["requests"], r["share"], r["errors"], r["errorRate"], r["avgLatencyMs"])
        for r in rows
    ] == [
        ("openai", 16, 0.8, 0, 0.0, 143.75),
        ("anthropic", 4, 0.2, 1, 0.25, 500.0),
    ]
    assert [Decimal(r["costUsd"]) for r in rows] == [Decimal("1.75"), Decimal("2.00")]
    # No router wired in: the error rate alone (1 of 4 failed is not healthy).
    assert [r["health"] for r in rows] == ["HEALTHY", "DEGRADED"]

    env.gw.router = FakeRouter()
    rows = data(await gql(env, LOAD, token=world.token("super")))["dashboard"]["providerLoad"]
    assert {r["provider"]: r["health"] for r in rows} == {"openai": "DEGRADED", "anthropic": "DOWN"}

    mine = data(await gql(env, LOAD, token=world.token("admin_b")))["dashboard"]["providerLoad"]
    assert [(r["provider"], r["requests"], r["share"]) for r in mine] == [("anthropic", 4, 1.0)]


TOP = (
    "query($d: Int!, $l: Int!) { dashboard { topSpenders(days: $d, "
    "limit: $l) { userId costUsd requests tokens user { email } } } }"
)


async def test_top_spenders(env: Env, world: World) -> None:
    await seed(world)
    rows = data(await gql(env, TOP, {"d": 7, "l": 10}, world.token("super")))["dashboard"][
        "topSpenders"
    ]
    assert [
        (r["user"]["email"], Decimal(r["costUsd"]), r["requests"], r["tokens"]) for r in rows
    ] == [
        ("member_b@example.com", Decimal("2.00"), 7, 77),
        ("member_a@example.com", Decimal("1.50"), 15, 165),
        ("admin_a@example.com", Decimal("0.25"), 1, 11),
    ]
    two = data(await gql(env, TOP, {"d": 7, "l": 2}, world.token("super")))["dashboard"][
        "topSpenders"
    ]
    assert len(two) == 2
    one_day = data(await gql(env, TOP, {"d": 1, "l": 10}, world.token("super")))["dashboard"][
        "topSpenders"
    ]
    assert [r["user"]["email"] for r in one_day] == ["member_b@example.com", "member_a@example.com"]
    mine = data(await gql(env, TOP, {"d": 7, "l": 10}, world.token("admin_a")))["dashboard"][
        "topSpenders"
    ]
    assert [r["user"]["email"] for r in mine] == ["member_a@example.com", "admin_a@example.com"]
    err = error(await gql(env, TOP, {"d": 0, "l": 10}, world.token("super")))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "days")


@pytest.mark.parametrize("query", [LIVE, TRENDS, LOAD])
async def test_members_are_refused(env: Env, world: World, query: str) -> None:
    assert error(await gql(env, query, token=world.token("member_a")))["code"] == "FORBIDDEN"
    assert error(await gql(env, query))["code"] == "UNAUTHENTICATED"


async def test_clock_is_the_gateway_clock(env: Env, world: World) -> None:
    await seed(world)
    env.clock.now = T0 + dt.timedelta(days=1)
    days = data(await gql(env, TRENDS, token=world.token("super")))["dashboard"]["costTrends"]
    assert days[0]["day"] == "2026-03-05" and days[-1]["day"] == "2026-03-11"
    assert Decimal(days[-2]["costUsd"]) == Decimal("3.50")
