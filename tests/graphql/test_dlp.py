"""DLP through GraphQL: protection per organization/app, rules, custom regex rules, activity."""

from __future__ import annotations

import datetime as dt
from typing import Any

from backend.data.models.dlp import DlpActivity, DlpPolicy
from backend.dlp.rules import BUILTIN_RULE_IDS
from tests.graphql.harness import T0, Env, World, data, error, gql

PROT = (
    "scope targetId name organizationId enabled status rules "
    "customRules { name pattern } rulesEnabled lastActivityAt"
)
SET = (
    f"mutation($s: DlpScope!, $t: Int!, $e: Boolean!) {{ "
    f"setDlpProtection(scope: $s, targetId: $t, enabled: $e) {{ {PROT} "
    f"}} }}"
)
POLICY = (
    f"mutation($s: DlpScope!, $t: Int!, $i: DlpPolicyInput!) {{ "
    f"updateDlpPolicy(scope: $s, targetId: $t, input: $i) {{ {PROT} }} "
    f"}}"
)
LIST = f"query($s: DlpScope) {{ dlpProtections(scope: $s) {{ {PROT} }} }}"
ACTIVITY = (
    "query($f: DlpActivityFilter, $first: Int, $after: String) { "
    "dlpActivity(filter: $f, first: $first, after: $after) { nodes { "
    "kind scope rule matches size requestId detail organizationId "
    "appId } totalCount pageInfo { hasNextPage endCursor } } }"
)


async def test_enable_update_disable(env: Env, world: World) -> None:
    tok = world.token("admin_a")
    listed = data(await gql(env, LIST, {}, tok))["dlpProtections"]
    assert [(p["scope"], p["name"], p["status"]) for p in listed] == [
        ("ORG", "Acme", "OFF"),
        ("APP", "Billing", "OFF"),
    ]

    on = data(await gql(env, SET, {"s": "ORG", "t": world.org_a.id, "e": True}, tok))[
        "setDlpProtection"
    ]
    assert on["status"] == "ON" and set(on["rules"]) == BUILTIN_RULE_IDS
    assert on["rulesEnabled"] == len(BUILTIN_RULE_IDS)
    assert env.gw.store.tenancy.orgs[world.org_a.id].dlp_enabled is True
    assert ("org", world.org_a.id) in env.gw.store.dlp

    custom = [{"name": "Employee id", "pattern": r"EMP-\d{6}"}]
    upd = data(
        await gql(
            env,
            POLICY,
            {
                "s": "ORG",
                "t": world.org_a.id,
                "i": {"rules": ["email", "card"], "customRules": custom},
            },
            tok,
        )
    )["updateDlpPolicy"]
    assert (
        upd["rules"] == ["card", "email"]
        and upd["customRules"] == custom
        and upd["rulesEnabled"] == 3
    )
    snap = env.gw.store.dlp[("org", world.org_a.id)]
    assert set(snap.rules) == {"card", "email"} and snap.custom_rules == (
        ("Employee id", r"EMP-\d{6}"),
    )

    off = data(await gql(env, SET, {"s": "ORG", "t": world.org_a.id, "e": False}, tok))[
        "setDlpProtection"
    ]
    assert off["status"] == "OFF" and off["rules"] == ["card", "email"]  # the policy is kept
    assert env.gw.store.tenancy.orgs[world.org_a.id].dlp_enabled is False

    app = data(await gql(env, SET, {"s": "APP", "t": world.app_a.id, "e": True}, tok))[
        "setDlpProtection"
    ]
    assert (app["scope"], app["organizationId"], app["status"]) == ("APP", world.org_a.id, "ON")
    assert env.gw.store.tenancy.apps[world.app_a.id].dlp_enabled is True
    assert await DlpPolicy.all().count() == 2


async def test_policy_validation(env: Env, world: World) -> None:
    tok = world.token("super")
    cases = [
        (
            {"customRules": [{"name": "Bad", "pattern": "(unclosed"}]},
            "customRules[0].pattern",
            "invalid regex",
        ),
        (
            {"customRules": [{"name": "Empty", "pattern": "a*"}]},
            "customRules[0].pattern",
            "empty string",
        ),
        ({"customRules": [{"name": "", "pattern": "x"}]}, "customRules[0].name", "empty"),
        (
            {"customRules": [{"name": "A", "pattern": "x"}, {"name": "A", "pattern": "y"}]},
            "customRules",
            "unique",
        ),
        ({"rules": ["email", "telepathy"]}, "rules", "unknown DLP rule"),
    ]
    for i, field, words in cases:
        err = error(await gql(env, POLICY, {"s": "ORG", "t": world.org_b.id, "i": i}, tok))
        assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field), i
        assert words in err["message"], err
    assert await DlpPolicy.all().count() == 0
    body = await gql(env, SET, {"s": "team", "t": world.org_b.id, "e": True}, tok)
    assert "'team' does not exist in 'DlpScope'" in body["errors"][0]["message"]
    assert (
        error(await gql(env, SET, {"s": "ORG", "t": 4242, "e": True}, tok))["code"] == "NOT_FOUND"
    )


