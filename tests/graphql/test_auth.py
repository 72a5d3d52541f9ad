"""Login / logout sessions, admin tokens for automation, and what an anonymous caller gets.

Failed logins are throttled per account and per client address, shared through Redis between
instances; passwords are checked on worker threads with a bounded backlog.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.routing import Route

from backend.admin.bootstrap import bootstrap_super_admin
from backend.data.models.keys import AdminToken
from backend.data.models.tenancy import User
from backend.graphql.app import create_graphql_app
from backend.security.api_keys import hash_key
from backend.security.login_guard import build_login_guard
from backend.security.sessions import create_session
from tests.graphql.harness import Env, World, data, error, gql

LOGIN = (
    "mutation($e: String!, $p: String!) { login(email: $e, password: "
    "$p) { token expiresAt user { email role } } }"
)
ME = "{ me { email role } }"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


async def test_login_me_logout(env: Env) -> None:
    await bootstrap_super_admin("root@example.com", "s3cret-passw0rd")
    session = data(await gql(env, LOGIN, {"e": "ROOT@example.com", "p": "s3cret-passw0rd"}))[
        "login"
    ]
    assert session["user"] == {"email": "root@example.com", "role": "SUPER_ADMIN"}
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


# -- login throttling and password workers (issue 13 item 6) ------------------------------------


def _client(app: Any, address: str) -> httpx.AsyncClient:
    """A client calling from ``address`` (the throttle counts per client address)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def _login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    resp = await client.post(
        "/graphql", json={"query": LOGIN, "variables": {"e": email, "p": password}}
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _refusal(body: dict[str, Any]) -> tuple[str, str, int | None]:
    err = body["errors"][0]
    return err["extensions"]["code"], err["message"], err["extensions"].get("retryAfter")


async def test_failed_logins_lock_the_account_out(env: Env) -> None:
    await bootstrap_super_admin("locked@example.com", "s3cret-passw0rd")
    limit = env.gw.settings.login_max_failures
    async with _client(env.app, "10.1.0.1") as client:
        for _ in range(limit):
            body = await _login(client, "locked@example.com", "wrong-password")
            assert error(body)["code"] == "UNAUTHENTICATED"
        # Locked: the right password is refused too, and the answer says when to retry.
        body = await _login(client, "Locked@Example.com", "s3cret-passw0rd")
        assert _refusal(body) == (
            "RATE_LIMITED",
            "too many failed logins for this account; try again in 30 seconds",
            30,
        )
        assert body["data"] is None
    # The account is locked whichever address the login comes from.
    async with _client(env.app, "10.1.0.2") as other:
        body = await _login(other, "locked@example.com", "s3cret-passw0rd")
        assert _refusal(body)[0] == "RATE_LIMITED"
        env.clock.now += dt.timedelta(seconds=29)
        assert _refusal(await _login(other, "locked@example.com", "s3cret-passw0rd"))[2] == 1
        env.clock.now += dt.timedelta(seconds=2)
        # Once the lock ends the right password works, and the count starts over.
        assert data(await _login(other, "locked@example.com", "s3cret-passw0rd"))["login"]["token"]
        for _ in range(limit - 1):
            body = await _login(other, "locked@example.com", "wrong-password")
            assert error(body)["code"] == "UNAUTHENTICATED"
        assert data(await _login(other, "locked@example.com", "s3cret-passw0rd"))["login"]["token"]


async def test_lockouts_grow_exponentially(env: Env) -> None:
    await bootstrap_super_admin("slow@example.com", "s3cret-passw0rd")
    limit = env.gw.settings.login_max_failures
    async with _client(env.app, "10.3.0.1") as client:
        for _ in range(limit):
            await _login(client, "slow@example.com", "wrong-password")
        assert _refusal(await _login(client, "slow@example.com", "wrong-password"))[2] == 30
        for lock in (60, 120, 240):
            env.clock.now += dt.timedelta(seconds=lock // 2 + 1)
            # One more failure after each lock ends doubles the next lock.
            assert error(await _login(client, "slow@example.com", "nope-nope"))["code"] == (
                "UNAUTHENTICATED"
            )
            assert _refusal(await _login(client, "slow@example.com", "s3cret-passw0rd"))[2] == lock


async def test_failed_logins_lock_the_address_out(env: Env) -> None:
    await bootstrap_super_admin("sprayed@example.com", "s3cret-passw0rd")
    limit = env.gw.settings.login_max_failures_per_address
    async with _client(env.app, "10.2.0.1") as client:
        # One try per account: no account reaches its own limit, the address does.
        for i in range(limit):
            body = await _login(client, f"guess{i}@example.com", "wrong-password")
            assert error(body)["code"] == "UNAUTHENTICATED"
        code, message, retry = _refusal(
            await _login(client, "sprayed@example.com", "s3cret-passw0rd")
        )
        assert (code, retry) == ("RATE_LIMITED", 30)
        assert message == "too many failed logins from this address; try again in 30 seconds"
    async with _client(env.app, "10.2.0.2") as elsewhere:
        assert data(await _login(elsewhere, "sprayed@example.com", "s3cret-passw0rd"))["login"]


async def test_a_locked_out_address_is_refused_before_its_document_is_parsed(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login flood from a locked-out address costs no GraphQL work: anonymous requests from it
    are answered before parsing (so a syntax error gets the lockout, not a parse error), while
    requests carrying credentials from the same address are served as usual."""
    await bootstrap_super_admin("flooded@example.com", "s3cret-passw0rd")
    limit = env.gw.settings.login_max_failures_per_address
    async with _client(env.app, "10.3.0.1") as client:
        for i in range(limit):
            await _login(client, f"flood{i}@example.com", "wrong-password")
        import strawberry.schema.schema as strawberry_schema

        parses = []
        real_parse = strawberry_schema.parse
        monkeypatch.setattr(
            strawberry_schema, "parse", lambda *a, **k: parses.append(a) or real_parse(*a, **k)
        )
        for query in ("{ dlpRules { id } }", "mutation { login(", LOGIN):
            resp = await client.post(
                "/graphql",
                json={"query": query, "variables": {"e": "flooded@example.com", "p": "x"}},
            )
            assert resp.status_code == 200, resp.text
            assert resp.headers["retry-after"] == "30"
            code, message, retry = _refusal(resp.json())
            assert (code, retry) == ("RATE_LIMITED", 30)
            assert message == "too many failed logins from this address; try again in 30 seconds"
        assert parses == []
        # Credentials are not anonymous: a token holder at that address is served.
        user = await User.get(email="flooded@example.com")
        token, _row = await create_session(user, now=env.gw.clock())
        resp = await client.post(
            "/graphql",
            json={"query": "{ me { email } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.json() == {"data": {"me": {"email": "flooded@example.com"}}}


async def test_passwords_are_checked_off_the_event_loop(env: Env) -> None:
    """While a login waits for argon2, the loop serves others; past the backlog, refusal."""
    await bootstrap_super_admin("busy@example.com", "s3cret-passw0rd")
    settings = env.gw.settings.model_copy(update={"password_workers": 1, "password_queue": 1})
    guard = build_login_guard(settings, clock=lambda: env.gw.clock().timestamp())
    gql_app = create_graphql_app(env.gw, guard)
    app = Starlette(routes=[Route("/graphql", gql_app, methods=["GET", "POST"])])
    release = threading.Event()
    try:
        # The one worker is taken; the next password check waits for it, off the loop.
        blocker = asyncio.create_task(guard.passwords.run(release.wait))
        async with _client(app, "10.4.0.1") as client:
            waiting = asyncio.create_task(_login(client, "busy@example.com", "s3cret-passw0rd"))
            for _ in range(3000):
                if guard.passwords.pending == 2:
                    break
                await asyncio.sleep(0.01)
            assert guard.passwords.pending == 2, "the login never reached the password workers"
            # The loop is free meanwhile: another request is answered at once.
            resp = await client.post("/graphql", json={"query": "{ __typename }"})
            assert resp.json() == {"data": {"__typename": "Query"}}
            assert not waiting.done()
            # Backlog full: refused at once, not queued without bound.
            assert _refusal(await _login(client, "busy@example.com", "s3cret-passw0rd")) == (
                "RATE_LIMITED",
                "the server is busy checking other passwords; try again in a second",
                1,
            )
            release.set()
            assert await blocker is True
            assert data(await waiting)["login"]["user"]["email"] == "busy@example.com"
    finally:
        release.set()
        guard.close()


async def test_two_instances_count_failures_together(env: Env) -> None:
    """With Redis, failures on instance A and instance B add up to one count."""
    await bootstrap_super_admin("shared@example.com", "s3cret-passw0rd")
    redis = aioredis.from_url(REDIS_URL)
    prefix = f"sbtest-{uuid.uuid4().hex[:8]}:"
    settings = env.gw.settings.model_copy(update={"redis_prefix": prefix})
    guards = [
        build_login_guard(settings, redis=redis, clock=lambda: env.gw.clock().timestamp())
        for _ in range(2)
    ]
    apps = [
        Starlette(routes=[Route("/graphql", create_graphql_app(env.gw, g), methods=["POST"])])
        for g in guards
    ]
    try:
        limit = settings.login_max_failures
        for i in range(limit):
            async with _client(apps[i % 2], "10.5.0.1") as client:
                body = await _login(client, "shared@example.com", "wrong-password")
                assert error(body)["code"] == "UNAUTHENTICATED"
        for app in apps:
            async with _client(app, "10.5.0.2") as client:
                body = await _login(client, "shared@example.com", "s3cret-passw0rd")
                assert _refusal(body)[0] == "RATE_LIMITED"
    finally:
        for g in guards:
            g.close()
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
