"""Login / logout sessions, admin tokens for automation, and what an anonymous caller gets."""

from __future__ import annotations

import datetime as dt

from backend.admin.bootstrap import bootstrap_super_admin
from backend.data.models.keys import AdminToken
from backend.data.models.tenancy import User
from backend.security.api_keys import hash_key
from tests.graphql.harness import Env, World, data, error, gql

LOGIN = (
    "mutation($e: String!, $p: String!) { login(email: $e, password: "
    "$p) { token expiresAt user { email role } } }"
)
ME = "{ me { email role } }"


async def test_login_me_logout(env: Env) -> None:
    await bootstrap_super_admin("root@example.com", "s3cret-passw0rd")
    session = data(await gql(env, LOGIN, {"e": "ROOT@example.com", "p": "s3cret-passw0rd"}))[
        "login"
    ]
    assert session["user"] == {"email": "root@example.com", "role": "super_admin"}
    assert dt.datetime.fromisoformat(session["expiresAt"]) > env.clock()
    token = session["token"]
    # Only a hash is stored.
    row = await AdminToken.get(token_hash=hash_key(token))
    assert row.kind == "session" and token not in (row.prefix, row.token_hash)

    assert data(await gql(env, ME, token=token))["me"]["email"] == "root@example.com"
    assert data(await gql(env, "mutation { logout }", token=token))["logout"] is True
    assert error(await gql(env, ME, token=token))["code"] == "UNAUTHENTICATED"


async def test_login_failures_say_the_same(env: Env) -> None:
    await bootstrap_super_admin("root@example.com", "s3cret-passw0rd")
    wrong = error(await gql(env, LOGIN, {"e": "root@example.com", "p": "nope-nope-nope"}))
    unknown = error(await gql(env, LOGIN, {"e": "who@example.com", "p": "s3cret-passw0rd"}))
    assert wrong == unknown
    assert wrong["code"] == "UNAUTHENTICATED"
    await User.filter(email="root@example.com").update(status="suspended")
    suspended = error(await gql(env, LOGIN, {"e": "root@example.com", "p": "s3cret-passw0rd"}))
    assert suspended["code"] == "UNAUTHENTICATED"


async def test_session_expires(env: Env) -> None:
    await bootstrap_super_admin("root@example.com", "s3cret-passw0rd")
    token = data(await gql(env, LOGIN, {"e": "root@example.com", "p": "s3cret-passw0rd"}))["login"][
        "token"
    ]
    env.clock.now += dt.timedelta(hours=13)
    assert error(await gql(env, ME, token=token))["code"] == "UNAUTHENTICATED"


async def test_admin_token_for_automation(env: Env, world: World) -> None:
    made = data(
        await gql(
            env,
            (
                'mutation { createAdminToken(name: "ci", expiresInDays: 30) { '
                "token adminToken { id name prefix expiresAt } } }"
            ),
            token=world.token("admin_a"),
        )
    )["createAdminToken"]
    token = made["token"]
    assert token.startswith(made["adminToken"]["prefix"])
    assert data(await gql(env, ME, token=token))["me"]["email"] == "admin_a@example.com"
    listed = data(await gql(env, "{ adminTokens { id name } }", token=token))["adminTokens"]
    assert {"id": made["adminToken"]["id"], "name": "ci"} in listed
    assert all("token" not in t for t in listed)

    revoked = data(
        await gql(
            env,
            "mutation($id: Int!) { revokeAdminToken(id: $id) { revokedAt } }",
            {"id": made["adminToken"]["id"]},
            world.token("admin_a"),
        )
    )["revokeAdminToken"]
    assert revoked["revokedAt"] is not None
    assert error(await gql(env, ME, token=token))["code"] == "UNAUTHENTICATED"

    err = error(
        await gql(
            env, 'mutation { createAdminToken(name: "x") { token } }', token=world.token("member_a")
        )
    )
    assert err["code"] == "FORBIDDEN"
    err = error(
        await gql(
            env,
            'mutation { createAdminToken(name: "x", expiresInDays: 0) { token } }',
            token=world.token("super"),
        )
    )
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "expiresInDays")


async def test_anonymous_and_garbage_tokens(env: Env, world: World) -> None:
    assert error(await gql(env, ME))["code"] == "UNAUTHENTICATED"
    assert error(await gql(env, ME, token="sba-deadbeef-nope"))["code"] == "UNAUTHENTICATED"
    # A gateway API key is not a dashboard credential.
    assert error(await gql(env, ME, token="sb-12345678-abcdef"))["code"] == "UNAUTHENTICATED"
    # A suspended user's token stops working at once.
    await User.filter(id=world.users["admin_a"].id).update(status="suspended")
    assert error(await gql(env, ME, token=world.token("admin_a")))["code"] == "UNAUTHENTICATED"


async def test_change_password(env: Env) -> None:
    await bootstrap_super_admin("root@example.com", "s3cret-passw0rd")
    token = data(await gql(env, LOGIN, {"e": "root@example.com", "p": "s3cret-passw0rd"}))["login"][
        "token"
    ]
    q = (
        "mutation($c: String!, $n: String!) { "
        "changePassword(currentPassword: $c, newPassword: $n) }"
    )
    err = error(await gql(env, q, {"c": "wrong-password", "n": "new-passw0rd!"}, token))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "currentPassword")
    err = error(await gql(env, q, {"c": "s3cret-passw0rd", "n": "short"}, token))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "newPassword")
    assert data(await gql(env, q, {"c": "s3cret-passw0rd", "n": "new-passw0rd!"}, token))
    assert data(await gql(env, LOGIN, {"e": "root@example.com", "p": "new-passw0rd!"}))["login"]


async def test_graphiql_is_served(env: Env) -> None:
    resp = await env.client.get("/graphql", headers={"Accept": "text/html"})
    assert resp.status_code == 200
    assert "graphiql" in resp.text.lower()
