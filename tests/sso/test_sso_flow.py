"""Single sign-on against a real OpenID provider (panva's certified ``oidc-provider``, npm).

The gateway is ``create_app`` served by uvicorn in this process (the production wiring: routes,
GraphQL, WebSockets), on SQLite or PostgreSQL (+ Redis) by DATABASE_URL. The provider runs as
its own process (``tests/sso/oidc_provider.mjs``); sign-ins walk its real authorization code
flow with PKCE, its login form, token and userinfo endpoints, and its JWKS. SSO is set up
through GraphQL, as an administrator would.

Shown here: first sign-in creates the user with role and organization from the claims; the
mapping follows the provider at each sign-in; the ticket works once; unverified emails and
unmapped people are refused; "SSO only" refuses passwords (GraphQL error SSO_REQUIRED);
suspending a user ends their session (GraphQL refused, the live subscription closed, not
brought back by reactivation); a key rotation at the provider is picked up with exactly one
JWKS refetch; a forged state, a missing flow cookie and a replayed callback are refused; the
client secret, tickets and codes appear neither in answers nor in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.app import create_app
from backend.config import Settings
from backend.data.models.sso import SsoIdentity
from backend.data.models.tenancy import Organization, User
from backend.gateway import Gateway
from backend.security.passwords import hash_password
from backend.security.sessions import issue_token
from backend.sso.config import client_for
from backend.sso.signin import identity_key
from tests.dbutil import create_database, drop_database, migrate_fresh, redis_url
from tests.e2e.harness import GatewayProc
from tests.security.authz_world import serve
from tests.sso.provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    Landing,
    OidcProvider,
    follow,
    require_installed,
    sign_in,
)

DASHBOARD = "http://127.0.0.1:9/dashboard"
PASSWORD = "member-password-sso-42"
USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@acme.test",
        "email_verified": True,
        "name": "Alice Admin",
        "groups": ["staff", "sb-admins"],
    },
    "bob": {"email": "bob@acme.test", "email_verified": True, "name": "Bob", "groups": ["staff"]},
    "mallory": {"email": "mallory@acme.test", "email_verified": False, "groups": ["staff"]},
    "nobody": {"email": "nobody@elsewhere.test", "email_verified": True, "groups": []},
}


@dataclass
class World:
    base: str
    gw: Gateway
    provider: OidcProvider
    admin_token: str
    acme: Organization
    globex: Organization
    client: httpx.AsyncClient
    settings: Settings

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        r = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body: dict[str, Any] = r.json()
        return body

    async def admin(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.gql(query, variables, self.admin_token)
        assert not body.get("errors"), body
        return body["data"]  # type: ignore[no-any-return]

    async def sign_in(self, login: str) -> Landing:
        return await sign_in(self.base, DASHBOARD, login)

    async def session_of(self, login: str) -> tuple[str, dict[str, Any]]:
        """Sign in and redeem the ticket as the dashboard does: ``(token, me)``."""
        landing = await self.sign_in(login)
        assert landing.ticket, landing.url
        body = await self.gql(REDEEM, {"t": landing.ticket})
        assert not body.get("errors"), body
        session = body["data"]["redeemSsoLogin"]
        return session["token"], session["user"]


REDEEM = """mutation($t: String!) { redeemSsoLogin(ticket: $t) {
  token user { id email name role organization { name } } } }"""
ME = "{ me { id email role organization { name } } }"


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    require_installed()
    tmp = tmp_path_factory.mktemp("sso")
    url = await create_database(tmp)
    await migrate_fresh(url)
    settings = Settings(
        database_url=url,
        redis_url=redis_url(),
        redis_prefix=f"sbsso-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp / "data",
        secret_key=f"sso-{uuid.uuid4().hex}",
        log_flush_interval_s=0.1,
    )
    app = create_app(settings)
    provider: OidcProvider | None = None
    try:
        async with serve(app) as base:
            gw: Gateway = app.state.gateway
            # Each unknown kid may refetch at once here (the minimum interval has a unit test).
            client_for(gw).jwks_min_refetch_s = 0.0
            provider = OidcProvider([base + "/auth/oidc/callback"], dict(USERS), tmp / "op")
            await asyncio.to_thread(provider.start)
            admin = await User.create(
                name="Root",
                email="root@switchboard.test",
                role="super_admin",
                password_hash=hash_password(PASSWORD),
            )
            token, _ = await issue_token(admin, "session", now=gw.clock())
            acme = await Organization.create(name="Acme", slug="acme")
            globex = await Organization.create(name="Globex", slug="globex")
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                w = World(base, gw, provider, token, acme, globex, client, settings)
                await _set_up(w)
                yield w
    finally:
        if provider is not None:
            provider.stop()
        await drop_database(url)


async def _set_up(w: World) -> None:
    data = await w.admin(
        """mutation($i: SsoProviderInput!) { setSsoProvider(input: $i) {
          issuer clientId clientSecretSet clientSecretLast4 callbackUrl loginUrl scopes } }""",
        {
            "i": {
                "displayName": "Acme SSO",
                "issuer": w.provider.issuer,
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
                "scopes": ["openid", "email", "profile", "groups"],
                "gatewayUrl": w.base,
                "dashboardUrl": DASHBOARD,
            }
        },
    )
    sso = data["setSsoProvider"]
    assert sso["clientSecretSet"] and sso["clientSecretLast4"] == CLIENT_SECRET[-4:]
    assert sso["callbackUrl"] == w.base + "/auth/oidc/callback"
    rule = "mutation($i: SsoRuleInput!) { createSsoRule(input: $i) { id position } }"
    for claim, value, role, org in (
        ("groups", "sb-admins", "ORG_ADMIN", w.acme.id),
        ("groups", "staff", "MEMBER", w.acme.id),
    ):
        await w.admin(
            rule, {"i": {"claim": claim, "value": value, "role": role, "organizationId": org}}
        )


async def test_login_page_link_is_public(world: World) -> None:
    body = await world.gql("{ ssoLogin { enabled displayName loginUrl } }")
    assert body["data"]["ssoLogin"] == {
        "enabled": True,
        "displayName": "Acme SSO",
        "loginUrl": world.base + "/auth/oidc/login",
    }


async def test_first_sign_in_creates_the_user_with_mapped_role_and_organization(
    world: World,
) -> None:
    assert not await User.exists(email="alice@acme.test")
    token, user = await world.session_of("alice")
    assert user["email"] == "alice@acme.test" and user["name"] == "Alice Admin"
    assert user["role"] == "ORG_ADMIN" and user["organization"] == {"name": "Acme"}
    me = (await world.gql(ME, token=token))["data"]["me"]
    assert me["role"] == "ORG_ADMIN" and me["organization"]["name"] == "Acme"
    row = await User.get(email="alice@acme.test")
    assert row.password_hash is None  # an SSO user has no password to steal or guess


async def test_ticket_works_once(world: World) -> None:
    landing = await world.sign_in("bob")
    assert landing.ticket
    first = await world.gql(REDEEM, {"t": landing.ticket})
    assert first["data"]["redeemSsoLogin"]["user"]["role"] == "MEMBER"
    again = await world.gql(REDEEM, {"t": landing.ticket})
    assert again["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "ticket"}
    assert "already used or has expired" in again["errors"][0]["message"]
    # A ticket is not a session: it opens nothing by itself.
    opened = await world.gql(ME, token=landing.ticket)
    assert opened["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_mapping_follows_the_provider_at_each_sign_in(world: World) -> None:
    _, before = await world.session_of("alice")
    world.provider.set_users({**USERS, "alice": {**USERS["alice"], "groups": ["staff"]}})
    try:
        _, after = await world.session_of("alice")
    finally:
        world.provider.set_users(dict(USERS))
    assert after["id"] == before["id"]  # the same user, linked by issuer + subject
    assert after["role"] == "MEMBER" and after["organization"]["name"] == "Acme"
    _, again = await world.session_of("alice")
    assert again["role"] == "ORG_ADMIN"


async def test_unverified_email_and_unmapped_people_are_refused(world: World) -> None:
    unverified = await world.sign_in("mallory")
    assert unverified.ticket is None and "email address is verified" in (unverified.error or "")
    unmapped = await world.sign_in("nobody")
    assert unmapped.ticket is None and "no mapping rule" in (unmapped.error or "")
    assert not await User.exists(email__in=["mallory@acme.test", "nobody@elsewhere.test"])
    # With a default role for people no rule maps, they get in, where the default says.
    await world.admin(
        "mutation($i: SsoProviderInput!) { setSsoProvider(input: $i) { defaultRole } }",
        {"i": {"defaultRole": "MEMBER", "defaultOrganizationId": world.globex.id}},
    )
    try:
        _, user = await world.session_of("nobody")
    finally:
        await world.admin(
            "mutation($i: SsoProviderInput!) { setSsoProvider(input: $i) { defaultRole } }",
            {"i": {"defaultRole": None, "defaultOrganizationId": None}},
        )
    assert user["role"] == "MEMBER" and user["organization"]["name"] == "Globex"


async def test_an_email_already_linked_to_another_subject_is_refused(world: World) -> None:
    # Erin's account was linked to someone else at this provider; the address now has a new
    # holder there (a reused email). Linking would hand Erin's account over: refused.
    erin = await User.create(
        name="Erin", email="erin@acme.test", role="member", organization=world.acme
    )
    await SsoIdentity.create(
        key=identity_key(world.provider.issuer, "erin-before"),
        issuer=world.provider.issuer,
        subject="erin-before",
        user=erin,
    )
    world.provider.set_users({**USERS, "erin": {"email": "erin@acme.test", "email_verified": True}})
    try:
        landing = await world.sign_in("erin")
    finally:
        world.provider.set_users(dict(USERS))
    assert landing.ticket is None
    assert "belongs to another account at the provider" in (landing.error or "")


LOGIN = """mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"""


async def test_sso_only_organization_refuses_passwords(world: World) -> None:
    carol = await User.create(
        name="Carol",
        email="carol@acme.test",
        role="member",
        organization=world.acme,
        password_hash=hash_password(PASSWORD),
    )
    ok = await world.gql(LOGIN, {"e": carol.email, "p": PASSWORD})
    assert ok["data"]["login"]["token"]
    org = """mutation($id: Int!, $i: UpdateOrganizationInput!) {
      updateOrganization(id: $id, input: $i) { ssoOnly } }"""
    data = await world.admin(org, {"id": world.acme.id, "i": {"ssoOnly": True}})
    assert data["updateOrganization"]["ssoOnly"] is True
    try:
        for password in (PASSWORD, "a-wrong-password"):
            refused = await world.gql(LOGIN, {"e": carol.email, "p": password})
            assert refused["data"] is None
            error = refused["errors"][0]
            assert error["extensions"]["code"] == "SSO_REQUIRED"
            assert "single sign-on only" in error["message"]
        # Changing the password is refused too; super_admins keep theirs (the way back in).
        change = await world.gql(
            "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: $c) }",
            {"c": PASSWORD},
            token=ok["data"]["login"]["token"],
        )
        assert change["errors"][0]["extensions"]["code"] == "SSO_REQUIRED"
        session = await world.gql(LOGIN, {"e": "root@switchboard.test", "p": PASSWORD})
        assert session["data"]["login"]["token"]
        # SSO still signs the organization's people in.
        _, user = await world.session_of("bob")
        assert user["organization"]["name"] == "Acme"
    finally:
        await world.admin(org, {"id": world.acme.id, "i": {"ssoOnly": False}})


async def _subscribe(world: World, token: str, base: str | None = None) -> Any:
    ws = await connect(
        (base or world.base).replace("http://", "ws://") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    )
    await ws.send(orjson.dumps({"type": "connection_init", "payload": {"token": token}}).decode())
    assert orjson.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(
        orjson.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { gatewayLogs { id } }"},
            }
        ).decode()
    )
    return ws


async def test_suspension_ends_the_session_and_its_subscription(world: World) -> None:
    token, user = await world.session_of("alice")
    assert (await world.gql(ME, token=token))["data"]["me"]["id"] == user["id"]
    ws = await _subscribe(world, token)
    status = """mutation($id: Int!, $s: UserStatus!) {
      updateUser(id: $id, input: {status: $s}) { status } }"""
    await world.admin(status, {"id": user["id"], "s": "SUSPENDED"})
    try:
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        refused = await world.gql(ME, token=token)
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        landing = await world.sign_in("alice")
        assert landing.ticket is None and "suspended" in (landing.error or "")
    finally:
        await world.admin(status, {"id": user["id"], "s": "ACTIVE"})
        await ws.close()
    # Revoked for good: reactivation does not bring the old session back; a new sign-in works.
    again = await world.gql(ME, token=token)
    assert again["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    fresh, _ = await world.session_of("alice")
    assert (await world.gql(ME, token=fresh))["data"]["me"]["id"] == user["id"]


async def test_key_rotation_is_picked_up_with_one_jwks_refetch(world: World) -> None:
    await world.session_of("bob")  # keys cached
    oidc = client_for(world.gw)
    fetched = oidc.jwks_fetches
    world.provider.rotate()
    _, user = await world.session_of("bob")
    assert user["email"] == "bob@acme.test"
    assert oidc.jwks_fetches == fetched + 1  # the new kid: refetched once
    await world.session_of("bob")
    assert oidc.jwks_fetches == fetched + 1  # then cached


async def test_forged_state_missing_cookie_and_replayed_callback_are_refused(world: World) -> None:
    async with httpx.AsyncClient(timeout=30) as browser:
        start = await browser.get(world.base + "/auth/oidc/login")
        assert start.status_code == 302
        [cookie] = [c for c in browser.cookies.jar if c.name.startswith("sb_oidc_")]
        assert cookie.path == "/auth/oidc" and cookie.has_nonstandard_attr("HttpOnly")
        # Walk the provider's part by hand, stopping at the redirect back to the gateway.
        landing = await follow(browser, start, world.base + "/auth/oidc/callback", login="bob")
        callback = landing.url
        state = Landing(callback).query["state"]
        r = await browser.get(callback.replace(state, "A" * len(state)))
        assert "not started in this browser" in (Landing(r.headers["location"]).error or "")
        # The real callback, in another browser (no flow cookie): refused.
        async with httpx.AsyncClient(timeout=30) as other:
            r = await other.get(callback)
            assert "not started in this browser" in (Landing(r.headers["location"]).error or "")
        # In this browser: accepted once; the replay finds no flow cookie any more.
        r = await browser.get(callback)
        assert Landing(r.headers["location"]).ticket
        r = await browser.get(callback)
        assert Landing(r.headers["location"]).ticket is None


async def test_secrets_stay_out_of_answers_and_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = await world.admin(
        "{ ssoProvider { clientSecretSet clientSecretLast4 } ssoRules { claim value role } }"
    )
    assert CLIENT_SECRET not in orjson.dumps(data).decode()
    landing = await world.sign_in("bob")
    assert landing.ticket
    # httpx/httpcore records are left out: this test's own browser logs the URLs it visits.
    gateway_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any("SSO sign-in of user" in r.getMessage() for r in gateway_side)
    text = "\n".join(r.getMessage() for r in gateway_side)
    assert CLIENT_SECRET not in text and landing.ticket not in text


ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


@pytest.mark.skipif(
    not (ON_POSTGRES and redis_url()),
    reason="two gateway instances need a shared PostgreSQL and Redis (CI's second pass)",
)
async def test_sign_in_started_on_one_instance_finishes_on_another(
    world: World, tmp_path: Path
) -> None:
    s = world.settings
    other = GatewayProc(
        env={
            "DATABASE_URL": s.database_url,
            "REDIS_URL": s.redis_url or "",
            "SWITCHBOARD_REDIS_PREFIX": s.redis_prefix,
            "SWITCHBOARD_SECRET_KEY": s.secret_key or "",
            "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
        },
        log_path=tmp_path / "gateway-b.log",
    )
    await asyncio.to_thread(other.start)
    try:
        async with httpx.AsyncClient(timeout=30) as browser:
            start = await browser.get(world.base + "/auth/oidc/login")  # instance A
            back = await follow(browser, start, world.base + "/auth/oidc/callback", login="bob")
            # The load balancer sends the provider's redirect to instance B.
            r = await browser.get(back.url.replace(world.base, other.url, 1))
        ticket = Landing(r.headers["location"]).ticket
        assert ticket, r.headers["location"]
        body = await world.gql(REDEEM, {"t": ticket})  # redeemed on A
        token, user = (
            body["data"]["redeemSsoLogin"]["token"],
            body["data"]["redeemSsoLogin"]["user"],
        )
        # A live subscription on B ends when A suspends the user.
        ws = await _subscribe(world, token, base=other.url)
        status = """mutation($id: Int!, $s: UserStatus!) {
          updateUser(id: $id, input: {status: $s}) { status } }"""
        await world.admin(status, {"id": user["id"], "s": "SUSPENDED"})
        try:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        finally:
            await world.admin(status, {"id": user["id"], "s": "ACTIVE"})
            await ws.close()
        assert (
            CLIENT_SECRET not in other.log_path.read_text()
            and ticket not in other.log_path.read_text()
        )
    finally:
        await asyncio.to_thread(other.stop)