async def test_scope(env: Env, world: World) -> None:
    tok = world.token("admin_b")
    assert (
        error(await gql(env, SET, {"s": "ORG", "t": world.org_a.id, "e": True}, tok))["code"]
        == "FORBIDDEN"
    )
    assert (
        error(await gql(env, SET, {"s": "APP", "t": world.app_a.id, "e": True}, tok))["code"]
        == "FORBIDDEN"
    )
    assert error(await gql(env, LIST, {}, world.token("member_b")))["code"] == "FORBIDDEN"
    everything = data(await gql(env, LIST, {}, world.token("super")))["dlpProtections"]
    assert len(everything) == 4


async def test_activity(env: Env, world: World) -> None:
    rows = [
        ("redact", "org:acme", world.org_a.id, None, "email", 2),
        ("restore", "org:acme", world.org_a.id, None, "email", 2),
        ("redact", "app:billing", world.org_a.id, world.app_a.id, "card", 1),
        ("redact", "org:globex", world.org_b.id, None, "custom:Employee id", 3),
    ]
    for i, (kind, scope, org, app, rule, n) in enumerate(rows):
        await DlpActivity.create(
            created_at=T0 + dt.timedelta(seconds=i),
            kind=kind,
            scope=scope,
            org_id=org,
            app_id=app,
            rule=rule,
            matches=n,
            size=100 + i,
            request_id=f"req-{i}",
            detail="",
        )
    mine = data(await gql(env, ACTIVITY, {}, world.token("admin_a")))["dlpActivity"]
    assert mine["totalCount"] == 3
    assert [n["requestId"] for n in mine["nodes"]] == ["req-2", "req-1", "req-0"]  # newest first
    apps = data(await gql(env, ACTIVITY, {"f": {"scope": "APP"}}, world.token("admin_a")))[
        "dlpActivity"
    ]
    assert [n["rule"] for n in apps["nodes"]] == ["card"]
    one = data(
        await gql(
            env,
            ACTIVITY,
            {"f": {"scope": "ORG", "targetId": world.org_a.id, "kind": "REDACT"}},
            world.token("super"),
        )
    )["dlpActivity"]
    assert [n["requestId"] for n in one["nodes"]] == ["req-0"]
    theirs = data(await gql(env, ACTIVITY, {}, world.token("admin_b")))["dlpActivity"]
    assert [n["scope"] for n in theirs["nodes"]] == ["org:globex"]
    page = data(await gql(env, ACTIVITY, {"first": 3}, world.token("super")))["dlpActivity"]
    nxt = data(
        await gql(
            env,
            ACTIVITY,
            {"first": 3, "after": page["pageInfo"]["endCursor"]},
            world.token("super"),
        )
    )["dlpActivity"]
    assert [n["requestId"] for n in page["nodes"] + nxt["nodes"]] == [
        "req-3",
        "req-2",
        "req-1",
        "req-0",
    ]
    assert nxt["pageInfo"]["hasNextPage"] is False


PAGED = (
    "query($s: DlpScope, $first: Int, $after: String) { "
    "dlpProtectionsPaged(scope: $s, first: $first, after: $after) { "
    f"nodes {{ {PROT} }} totalCount pageInfo {{ hasNextPage endCursor }} }} }}"
)


async def _all_pages(env: Env, tok: str, size: int, scope: str | None = None) -> list[Any]:
    """Every page of dlpProtectionsPaged, checking each page's size and total on the way."""
    whole = data(await gql(env, LIST, {"s": scope}, tok))["dlpProtections"]
    out: list[Any] = []
    after = None
    while True:
        vs = {"s": scope, "first": size, "after": after}
        conn = data(await gql(env, PAGED, vs, tok))["dlpProtectionsPaged"]
        assert conn["totalCount"] == len(whole)
        assert len(conn["nodes"]) == min(size, len(whole) - len(out))
        out += conn["nodes"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert out == whole
    return out


async def test_paged_equals_the_whole_list(env: Env, world: World) -> None:
    """Pages of dlpProtectionsPaged, across the organizations-to-apps seam, are dlpProtections
    in the same order with the same policies; the total is every target the viewer may see."""
    sup = world.token("super")
    await gql(env, SET, {"s": "APP", "t": world.app_a.id, "e": True}, sup)
    await gql(env, SET, {"s": "ORG", "t": world.org_b.id, "e": True}, sup)
    for size in (1, 2, 3, 4, 5):
        assert len(await _all_pages(env, sup, size)) == 4
    assert [p["scope"] for p in await _all_pages(env, sup, 1, "APP")] == ["APP", "APP"]
    names = [p["name"] for p in await _all_pages(env, world.token("admin_a"), 1)]
    assert names == ["Acme", "Billing"]
    assert error(await gql(env, PAGED, {}, world.token("member_a")))["code"] == "FORBIDDEN"
    bad = {"first": 1, "after": "not-a-cursor"}
    assert error(await gql(env, PAGED, bad, sup))["code"] == "BAD_USER_INPUT"
