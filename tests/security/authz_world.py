"""The authorization audit's world: a real gateway app served by uvicorn, and two organizations
whose rows carry marker strings, so a leak across organizations shows up as text.

Everything of Globex (organization B) contains ``zqb``; what only Acme's admins may see (the
org_admin's keys, requests and reports, Acme's app) contains ``zqa``. An org_admin of Acme must
never receive ``zqb``; a member of Acme neither ``zqb`` nor ``zqa``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from tortoise.transactions import in_transaction

from backend.data.models.dlp import DlpActivity, DlpPolicy
from backend.data.models.keys import AdminToken, ApiKey
from backend.data.models.logs import ErrorReport, RequestLog, UsageRollup
from backend.data.models.routing import AgentConfig, ModelAlias
from backend.data.models.settings import UserFeature
from backend.data.models.tenancy import App, Organization, User
from backend.gateway import Gateway
from backend.security.api_keys import generate_key
from backend.security.passwords import hash_password
from backend.security.sessions import issue_token

#: Audit roles: the table's columns, played by Acme's people (and the super_admin).
ROLE_USER = {"super_admin": "super", "org_admin": "admin_a", "member": "member_a"}
MEMBER_PASSWORD = "member-password-zz-1234"
ORG_B_MARK = "zqb"
ORG_A_ADMIN_MARK = "zqa"


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan included) on a loopback port; yields ``http://127.0.0.1:port``."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(3000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@dataclass
class World:
    gw: Gateway
    org_a: Organization
    org_b: Organization
    app_a: App
    app_b: App
    users: dict[str, User] = field(default_factory=dict)
    #: Admin tokens (Bearer for GraphQL and the CSV export), by person.
    tokens: dict[str, str] = field(default_factory=dict)
    #: Gateway API keys (the proxy's credentials), by person; ``app_a`` is Acme's app key.
    api_keys: dict[str, str] = field(default_factory=dict)
    key_rows: dict[str, ApiKey] = field(default_factory=dict)
    admin_token_rows: dict[str, AdminToken] = field(default_factory=dict)
    alias_a: ModelAlias | None = None
    alias_b: ModelAlias | None = None
    agent: AgentConfig | None = None
    logs: dict[str, RequestLog] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def user(self, person: str) -> User:
        return self.users[person]

    def unique(self, tag: str = "probe") -> str:
        return f"{tag}-{next(self.counter)}-{uuid.uuid4().hex[:6]}"

    async def token_for(self, person: str) -> str:
        """A fresh admin token: a mutation (``logout``) may revoke the one it is called with."""
        secret, _ = await issue_token(self.users[person], "admin", now=self.gw.clock())
        return secret


async def _key(owner: dict[str, Any], name: str) -> tuple[str, ApiKey]:
    secret, prefix, digest = generate_key()
    row = await ApiKey.create(prefix=prefix, key_hash=digest, name=name, **owner)
    return secret, row


async def seed(gw: Gateway, tmp: Path) -> World:
    now = gw.clock()
    async with in_transaction():
        org_a = await Organization.create(name="Acme", slug="acme", dlp_enabled=True)
        org_b = await Organization.create(
            name="Globex zqB", slug="globex-zqb", spend_cap_usd=Decimal("5"), dlp_enabled=True
        )
        app_a = await App.create(name="Billing zqA", slug="billing-zqa", organization=org_a)
        app_b = await App.create(
            name="Support zqB", slug="support-zqb", contact="ops@zqb.test", organization=org_b
        )
        world = World(gw, org_a, org_b, app_a, app_b)
        people = {
            "super": ("Sam Super", "super_admin", None),
            "admin_a": ("Ann zqA", "org_admin", org_a),
            "member_a": ("Max Member", "member", org_a),
            "admin_b": ("Bob zqB", "org_admin", org_b),
            "member_b": ("Mia zqB", "member", org_b),
        }
        for person, (name, role, org) in people.items():
            email = f"{person.replace('_', '.')}@{'zqb.test' if org is org_b else 'acme.test'}"
            if person == "admin_a":
                email = "ann.zqa@acme.test"
            user = await User.create(name=name, email=email, role=role, organization=org)
            world.users[person] = user
            secret, row = await issue_token(user, "admin", now=now, name=f"token {name}")
            world.tokens[person] = secret
            world.admin_token_rows[person] = row
            world.api_keys[person], world.key_rows[person] = await _key(
                {"user": user}, f"key {name}"
            )
        world.api_keys["app_a"], world.key_rows["app_a"] = await _key({"app": app_a}, "key zqA")
        world.api_keys["app_b"], world.key_rows["app_b"] = await _key({"app": app_b}, "key zqB")
        member = world.users["member_a"]
        member.password_hash = hash_password(MEMBER_PASSWORD)
        await member.save(update_fields=["password_hash"])
        # An owner from another organization: Acme's admins must not see who it is.
        org_a.owner_id = world.users["admin_b"].id  # type: ignore[attr-defined]
        await org_a.save(update_fields=["owner_id"])
        org_b.owner_id = world.users["admin_b"].id  # type: ignore[attr-defined]
        await org_b.save(update_fields=["owner_id"])
        world.alias_a = await ModelAlias.create(
            requested_model="acme-fast", target_model="openai/gpt-4o-mini", organization=org_a
        )
        world.alias_b = await ModelAlias.create(
            requested_model="zqb-alias", target_model="openai/zqb-target", organization=org_b
        )
        await ModelAlias.create(requested_model="everyone", target_model="openai/gpt-4o")
        world.agent = await AgentConfig.create(
            agent_id="planner", name="Planner", normal_model="openai/gpt-4o-mini"
        )
        await DlpPolicy.create(
            scope="org",
            organization=org_b,
            rules=["email"],
            custom_rules=[{"name": "zqB rule", "pattern": "ZQB-[0-9]+"}],
        )
        await DlpPolicy.create(
            scope="app",
            app=app_a,
            rules=["email"],
            custom_rules=[{"name": "zqA rule", "pattern": "ZQA-[0-9]+"}],
        )
        for person, org, app in (
            ("member_a", org_a, None),
            ("admin_a", org_a, None),
            ("member_b", org_b, None),
            ("app_a", org_a, app_a),
            ("app_b", org_b, app_b),
        ):
            user_id = None if app else world.users[person].id
            mark = (
                ORG_B_MARK if org is org_b else (ORG_A_ADMIN_MARK if person != "member_a" else "")
            )
            world.logs[person] = await RequestLog.create(
                request_id=f"req-{person}-{mark}",
                created_at=now - dt.timedelta(minutes=5),
                key_prefix=world.key_rows[person].prefix,
                user_id=user_id,
                app_id=app.id if app else None,
                org_id=org.id,
                endpoint="/v1/chat/completions",
                requested_model=f"openai/gpt-4o-mini{'-' + mark if mark else ''}",
                actual_model="openai/gpt-4o-mini",
                provider="openai",
                status=200,
                input_tokens=10,
                output_tokens=20,
                cost_usd=Decimal("0.001"),
                latency_ms=120.0,
                request_body=f'{{"note": "body of {person} {mark}"}}',
                response_body=f'{{"note": "answer to {person} {mark}"}}',
            )
            await UsageRollup.create(
                bucket=(now - dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0),
                user_id=user_id or 0,
                app_id=app.id if app else 0,
                org_id=org.id,
                model=f"openai/gpt-4o-mini{'-' + mark if mark else ''}",
                provider="openai",
                requests=1,
                input_tokens=10,
                output_tokens=20,
                cost_usd=Decimal("0.001"),
                latency_ms_sum=120.0,
            )
            if user_id is not None:
                await ErrorReport.create(
                    created_at=now - dt.timedelta(minutes=4),
                    source="client",
                    type="timeout",
                    error=f"failure of {person} {mark}",
                    user_id=user_id,
                    agent=f"agent-{mark or 'member'}",
                )
            await DlpActivity.create(
                created_at=now - dt.timedelta(minutes=3),
                kind="redact",
                scope=f"{'app' if app else 'org'}:{(app or org).slug}",
                org_id=org.id,
                app_id=app.id if app else None,
                rule="email",
                matches=1,
                size=20,
                request_id=f"req-{person}-{mark}",
                detail=f"activity {mark}",
            )
        await UserFeature.create(user=world.users["member_b"], feature="response_cache")
    await gw.store.load_all()
    return world


async def org_b_snapshot(world: World) -> list[Any]:
    """Every row of organization B a cross-organization write could touch."""
    org_b = world.org_b
    user_ids = [u.id for u in await User.filter(organization_id=org_b.id)]
    app_ids = [a.id for a in await App.filter(organization_id=org_b.id)]

    def rows(qs: Any) -> Any:
        return qs.order_by("id").values()

    return [
        await rows(Organization.filter(id=org_b.id)),
        await rows(User.filter(id__in=user_ids)),
        await rows(App.filter(id__in=app_ids)),
        await rows(ApiKey.filter(user_id__in=user_ids)),
        await rows(ApiKey.filter(app_id__in=app_ids)),
        await rows(AdminToken.filter(user_id__in=user_ids)),
        await rows(ModelAlias.filter(organization_id=org_b.id)),
        await rows(DlpPolicy.filter(organization_id=org_b.id)),
        await rows(DlpPolicy.filter(app_id__in=app_ids)),
        await rows(UserFeature.filter(user_id__in=user_ids)),
    ]
