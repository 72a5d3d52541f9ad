"""Who may call: suspended users, inactive apps, revoked and expired keys (issue 4, "Must show" 3),
seeded before start and changed at run time through the GraphQL admin API.

The refusals relied on (backend/proxy/auth.py), each before any provider is called and logged
with the key's display prefix (never its secret):

=================  ======  ======================  ==================  =====================
case               status  OpenAI ``error.type``   OpenAI ``code``     Anthropic ``type``
=================  ======  ======================  ==================  =====================
revoked key        401     authentication_error    revoked_api_key     authentication_error
expired key        401     authentication_error    expired_api_key     authentication_error
suspended user     403     permission_error        user_suspended      permission_error
inactive app       403     permission_error        app_inactive        permission_error
=================  ======  ======================  ==================  =====================

Run-time changes: a GraphQL mutation reloads the config snapshot of the instance that served it
before answering (``Gateway.config_changed``), so the very next request on that instance sees
it. Other instances reload on the bus event, so there the test waits for the change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from backend.data.models.keys import ApiKey
from backend.data.models.logs import RequestLog
from backend.data.models.routing import ModelPrice
from backend.data.models.tenancy import App, Organization, User
from backend.security.api_keys import generate_key
from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.conftest import Stack, gateway_env
from tests.e2e.harness import (
    GatewayProc,
    fake_upstreams,
    gql_data,
    orm,
    prepare_database,
    seed_basic,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai/gpt-4o-mini"
ADMIN_EMAIL = "root@access.test"
ADMIN_PASSWORD = "correct horse battery staple"
HAS_GRAPHQL = (ROOT / "backend" / "graphql" / "app.py").exists()

#: case -> (status, OpenAI error.type, OpenAI code, Anthropic type, words in the message)
REFUSALS: dict[str, tuple[int, str, str, str, tuple[str, ...]]] = {
    "revoked": (401, "authentication_error", "revoked_api_key", "authentication_error",
                ("revoked",)),
    "expired": (401, "authentication_error", "expired_api_key", "authentication_error",
                ("expired at",)),
    "suspended": (403, "permission_error", "user_suspended", "permission_error",
                  ("is suspended",)),
    "inactive": (403, "permission_error", "app_inactive", "permission_error", ("is inactive",)),
}  # fmt: skip


@dataclass
class Key:
    secret: str
    prefix: str
    id: int


@dataclass
class AccessWorld:
    stack: Stack = field(init=False)
    keys: dict[str, Key] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


async def _key(world: AccessWorld, name: str, **fields: Any) -> None:
    secret, prefix, digest = generate_key()
    row = await ApiKey.create(prefix=prefix, key_hash=digest, name=name, **fields)
    world.keys[name] = Key(secret, prefix, row.id)


async def seed(world: AccessWorld) -> None:
    now = dt.datetime.now(dt.UTC)
    # $0.01 per output token: a request with max_tokens=10 reserves exactly $0.10.
    await ModelPrice.create(model=MODEL, input_per_mtok=0, output_per_mtok=10_000)
    org = await Organization.create(name="Access", slug=f"access-{os.urandom(3).hex()}")
    world.ids["org"] = org.id

    async def user(name: str, status: str = "active") -> User:
        u = await User.create(
            name=name, email=f"{name}-{os.urandom(3).hex()}@access.test", organization=org,
            status=status,
        )  # fmt: skip
        world.ids[name] = u.id
        world.names[f"{name}.email"] = u.email
        return u

    async def app(name: str, active: bool = True) -> App:
        a = await App.create(
            name=name, slug=f"{name}-{os.urandom(3).hex()}", organization=org, active=active
        )
        world.ids[name] = a.id
        world.names[f"{name}.slug"] = a.slug
        return a

    alice = await user("alice")
    # Refused from the start.
    await _key(world, "revoked", user=alice, revoked_at=now - dt.timedelta(minutes=5))
    await _key(world, "expired", user=alice, expires_at=now - dt.timedelta(seconds=1))
    await _key(world, "suspended", user=await user("sam", status="suspended"))
    await _key(world, "inactive", app=await app("dormant", active=False))
    # Valid, and changed at run time.
    await _key(world, "valid", user=alice, expires_at=now + dt.timedelta(days=1))
    await _key(world, "to_revoke", user=alice)
    await _key(world, "to_suspend", user=await user("tom"))
    await _key(world, "to_deactivate", app=await app("busy"))
    await _key(world, "to_cap", user=await user("carl"))
    if HAS_GRAPHQL:
        from backend.admin.bootstrap import bootstrap_super_admin

        await bootstrap_super_admin(ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AccessWorld]:
    tmp = tmp_path_factory.mktemp("access")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    with fake_upstreams() as fakes:
        gw: GatewayProc | None = None
        try:
            w = AccessWorld()
            async with orm(db):
                await seed(w)
            gw = GatewayProc(gateway_env(db, tmp, fakes), tmp / "gateway.log").start()
            w.stack = Stack(gw, db, seeded, tmp=tmp, **fakes)  # type: ignore[arg-type]
            yield w
        finally:
            if gw is not None:
                gw.stop()
            await drop_database(db)


# -- calls -----------------------------------------------------------------------------------


@dataclass
class Result:
    status: int
    etype: str | None = None
    code: str | None = None
    message: str = ""
    request_id: str | None = None


def call(gw: GatewayProc, sdk: str, key: str, stream: bool = False) -> Result:
    """One chat request through an official SDK; the refusal as the SDK surfaced it."""
    msgs: Any = [{"role": "user", "content": "hello"}]
    try:
        if sdk == "openai":
            oc = openai.OpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0)
            if stream:
                list(oc.chat.completions.create(model=MODEL, messages=msgs, max_tokens=10,
                                                stream=True))  # fmt: skip
            else:
                oc.chat.completions.create(model=MODEL, messages=msgs, max_tokens=10)
            return Result(200)
        ac = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
        if stream:
            list(ac.messages.create(model=MODEL, messages=msgs, max_tokens=10, stream=True))
        else:
            ac.messages.create(model=MODEL, messages=msgs, max_tokens=10)
        return Result(200)
    except openai.APIStatusError as err:
        body = err.body if isinstance(err.body, dict) else {}
        return Result(
            err.status_code, body.get("type"), body.get("code"), str(body.get("message")),
            err.response.headers.get("x-request-id"),
        )  # fmt: skip
    except anthropic.APIStatusError as err:
        body = err.body if isinstance(err.body, dict) else {}
        inner = body.get("error") or {}
        return Result(
            err.status_code, inner.get("type"), None, str(inner.get("message")),
            err.response.headers.get("x-request-id"),
        )  # fmt: skip


def expect_refusal(world: AccessWorld, r: Result, case: str, sdk: str, key: Key) -> None:
    status, oai_type, oai_code, ant_type, words = REFUSALS[case]
    assert r.status == status, r
    if sdk == "openai":
        assert (r.etype, r.code) == (oai_type, oai_code), r
    else:
        assert r.etype == ant_type, r
    for w in words:
        assert w in r.message, r.message
    assert key.secret not in r.message
    if case in ("revoked", "expired"):
        assert key.prefix in r.message


async def log_row(db: str, request_id: str | None) -> RequestLog:
    assert request_id
    deadline = time.monotonic() + 10
    while True:
        async with orm(db):
            row = await RequestLog.get_or_none(request_id=request_id)
        if row is not None or time.monotonic() > deadline:
            assert row is not None, f"no log row for {request_id}"
            return row
        await asyncio.sleep(0.1)


def chat_calls(stack: Stack) -> int:
    return sum(1 for r in stack.openai.requests if r.path.endswith("/chat/completions"))


# -- seeded before start -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refused_callers(world: AccessWorld, case: str, sdk: str, stream: bool) -> None:
    """Each refused at once with its documented error, in the caller's protocol; nothing reaches
    the provider; the log row carries the status and the key prefix."""
    stack = world.stack
    stack.reset()
    key = world.keys[case]
    r = call(stack.gateway, sdk, key.secret, stream)
    expect_refusal(world, r, case, sdk, key)
    if case == "suspended":
        assert world.names["sam.email"] in r.message
    if case == "inactive":
        assert world.names["dormant.slug"] in r.message
    assert chat_calls(stack) == 0
    row = await log_row(stack.database_url, r.request_id)
    assert (row.status, row.key_prefix) == (REFUSALS[case][0], key.prefix)
    assert row.error_type == ("authentication" if REFUSALS[case][0] == 401 else "permission")
    assert row.cost_usd is None and row.input_tokens == row.output_tokens == 0


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_valid_key_of_same_user_passes(world: AccessWorld, sdk: str) -> None:
    """Control: the user whose other keys are revoked/expired still calls with a valid key (one
    that expires tomorrow)."""
    world.stack.reset()
    assert call(world.stack.gateway, sdk, world.keys["valid"].secret).status == 200
    assert chat_calls(world.stack) == 1


# -- changed at run time through GraphQL ------------------------------------------------------


def gql(gw: GatewayProc, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
    return gql_data(gw.url, token, query, **variables)


@pytest.fixture(scope="module")
def admin_token(world: AccessWorld) -> str:
    if not HAS_GRAPHQL:
        pytest.skip("the GraphQL admin API (backend/graphql/app.py) is not there yet")
    data = gql(
        world.stack.gateway,
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        e=ADMIN_EMAIL,
        p=ADMIN_PASSWORD,
    )
    return str(data["login"]["token"])


SET_USER_STATUS = """mutation($id: Int!, $s: UserStatus!) {
  updateUser(id: $id, input: {status: $s}) { id status } }"""
SET_APP_ACTIVE = """mutation($id: Int!, $a: Boolean!) {
  updateApp(id: $id, input: {active: $a}) { id active } }"""
SET_USER_CAP = """mutation($id: Int!, $cap: Decimal) {
  updateUser(id: $id, input: {weeklyCapUsd: $cap}) { id weeklyCapUsd } }"""
REVOKE_KEY = """mutation($id: Int!) { revokeApiKey(id: $id) { id status } }"""


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_suspend_at_run_time_refuses_the_very_next_request(
    world: AccessWorld, admin_token: str, sdk: str
) -> None:
    gw = world.stack.gateway
    key = world.keys["to_suspend"]
    assert call(gw, sdk, key.secret).status == 200
    gql(gw, admin_token, SET_USER_STATUS, id=world.ids["tom"], s="SUSPENDED")
    r = call(gw, sdk, key.secret)
    expect_refusal(world, r, "suspended", sdk, key)
    gql(gw, admin_token, SET_USER_STATUS, id=world.ids["tom"], s="ACTIVE")
    assert call(gw, sdk, key.secret).status == 200


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_deactivate_app_at_run_time(world: AccessWorld, admin_token: str, sdk: str) -> None:
    gw = world.stack.gateway
    key = world.keys["to_deactivate"]
    assert call(gw, sdk, key.secret).status == 200
    gql(gw, admin_token, SET_APP_ACTIVE, id=world.ids["busy"], a=False)
    expect_refusal(world, call(gw, sdk, key.secret), "inactive", sdk, key)
    gql(gw, admin_token, SET_APP_ACTIVE, id=world.ids["busy"], a=True)
    assert call(gw, sdk, key.secret).status == 200


async def test_revoke_key_at_run_time(world: AccessWorld, admin_token: str) -> None:
    gw = world.stack.gateway
    key = world.keys["to_revoke"]
    assert call(gw, "openai", key.secret).status == 200
    data = gql(gw, admin_token, REVOKE_KEY, id=key.id)
    assert data["revokeApiKey"]["status"] == "REVOKED"
    for sdk in ("openai", "anthropic"):
        expect_refusal(world, call(gw, sdk, key.secret), "revoked", sdk, key)


async def test_cap_change_applies_to_the_next_request(world: AccessWorld, admin_token: str) -> None:
    """A weekly cap below one request's reservation ($0.05 < $0.10) refuses the next request with
    the cap error; removing the cap lets the next one through."""
    gw = world.stack.gateway
    key = world.keys["to_cap"]
    assert call(gw, "openai", key.secret).status == 200
    gql(gw, admin_token, SET_USER_CAP, id=world.ids["carl"], cap="0.05")
    for sdk in ("openai", "anthropic"):
        r = call(gw, sdk, key.secret)
        assert r.status == 429, r
        assert r.etype == ("insufficient_quota" if sdk == "openai" else "rate_limit_error")
        assert f"weekly cap of user {world.names['carl.email']} ($0.05)" in r.message
    gql(gw, admin_token, SET_USER_CAP, id=world.ids["carl"], cap=None)
    assert call(gw, "anthropic", key.secret).status == 200


@pytest.mark.skipif(
    not (redis_url() and os.environ.get("DATABASE_URL", "").startswith("postgres")),
    reason="a second instance needs PostgreSQL and Redis (shared database and config bus)",
)
async def test_suspension_reaches_another_instance(world: AccessWorld, admin_token: str) -> None:
    """Suspended through instance A, refused by instance B once the bus event arrives (bounded
    wait), and let back in the same way."""
    stack = world.stack
    second = GatewayProc(dict(stack.gateway.env), stack.tmp / "gateway-b.log").start()
    try:
        key = world.keys["to_suspend"]
        assert call(second, "openai", key.secret).status == 200
        gql(stack.gateway, admin_token, SET_USER_STATUS, id=world.ids["tom"], s="SUSPENDED")
        deadline = time.monotonic() + 5
        r = call(second, "anthropic", key.secret)
        while r.status == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            r = call(second, "anthropic", key.secret)
        expect_refusal(world, r, "suspended", "anthropic", key)
        gql(stack.gateway, admin_token, SET_USER_STATUS, id=world.ids["tom"], s="ACTIVE")
        deadline = time.monotonic() + 5
        while call(second, "openai", key.secret).status != 200:
            assert time.monotonic() < deadline, "reactivation never reached instance B"
            await asyncio.sleep(0.1)
    finally:
        second.stop()
