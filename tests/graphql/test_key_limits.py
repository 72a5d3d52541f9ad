"""Limits through GraphQL (issue 18 item 3): setLimits on keys, users, apps and organizations,
who may set what, and the rule that a key's owner cannot raise or remove a limit an
administrator set (before, a member could set their own key's rpm to 1,000,000)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from backend.data.models.keys import ApiKey
from backend.security.api_keys import hash_key
from tests.graphql.harness import Env, World, data, error, gql

LIMITS = (
    "requestsPerMinute tokensPerMinute allowedModels spendCapUsd capPeriod "
    "locks { limit ceiling setById setByName setByRole setAt }"
)
SET = (
    "mutation($t: LimitTarget!, $id: Int!, $i: LimitsInput!) "
    f"{{ setLimits(target: $t, id: $id, input: $i) {{ {LIMITS} }} }}"
)
GET = f"query($t: LimitTarget!, $id: Int!) {{ limits(target: $t, id: $id) {{ {LIMITS} }} }}"
CREATE = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }"
UPDATE = (
    "mutation($id: Int!, $i: UpdateApiKeyInput!) "
    "{ updateApiKey(id: $id, input: $i) { rateLimitRpm limits { locks { limit } } } }"
)


async def member_key(env: Env, world: World) -> tuple[int, str]:
    made = data(await gql(env, CREATE, {"i": {"name": "laptop"}}, world.token("member_a")))
    return made["createApiKey"]["apiKey"]["id"], made["createApiKey"]["secret"]


async def set_limits(
    env: Env, token: str | None, target: str, ident: int, **changes: object
) -> dict[str, Any]:
    return await gql(env, SET, {"t": target, "id": ident, "i": changes}, token)


async def test_owner_cannot_raise_or_remove_an_admin_limit(env: Env, world: World) -> None:
    key_id, secret = await member_key(env, world)
    member, admin = world.token("member_a"), world.token("admin_a")
    # The org_admin sets 100 rpm, 20k tpm, a $5 weekly cap and an allowlist on the member's key.
    got = data(
        await set_limits(
            env,
            admin,
            "KEY",
            key_id,
            requestsPerMinute=100,
            tokensPerMinute=20000,
            spendCapUsd="5",
            capPeriod="WEEKLY",
            allowedModels=["gpt-4o*", "claude-*"],
        )
    )["setLimits"]
    assert {lock["limit"] for lock in got["locks"]} == {
        "REQUESTS_PER_MINUTE",
        "TOKENS_PER_MINUTE",
        "SPEND_CAP",
        "ALLOWED_MODELS",
    }
    rpm_lock = next(lock for lock in got["locks"] if lock["limit"] == "REQUESTS_PER_MINUTE")
    assert rpm_lock["ceiling"] == "100"
    assert (rpm_lock["setById"], rpm_lock["setByRole"]) == (world.users["admin_a"].id, "ORG_ADMIN")
    # Its owner is told who set it by name (a member cannot look other users up).
    assert rpm_lock["setByName"] == "Ann Admin"
    info = env.gw.store.keys.by_hash[hash_key(secret)]
    assert (info.rate_limit_rpm, info.limits.tpm) == (100, 20000)
    assert info.limits.allowed_models == ("gpt-4o*", "claude-*")
    assert (info.limits.spend_cap_usd, info.limits.cap_period) == (Decimal(5), "weekly")

    # The owner tries to raise each one, or remove it: a clear GraphQL error, nothing changes.
    for changes, what in (
        ({"requestsPerMinute": 1_000_000}, "requests-per-minute limit"),
        ({"requestsPerMinute": None}, "requests-per-minute limit"),
        ({"tokensPerMinute": 20001}, "tokens-per-minute limit"),
        ({"spendCapUsd": "10"}, "spend cap"),
        ({"spendCapUsd": None}, "spend cap"),
        ({"capPeriod": "MONTHLY"}, "spend cap"),
        ({"allowedModels": ["gpt-4o-mini", "o3"]}, "model allowlist"),
        ({"allowedModels": None}, "model allowlist"),
    ):
        err = error(await set_limits(env, member, "KEY", key_id, **changes))
        assert err["code"] == "FORBIDDEN", (changes, err)
        assert f"the {what} of key" in err["message"], err
        admin_id = world.users["admin_a"].id
        assert f"set by an administrator (org_admin Ann Admin, user #{admin_id})" in err["message"]
        assert "you may tighten it but not raise or remove it" in err["message"], err
    # The old field too.
    err = error(await gql(env, UPDATE, {"id": key_id, "i": {"rateLimitRpm": 1_000_000}}, member))
    assert err["code"] == "FORBIDDEN" and "requests-per-minute limit" in err["message"]
    row = await ApiKey.get(id=key_id)
    assert (row.rate_limit_rpm, row.rate_limit_tpm, row.spend_cap_usd) == (100, 20000, 5)

    # Tightening is allowed, and so is going back up to the administrator's value.
    got = data(
        await set_limits(
            env,
            member,
            "KEY",
            key_id,
            requestsPerMinute=10,
            spendCapUsd="2",
            capPeriod="DAILY",
            allowedModels=["gpt-4o-mini"],
        )
    )["setLimits"]
    assert (got["requestsPerMinute"], Decimal(got["spendCapUsd"])) == (10, 2)
    assert got["capPeriod"] == "DAILY"
    assert len(got["locks"]) == 4  # still the administrator's ceilings
    upd = data(await gql(env, UPDATE, {"id": key_id, "i": {"rateLimitRpm": 100}}, member))
    assert upd["updateApiKey"]["rateLimitRpm"] == 100
    err = error(await gql(env, UPDATE, {"id": key_id, "i": {"rateLimitRpm": 101}}, member))
    assert err["code"] == "FORBIDDEN"

    # The administrator may raise or remove it; a removed limit is no longer locked.
    got = data(await set_limits(env, admin, "KEY", key_id, requestsPerMinute=None))["setLimits"]
    assert "REQUESTS_PER_MINUTE" not in {lock["limit"] for lock in got["locks"]}
    got = data(await set_limits(env, member, "KEY", key_id, requestsPerMinute=5000))["setLimits"]
    assert got["requestsPerMinute"] == 5000


async def test_a_limit_the_owner_set_is_theirs_to_change(env: Env, world: World) -> None:
    key_id, _ = await member_key(env, world)
    member = world.token("member_a")
    data(await set_limits(env, member, "KEY", key_id, requestsPerMinute=10, tokensPerMinute=99))
    got = data(await set_limits(env, member, "KEY", key_id, requestsPerMinute=1_000_000))
    assert got["setLimits"]["requestsPerMinute"] == 1_000_000
    assert got["setLimits"]["locks"] == []


async def test_an_admin_limit_at_creation_binds_the_owner(env: Env, world: World) -> None:
    made = data(
        await gql(
            env,
            CREATE,
            {"i": {"userId": world.users["member_a"].id, "rateLimitRpm": 30}},
            world.token("admin_a"),
        )
    )["createApiKey"]["apiKey"]
    err = error(
        await gql(
            env, UPDATE, {"id": made["id"], "i": {"rateLimitRpm": 60}}, world.token("member_a")
        )
    )
    assert err["code"] == "FORBIDDEN" and "(30)" in err["message"]


async def test_who_may_set_which_limits(env: Env, world: World) -> None:
    member, admin, super_ = (
        world.token("member_a"),
        world.token("admin_a"),
        world.token("super"),
    )
    me = world.users["member_a"].id
    # Members may not set their own user limits, nor their app's or organization's.
    for target, ident in (("USER", me), ("APP", world.app_a.id), ("ORGANIZATION", world.org_a.id)):
        err = error(await set_limits(env, member, target, ident, requestsPerMinute=1))
        assert err["code"] == "FORBIDDEN", (target, err)
    # An org_admin sets their members' and apps' limits, not their organization's, nor
    # another organization's.
    got = data(await set_limits(env, admin, "USER", me, tokensPerMinute=500, spendCapUsd="3"))
    assert (got["setLimits"]["tokensPerMinute"], got["setLimits"]["capPeriod"]) == (500, "WEEKLY")
    assert env.gw.store.tenancy.users[me].limits.tpm == 500
    assert env.gw.store.tenancy.users[me].weekly_cap_usd == Decimal(3)
    got = data(
        await set_limits(
            env, admin, "APP", world.app_a.id, spendCapUsd="7", capPeriod="DAILY", allowedModels=[]
        )
    )["setLimits"]
    assert (Decimal(got["spendCapUsd"]), got["capPeriod"], got["allowedModels"]) == (7, "DAILY", [])
    app_info = env.gw.store.tenancy.apps[world.app_a.id]
    assert (app_info.limits.spend_cap_usd, app_info.limits.allowed_models) == (Decimal(7), ())
    err = error(await set_limits(env, admin, "ORGANIZATION", world.org_a.id, requestsPerMinute=1))
    assert err["code"] == "FORBIDDEN" and "super_admin" in err["message"]
    err = error(await set_limits(env, admin, "APP", world.app_b.id, requestsPerMinute=1))
    assert err["code"] == "FORBIDDEN"
    got = data(
        await set_limits(env, super_, "ORGANIZATION", world.org_a.id, requestsPerMinute=1000)
    )
    assert got["setLimits"]["requestsPerMinute"] == 1000
    assert env.gw.store.tenancy.orgs[world.org_a.id].limits.rpm == 1000
    # Reading: a member sees their own user's and organization's limits.
    own = data(await gql(env, GET, {"t": "USER", "id": me}, member))["limits"]
    assert own["tokensPerMinute"] == 500
    org = data(await gql(env, GET, {"t": "ORGANIZATION", "id": world.org_a.id}, member))
    assert org["limits"]["requestsPerMinute"] == 1000
    nested = data(await gql(env, "{ me { limits { tokensPerMinute spendCapUsd } } }", None, member))
    assert nested["me"]["limits"]["tokensPerMinute"] == 500
    assert Decimal(nested["me"]["limits"]["spendCapUsd"]) == 3


async def test_limits_are_validated(env: Env, world: World) -> None:
    admin = world.token("admin_a")
    me = world.users["member_a"].id
    for changes, field in (
        ({"requestsPerMinute": 0}, "requestsPerMinute"),
        ({"tokensPerMinute": -5}, "tokensPerMinute"),
        ({"spendCapUsd": "-1"}, "spendCapUsd"),
        ({"capPeriod": "MONTHLY"}, "capPeriod"),  # a user's cap is weekly
        ({"allowedModels": ["gpt 4o"]}, "allowedModels"),
        ({"allowedModels": [f"m{i}" for i in range(101)]}, "allowedModels"),
    ):
        err = error(await set_limits(env, admin, "USER", me, **changes))
        assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field), (changes, err)
    err = error(await set_limits(env, admin, "USER", 999_999, requestsPerMinute=1))
    assert err["code"] == "NOT_FOUND"


async def test_bad_limits_on_a_key_are_refused_as_bad_input(env: Env, world: World) -> None:
    key_id, _ = await member_key(env, world)
    for token in (world.token("member_a"), world.token("admin_a")):
        for changes, field in (
            ({"requestsPerMinute": 0}, "requestsPerMinute"),
            ({"tokensPerMinute": 1_000_000_001}, "tokensPerMinute"),
            ({"spendCapUsd": "1e999999999"}, "spendCapUsd"),
            ({"spendCapUsd": "0.000000001"}, "spendCapUsd"),
            ({"capPeriod": None}, "capPeriod"),
            ({"allowedModels": [""]}, "allowedModels"),
        ):
            err = error(await set_limits(env, token, "KEY", key_id, **changes))
            assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field), (changes, err)
    row = await ApiKey.get(id=key_id)
    assert (row.rate_limit_rpm, row.spend_cap_usd, row.admin_limits) == (None, None, {})


#: Lock records this version did not write (by hand, an older version): each limit's record
#: names a bad role or holds a bad value.
DAMAGED = {
    "rate_limit_rpm": {"value": 100, "by": "x", "role": "owner", "at": "yesterday", "name": 7},
    "rate_limit_tpm": {"value": "lots", "role": "org_admin"},
    "spend_cap": {"value": "abc", "period": ["hourly"], "role": 3},
    "allowed_models": 5,
    "not_a_limit": {"value": 1},
}


async def test_a_damaged_lock_record_reads_and_still_binds(env: Env, world: World) -> None:
    key_id, _ = await member_key(env, world)
    member, admin = world.token("member_a"), world.token("admin_a")
    await ApiKey.filter(id=key_id).update(admin_limits=DAMAGED)
    # Read by the owner, directly and through the key: no "Unexpected error", the readable
    # parts as recorded, the rest null or "unreadable".
    got = data(await gql(env, GET, {"t": "KEY", "id": key_id}, member))["limits"]["locks"]
    by_limit = {lock["limit"]: lock for lock in got}
    assert set(by_limit) == {
        "REQUESTS_PER_MINUTE",
        "TOKENS_PER_MINUTE",
        "SPEND_CAP",
        "ALLOWED_MODELS",
    }
    assert by_limit["REQUESTS_PER_MINUTE"] == {
        "limit": "REQUESTS_PER_MINUTE",
        "ceiling": "100",
        "setById": None,
        "setByName": None,
        "setByRole": None,
        "setAt": None,
    }
    assert by_limit["TOKENS_PER_MINUTE"]["setByRole"] == "ORG_ADMIN"
    for name in ("TOKENS_PER_MINUTE", "SPEND_CAP", "ALLOWED_MODELS"):
        assert by_limit[name]["ceiling"] == "unreadable", by_limit[name]
    assert by_limit["SPEND_CAP"]["setByRole"] is None
    listed = data(
        await gql(env, "{ apiKeys { nodes { limits { locks { limit } } } } }", None, member)
    )
    assert len(listed["apiKeys"]["nodes"][0]["limits"]["locks"]) == 4

    # The owner may tighten under a readable ceiling, whoever the record says set it...
    got = data(await set_limits(env, member, "KEY", key_id, requestsPerMinute=50))["setLimits"]
    assert got["requestsPerMinute"] == 50
    err = error(await set_limits(env, member, "KEY", key_id, requestsPerMinute=101))
    assert (
        err["code"] == "FORBIDDEN"
        and "(100) was set by an administrator (unknown)" in (err["message"])
    )
    # ... and may not change a limit whose ceiling cannot be read: a clear refusal.
    for changes, what in (
        ({"tokensPerMinute": 10}, "tokens-per-minute limit"),
        ({"spendCapUsd": "1", "capPeriod": "DAILY"}, "spend cap"),
        ({"allowedModels": ["gpt-4o"]}, "model allowlist"),
    ):
        err = error(await set_limits(env, member, "KEY", key_id, **changes))
        assert err["code"] == "FORBIDDEN", (changes, err)
        assert f"the {what} of key" in err["message"], err
        assert (
            "its recorded ceiling is unreadable: only an administrator may change it"
            in (err["message"])
        )
    # An administrator sets them again, which writes good records (the unknown entry stays).
    got = data(
        await set_limits(
            env, admin, "KEY", key_id, tokensPerMinute=10, spendCapUsd="1", allowedModels=["a*"]
        )
    )["setLimits"]
    assert {lock["ceiling"] for lock in got["locks"]} == {"100", "10", "$1.00 monthly", "a*"}
    row = await ApiKey.get(id=key_id)
    assert row.admin_limits["not_a_limit"] == {"value": 1}
    assert row.admin_limits["rate_limit_tpm"]["role"] == "org_admin"
    assert row.admin_limits["rate_limit_rpm"]["role"] == "owner"  # not touched, still binds


async def test_admin_limits_that_are_not_an_object_bind_nothing(env: Env, world: World) -> None:
    key_id, _ = await member_key(env, world)
    await ApiKey.filter(id=key_id).update(admin_limits=[1, 2])
    member = world.token("member_a")
    got = data(await gql(env, GET, {"t": "KEY", "id": key_id}, member))["limits"]
    assert got["locks"] == []
    got = data(await set_limits(env, member, "KEY", key_id, requestsPerMinute=7))["setLimits"]
    assert got["requestsPerMinute"] == 7
    assert (await ApiKey.get(id=key_id)).admin_limits == {}
    # Rotating such a key copies its locks (none) instead of failing.
    await ApiKey.filter(id=key_id).update(admin_limits=[1, 2])
    rotate = (
        "mutation($id: Int!) { rotateApiKey(id: $id) { apiKey { limits { locks { limit } } } } }"
    )
    got = data(await gql(env, rotate, {"id": key_id}, member))["rotateApiKey"]
    assert got["apiKey"]["limits"]["locks"] == []
