"""``analytics``: grouped totals over a window from the rollups, with exact expected values.

Clock: 2026-03-10 12:30:15 UTC. Seeded rollups: two organizations' users and an app, three
models (one without a price), keys and tags, plus rows outside the window that must not count.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from backend.data.models.keys import ApiKey
from backend.data.models.logs import KeyRollup, TagRollup, UsageRollup
from tests.graphql.harness import Env, World, data, error, gql, roll_up_days

UTC = dt.UTC
SINCE = "2026-03-09T00:00:00Z"
UNTIL = "2026-03-11T00:00:00Z"

Q = """
query($d: AnalyticsDimension!, $s: DateTime!, $u: DateTime!, $f: AnalyticsFilter, $l: Int,
      $o: Int) {
  analytics(dimension: $d, since: $s, until: $u, filter: $f, limit: $l, offset: $o) {
    dimension since until granularity groupCount
    groups { key label entityId totals { requests errors errorRate inputTokens outputTokens
      cachedTokens costUsd unknownCostRequests avgLatencyMs p50Ms p95Ms } }
    total { requests errors costUsd unknownCostRequests p50Ms p95Ms }
    series { bucket requests errors costUsd unknownCostRequests }
  }
}"""


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


async def seed(world: World) -> None:
    ma, mb, aa = (world.users[k].id for k in ("member_a", "member_b", "admin_a"))
    oa, ob, app = world.org_a.id, world.org_b.id, world.app_a.id
    # bucket, user, app, org, model, n, errors, in, out, cost, unknown, latency sum, hist
    rows: list[tuple[Any, ...]] = [
        (at(10, 10), ma, 0, oa, "openai/gpt-4o", 10, 1, 100, 10, "1.00", 0, 1000, {"100": 10}),
        (at(10, 11), ma, 0, oa, "openai/gpt-4o", 5, 0, 50, 5, "0.50", 0, 500, {"1000": 5}),
        (at(9, 3), aa, 0, oa, "openai/mystery", 2, 2, 20, 0, "0", 2, 40, {"20": 2}),
        (at(10, 12), 0, app, oa, "openai/gpt-4o", 4, 0, 40, 4, "0.40", 0, 400, None),
        (at(10, 9), mb, 0, ob, "anthropic/claude", 3, 1, 30, 3, "2.00", 0, 3000, {"1000": 3}),
        (at(8, 23), ma, 0, oa, "openai/gpt-4o", 99, 0, 1, 1, "50", 0, 1, {}),  # before
        (at(11, 0), ma, 0, oa, "openai/gpt-4o", 99, 0, 1, 1, "50", 0, 1, {}),  # after
    ]
    for bucket, user, app_id, org, model, n, e, i, o, cost, u, lat, hist in rows:
        await UsageRollup.create(
            bucket=bucket,
            user_id=user,
            app_id=app_id,
            org_id=org,
            model=model,
            provider=model.split("/")[0],
            requests=n,
            errors=e,
            input_tokens=i,
            output_tokens=o,
            cost_usd=Decimal(cost),
            unknown_cost_requests=u,
            latency_ms_sum=lat,
            latency_hist=hist,
        )
    key = await ApiKey.create(name="laptop", prefix="sk-sb-aaaa", key_hash="h1", user_id=ma)
    await ApiKey.create(name="bot", prefix="sk-sb-bbbb", key_hash="h2", app_id=app)
    for prefix, user, app_id, org, n, cost in [
        (key.prefix, ma, 0, oa, 15, "1.50"),
        ("sk-sb-bbbb", 0, app, oa, 4, "0.40"),
        ("sk-sb-gone", aa, 0, oa, 2, "0"),
        ("sk-sb-cccc", mb, 0, ob, 3, "2.00"),
    ]:
        await KeyRollup.create(
            bucket=at(10, 10),
            key_prefix=prefix,
            user_id=user,
            app_id=app_id,
            org_id=org,
            requests=n,
            cost_usd=Decimal(cost),
        )
    for tag, n, cost in [("team:web", 10, "1.00"), ("team:ml", 3, "0.30")]:
        await TagRollup.create(
            bucket=at(10, 10), tag=tag, user_id=ma, org_id=oa, requests=n, cost_usd=Decimal(cost)
        )
    await roll_up_days()


async def ask(env: Env, token: str | None, dim: str, **extra: Any) -> dict[str, Any]:
    variables = {"d": dim, "s": SINCE, "u": UNTIL, **extra}
    out: dict[str, Any] = data(await gql(env, Q, variables, token))["analytics"]
    return out


def by_key(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["key"]: g["totals"] for g in out["groups"]}


async def test_by_model_with_latency_percentiles_and_unknown_cost(env: Env, world: World) -> None:
    await seed(world)
    out = await ask(env, world.token("super"), "MODEL")
    assert out["granularity"] == "hour"  # a 48-hour window
    assert [g["key"] for g in out["groups"]] == [
        "anthropic/claude",
        "openai/gpt-4o",
        "openai/mystery",
    ]
    rows = by_key(out)
    gpt = rows["openai/gpt-4o"]
    assert (gpt["requests"], gpt["errors"], gpt["inputTokens"], gpt["outputTokens"]) == (
        19,
        1,
        190,
        19,
    )
    assert Decimal(gpt["costUsd"]) == Decimal("1.90")
    assert gpt["errorRate"] == round(1 / 19, 6)
    assert gpt["avgLatencyMs"] == round(1900 / 19, 3)
    # 10 at <=100 ms, 5 at <=1000 ms (the app row has no histogram: written before it existed).
    assert (gpt["p50Ms"], gpt["p95Ms"]) == (100.0, 1000.0)
    mystery = rows["openai/mystery"]
    assert (mystery["unknownCostRequests"], Decimal(mystery["costUsd"])) == (2, Decimal(0))
    assert mystery["errorRate"] == 1.0
    total = out["total"]
    assert (total["requests"], total["errors"], total["unknownCostRequests"]) == (24, 4, 2)
    assert Decimal(total["costUsd"]) == Decimal("3.90")
    assert len(out["series"]) == 48
    assert sum(p["requests"] for p in out["series"]) == 24
    assert sum(Decimal(p["costUsd"]) for p in out["series"]) == Decimal("3.90")
    ten = next(p for p in out["series"] if p["bucket"].startswith("2026-03-10T10"))
    assert (ten["requests"], Decimal(ten["costUsd"])) == (10, Decimal("1.00"))


async def test_by_provider_user_app_org_key_tag(env: Env, world: World) -> None:
    await seed(world)
    sup = world.token("super")
    providers = by_key(await ask(env, sup, "PROVIDER"))
    assert {k: v["requests"] for k, v in providers.items()} == {"openai": 21, "anthropic": 3}

    users = await ask(env, sup, "USER")
    labels = {g["key"]: g["label"] for g in users["groups"]}
    ma = world.users["member_a"]
    assert labels[str(ma.id)] == f"{ma.name} <{ma.email}>"
    assert labels["0"] == "(app keys: no user)"
    assert by_key(users)[str(ma.id)]["requests"] == 15

    apps = await ask(env, sup, "APP")
    app = next(g for g in apps["groups"] if g["entityId"] == world.app_a.id)
    assert (app["label"], app["totals"]["requests"]) == ("Billing", 4)

    orgs = await ask(env, sup, "ORGANIZATION")
    assert {g["label"]: g["totals"]["requests"] for g in orgs["groups"]} == {
        "Acme": 21,
        "Globex": 3,
    }

    keys = await ask(env, sup, "KEY")
    key_labels = {g["key"]: g["label"] for g in keys["groups"]}
    assert key_labels["sk-sb-aaaa"] == f"laptop ({ma.name})"
    assert key_labels["sk-sb-bbbb"] == "bot (Billing)"
    assert key_labels["sk-sb-gone"] == "sk-sb-gone (deleted key)"
    assert keys["total"]["requests"] == 24

    tags = await ask(env, sup, "TAG")
    assert [(g["key"], g["totals"]["requests"]) for g in tags["groups"]] == [
        ("team:web", 10),
        ("team:ml", 3),
    ]
    assert tags["groups"][0]["totals"]["avgLatencyMs"] is None


async def test_scope_and_filters(env: Env, world: World) -> None:
    await seed(world)
    # An org_admin: only requests made under their organization.
    mine = await ask(env, world.token("admin_b"), "MODEL")
    assert [g["key"] for g in mine["groups"]] == ["anthropic/claude"]
    # A member: their own requests only.
    own = await ask(env, world.token("member_a"), "USER")
    assert [g["key"] for g in own["groups"]] == [str(world.users["member_a"].id)]
    assert own["total"]["requests"] == 15
    keys = await ask(env, world.token("member_a"), "KEY")
    assert [g["key"] for g in keys["groups"]] == ["sk-sb-aaaa"]
    # Another organization's filter reaches nothing.
    other = await ask(env, world.token("admin_a"), "MODEL", f={"organizationId": world.org_b.id})
    assert other["groups"] == [] and other["total"]["requests"] == 0
    # Filters combine; the limit keeps the top groups and says how many there are.
    gpt = await ask(env, world.token("super"), "USER", f={"model": "openai/gpt-4o"}, l=1)
    assert gpt["groupCount"] == 2 and len(gpt["groups"]) == 1
    assert gpt["groups"][0]["key"] == str(world.users["member_a"].id)
    assert gpt["total"]["requests"] == 19


async def test_offset_pages_the_groups(env: Env, world: World) -> None:
    await seed(world)
    sup = world.token("super")
    whole = [g["key"] for g in (await ask(env, sup, "USER"))["groups"]]
    assert len(whole) == 4  # member_a, member_b, admin_a and 0 (app keys)
    pages = [await ask(env, sup, "USER", l=3, o=offset) for offset in (0, 3, 6)]
    # Pages of 3 follow the whole list's order, each saying how many groups there are.
    assert [[g["key"] for g in p["groups"]] for p in pages] == [whole[:3], whole[3:], []]
    assert [p["groupCount"] for p in pages] == [4, 4, 4]
    # The window's total is every group's, whichever page is asked for.
    assert {p["total"]["requests"] for p in pages} == {24}
    bad = await gql(env, Q, {"d": "USER", "s": SINCE, "u": UNTIL, "o": -1}, sup)
    assert error(bad)["field"] == "offset"


async def test_window_granularity_and_refusals(env: Env, world: World) -> None:
    await seed(world)
    sup = world.token("super")
    week = data(
        await gql(
            env,
            Q,
            {"d": "MODEL", "s": "2026-03-04T00:00:00Z", "u": "2026-03-11T00:00:00Z"},
            sup,
        )
    )["analytics"]
    assert week["granularity"] == "day"
    assert [p["bucket"][:10] for p in week["series"]] == [f"2026-03-{d:02d}" for d in range(4, 11)]
    # The 8th's 23:00 row counts on the 8th; the 11th's 00:00 row is past the window.
    assert [p["requests"] for p in week["series"][-3:]] == [99, 2, 22]
    bad = await gql(env, Q, {"d": "MODEL", "s": UNTIL, "u": SINCE}, sup)
    assert error(bad)["code"] == "BAD_USER_INPUT" and "after" in error(bad)["message"]
    long = await gql(env, Q, {"d": "MODEL", "s": "2024-01-01T00:00:00Z", "u": UNTIL}, sup)
    assert "366 days" in error(long)["message"]
    per_model = await gql(env, Q, {"d": "KEY", "s": SINCE, "u": UNTIL, "f": {"model": "x"}}, sup)
    assert error(per_model)["field"] == "filter"
    anonymous = await gql(env, Q, {"d": "MODEL", "s": SINCE, "u": UNTIL})
    assert error(anonymous)["code"] == "UNAUTHENTICATED"


SORTED = Q.replace("$o: Int)", "$o: Int, $sort: AnalyticsSort)").replace(
    "offset: $o)", "offset: $o, sort: $sort)"
)
#: AnalyticsSort column -> the field of a group's totals it orders by (LABEL: the label).
SORT_FIELDS = {
    "COST": "costUsd",
    "REQUESTS": "requests",
    "ERRORS": "errors",
    "ERROR_RATE": "errorRate",
    "INPUT_TOKENS": "inputTokens",
    "OUTPUT_TOKENS": "outputTokens",
    "P50": "p50Ms",
    "P95": "p95Ms",
}


def column_of(group: dict[str, Any], column: str) -> Any:
    if column == "LABEL":
        return group["label"].lower()
    value = group["totals"][SORT_FIELDS[column]]
    return None if value is None else Decimal(str(value))


async def test_sort_orders_every_page_like_the_whole_list(env: Env, world: World) -> None:
    from backend.graphql.analytics import AnalyticsSort

    await seed(world)
    sup = world.token("super")

    async def sorted_by(dim: str, sort: str, **extra: Any) -> dict[str, Any]:
        variables = {"d": dim, "s": SINCE, "u": UNTIL, "sort": sort, **extra}
        out: dict[str, Any] = data(await gql(env, SORTED, variables, sup))["analytics"]
        return out

    for dim in ("MODEL", "USER"):
        for member in AnalyticsSort:
            column, _, direction = member.name.rpartition("_")
            whole = (await sorted_by(dim, member.name))["groups"]
            assert len(whole) >= 3, (dim, member.name)
            # The column's values in order: highest (DESC) or lowest (ASC) first, none last.
            values = [column_of(g, column) for g in whole]
            present = [v for v in values if v is not None]
            assert values == present + [None] * (len(values) - len(present))
            assert present == sorted(present, reverse=direction == "DESC"), (dim, member.name)
            # Pages of two at offsets follow that order, each with the whole count.
            pages = [await sorted_by(dim, member.name, l=2, o=o) for o in (0, 2, 4)]
            keys = [g["key"] for p in pages for g in p["groups"]]
            assert keys == [g["key"] for g in whole], (dim, member.name)
            assert {p["groupCount"] for p in pages} == {len(whole)}
    # The default is the costliest first.
    default = [g["key"] for g in (await ask(env, sup, "USER"))["groups"]]
    assert default == [g["key"] for g in (await sorted_by("USER", "COST_DESC"))["groups"]]
    bad = await gql(env, SORTED, {"d": "USER", "s": SINCE, "u": UNTIL, "sort": "COLOUR"}, sup)
    assert "AnalyticsSort" in str(bad["errors"][0]["message"]), bad
    assert bad.get("data") is None


def test_sort_values_are_the_services() -> None:
    from backend.admin import analytics as svc
    from backend.graphql.analytics import AnalyticsSort

    assert sorted(m.value for m in AnalyticsSort) == sorted(svc.SORTS)
