"""API keys through GraphQL: the secret once, hashes at rest, revoke, expiry, rate limits, scope."""

from __future__ import annotations

import datetime as dt

import orjson

from backend.data.models.keys import ApiKey
from backend.security.api_keys import hash_key
from tests.graphql.harness import Env, World, data, error, gql

FIELDS = (
    "id name prefix kind userId appId rateLimitRpm expiresAt "
    "revokedAt status user { email } app { slug }"
)
CREATE = (
    f"mutation($i: CreateApiKeyInput!) {{ createApiKey(input: $i) {{ "
    f"secret apiKey {{ {FIELDS} }} }} }}"
)
UPDATE = (
    f"mutation($id: Int!, $i: UpdateApiKeyInput!) {{ updateApiKey(id: "
    f"$id, input: $i) {{ {FIELDS} }} }}"
)
REVOKE = f"mutation($id: Int!) {{ revokeApiKey(id: $id) {{ {FIELDS} }} }}"
DELETE = "mutation($id: Int!) { deleteApiKey(id: $id) }"
GET = f"query($id: Int!) {{ apiKey(id: $id) {{ {FIELDS} }} }}"
LIST = f"query($f: ApiKeyFilter) {{ apiKeys(filter: $f) {{ nodes {{ {FIELDS} }} totalCount }} }}"


async def test_user_key_lifecycle(env: Env, world: World) -> None:
    tok = world.token("member_a")
    made = data(await gql(env, CREATE, {"i": {"name": "laptop", "rateLimitRpm": 60}}, tok))[
        "createApiKey"
    ]
    secret, key = made["secret"], made["apiKey"]
    assert secret.startswith(key["prefix"] + "-")
    assert (key["kind"], key["userId"], key["status"]) == (
        "USER",
        world.users["member_a"].id,
        "ACTIVE",
    )
    assert key["user"] == {"email": "member_a@example.com"}
    row = await ApiKey.get(id=key["id"])
    assert row.key_hash == hash_key(secret)
    # The hot path's snapshot has the key right away (no restart, no DB read per request).
    assert env.gw.store.keys.by_hash[hash_key(secret)].rate_limit_rpm == 60

    # The secret is never shown again.
    listed = await gql(env, LIST, {}, tok)
    fetched = await gql(env, GET, {"id": key["id"]}, tok)
    for body in (listed, fetched):
        assert secret not in orjson.dumps(body).decode()
    assert data(listed)["apiKeys"]["totalCount"] == 1

    upd = data(
        await gql(env, UPDATE, {"id": key["id"], "i": {"name": "desk", "rateLimitRpm": None}}, tok)
    )["updateApiKey"]
    assert (upd["name"], upd["rateLimitRpm"]) == ("desk", None)

    revoked = data(await gql(env, REVOKE, {"id": key["id"]}, tok))["revokeApiKey"]
    assert revoked["status"] == "REVOKED" and revoked["revokedAt"]
    assert env.gw.store.keys.by_hash[hash_key(secret)].revoked is True
    assert (
        data(await gql(env, LIST, {"f": {"status": "REVOKED"}}, tok))["apiKeys"]["totalCount"] == 1
    )
    assert (
        data(await gql(env, LIST, {"f": {"status": "ACTIVE"}}, tok))["apiKeys"]["totalCount"] == 0
    )

    assert data(await gql(env, DELETE, {"id": key["id"]}, tok))["deleteApiKey"] == key["id"]
    assert hash_key(secret) not in env.gw.store.keys.by_hash


async def test_app_key_and_expiry(env: Env, world: World) -> None:
    tok = world.token("admin_a")
    soon = (env.clock() + dt.timedelta(days=1)).isoformat()
    made = data(await gql(env, CREATE, {"i": {"appId": world.app_a.id, "expiresAt": soon}}, tok))[
        "createApiKey"
    ]["apiKey"]
    assert (made["kind"], made["app"], made["status"]) == ("APP", {"slug": "billing"}, "ACTIVE")
    env.clock.now += dt.timedelta(days=2)
    assert data(await gql(env, GET, {"id": made["id"]}, tok))["apiKey"]["status"] == "EXPIRED"
    assert (
        data(await gql(env, LIST, {"f": {"status": "EXPIRED"}}, tok))["apiKeys"]["totalCount"] == 1
    )


async def test_validation(env: Env, world: World) -> None:
    tok = world.token("super")
    past = (env.clock() - dt.timedelta(minutes=1)).isoformat()
    cases = [
        ({"expiresAt": past}, "expiresAt"),
        ({"rateLimitRpm": 0}, "rateLimitRpm"),
        ({"userId": world.users["member_a"].id, "appId": world.app_a.id}, "appId"),
        ({"userId": 987654}, "userId"),
        ({"appId": 987654}, "appId"),
    ]
    for patch, field in cases:
        err = error(await gql(env, CREATE, {"i": patch}, tok))
        assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field), patch
    assert await ApiKey.all().count() == 0


async def test_scope(env: Env, world: World) -> None:
    # A member manages only their own keys.
    err = error(
        await gql(
            env, CREATE, {"i": {"userId": world.users["admin_a"].id}}, world.token("member_a")
        )
    )
    assert err["code"] == "FORBIDDEN"
    err = error(await gql(env, CREATE, {"i": {"appId": world.app_a.id}}, world.token("member_a")))
    assert err["code"] == "FORBIDDEN"
    # An org_admin manages their organization's users' and apps' keys, not another's.
    b_key = data(await gql(env, CREATE, {"i": {}}, world.token("member_b")))["createApiKey"][
        "apiKey"
    ]
    a_key = data(
        await gql(
            env, CREATE, {"i": {"userId": world.users["member_a"].id}}, world.token("admin_a")
        )
    )["createApiKey"]["apiKey"]
    for q in (GET, REVOKE, DELETE):
        assert (
            error(await gql(env, q, {"id": b_key["id"]}, world.token("admin_a")))["code"]
            == "FORBIDDEN"
        )
    err = error(await gql(env, CREATE, {"i": {"appId": world.app_b.id}}, world.token("admin_a")))
    assert err["code"] == "FORBIDDEN"
    listed = data(await gql(env, LIST, {}, world.token("admin_a")))["apiKeys"]["nodes"]
    assert [k["id"] for k in listed] == [a_key["id"]]
    # A member listing with someone else's filter still sees only their own.
    listed = data(
        await gql(env, LIST, {"f": {"userId": world.users["member_a"].id}}, world.token("member_b"))
    )["apiKeys"]["nodes"]
    assert listed == []
    everything = data(await gql(env, LIST, {}, world.token("super")))["apiKeys"]["totalCount"]
    assert everything == 2
