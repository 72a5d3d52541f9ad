"""Test harness for the admin API: a migrated database, a Gateway, the GraphQL + admin routes
as one Starlette app, an httpx client, and a seeded cast of users for each role.

The database is a temp SQLite file, or a fresh PostgreSQL database when ``DATABASE_URL`` is set
(``tests.dbutil``). Tables are emptied before each test so numbers in assertions are exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from tortoise import connections
from tortoise.transactions import in_transaction

from backend.config import Settings
from backend.data import daily
from backend.data.db import close_db, init_db
from backend.data.events import LocalBus
from backend.data.models.dlp import DlpActivity, DlpPolicy
from backend.data.models.keys import AdminToken, ApiKey
from backend.data.models.logs import (
    AuditLog,
    ErrorReport,
    KeyRollup,
    MinuteStat,
    OrgMinuteStat,
    RequestLog,
    SpendCounter,
    TagRollup,
    UsageRollup,
)
from backend.data.models.routing import AgentConfig, FallbackChain, ModelAlias, ModelPrice
from backend.data.models.settings import ProviderCredential, Setting, UserFeature
from backend.data.models.tenancy import App, Organization, User
from backend.exports.routes import admin_routes
from backend.gateway import Gateway
from backend.graphql.app import create_graphql_app
from backend.security.sessions import issue_token
from backend.state.store import ConfigStore
from tests.dbutil import create_database, drop_database, migrate_fresh

DAILY_TABLES = tuple(t.model for t in daily.TABLES)

# Children first, so deleting never trips a foreign key.
TABLES = (
    UserFeature,
    AdminToken,
    ApiKey,
    DlpPolicy,
    DlpActivity,
    ModelAlias,
    App,
    User,
    Organization,
    AgentConfig,
    FallbackChain,
    ModelPrice,
    Setting,
    ProviderCredential,
    RequestLog,
    UsageRollup,
    TagRollup,
    KeyRollup,
    MinuteStat,
    OrgMinuteStat,
    SpendCounter,
    ErrorReport,
    AuditLog,
    *DAILY_TABLES,
)

T0 = dt.datetime(2026, 3, 10, 12, 30, 15, tzinfo=dt.UTC)


class Clock:
    """A settable gateway clock."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class RecordingBus(LocalBus):
    """A LocalBus that tells tests when a subscriber has attached (no sleeps needed)."""

    def subscriber_count(self, channel: str) -> int:
        return len(self._subs.get(channel, ()))


@dataclass
class Env:
    url: str
    gw: Gateway
    clock: Clock
    bus: RecordingBus
    app: Starlette
    client: httpx.AsyncClient


def build_app(gw: Gateway) -> Starlette:
    gql = create_graphql_app(gw)
    return Starlette(
        routes=[
            Route("/graphql", gql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", gql),
            *admin_routes(gw),
        ]
    )


async def open_env(tmp_dir: Path) -> AsyncIterator[Env]:
    url = await create_database(tmp_dir)
    if url.startswith("sqlite"):
        # Test data need not survive a power cut; skipping fsync makes the per-test reset cheap.
        url += "?synchronous=OFF"
    await migrate_fresh(url)
    await init_db(url)
    bus = RecordingBus()
    clock = Clock()
    store = ConfigStore(bus)
    await store.load_all()
    # Log searches get all the time they need: answers must not depend on the machine's load
    # (the budget itself is tested with a fake clock, tests/graphql/test_log_search.py).
    settings = Settings(database_url=url, log_search_budget_s=60.0)
    gw = Gateway(settings=settings, bus=bus, store=store, clock=clock)
    gw.secret_key = b"k" * 32
    app = build_app(gw)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Env(url, gw, clock, bus, app, client)
    await close_db()
    await drop_database(url)


async def reset(env: Env) -> None:
    # One transaction, one commit (a TRUNCATE per test is slower on PostgreSQL).
    async with in_transaction():
        for model in TABLES:
            await model.all().delete()
    env.clock.now = T0
    env.gw.router = None
    env.gw.providers = None
    await env.gw.store.load_all()


@dataclass
class World:
    """Two organizations with an org_admin and a member each, a super_admin, and an app each."""

    org_a: Organization
    org_b: Organization
    app_a: App
    app_b: App
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, role: str) -> str | None:
        return self.tokens.get(role)


ROLES = ("super", "admin_a", "member_a", "admin_b", "member_b")


async def seed_world(env: Env) -> World:
    async with in_transaction():
        world = await _seed_world(env)
    await env.gw.store.load_all()
    return world


async def _seed_world(env: Env) -> World:
    org_a = await Organization.create(name="Acme", slug="acme")
    org_b = await Organization.create(name="Globex", slug="globex")
    app_a = await App.create(name="Billing", slug="billing", organization=org_a)
    app_b = await App.create(name="Support bot", slug="support", organization=org_b)
    world = World(org_a, org_b, app_a, app_b)
    people = {
        "super": ("Sam Super", "super_admin", None),
        "admin_a": ("Ann Admin", "org_admin", org_a),
        "member_a": ("Max Member", "member", org_a),
        "admin_b": ("Bob Admin", "org_admin", org_b),
        "member_b": ("Mia Member", "member", org_b),
    }
    for key, (name, role, org) in people.items():
        user = await User.create(name=name, email=f"{key}@example.com", role=role, organization=org)
        world.users[key] = user
        secret, _ = await issue_token(user, "admin", now=env.clock(), name=f"{key} test token")
        world.tokens[key] = secret
    return world


async def gql(
    env: Env, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await env.client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def data(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body.get("errors")
    out: dict[str, Any] = body["data"]
    return out


def error(body: dict[str, Any]) -> dict[str, Any]:
    """The first error, flattened: message, code, field."""
    errors = body.get("errors")
    assert errors, f"expected an error, got {body}"
    ext = errors[0].get("extensions") or {}
    return {"message": errors[0]["message"], "code": ext.get("code"), "field": ext.get("field")}


async def roll_up_days() -> None:
    """The daily rollups of the hourly rows a test wrote directly (the log writer keeps both;
    windows longer than two days read the daily ones: ``backend.data.windows``)."""
    await daily.rebuild(connections.get("default"))
