"""A user who moves from org A to org B: their history stays with the organization each request
was made under (the log row's ``org_id``), through GraphQL and the CSV export over real HTTP.

Acme (org A) is where member_a made requests whose conversation mentions ``ACME-PLAN``; then a
super_admin moves them to Globex (org B), where they make requests mentioning ``GLOBEX-NOTE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn

from backend.data.models.logs import RequestLog, UsageRollup
from backend.graphql.logs import can_see
from tests.graphql.harness import T0, Env, World, data, gql, roll_up_days

LOGS = """query($f: GatewayLogFilter) { gatewayLogs(filter: $f) { nodes {
  requestId organizationId requestBody user { email organization { name slug spendCapUsd } }
} } }"""
USAGE = """query { userUsage(since: "2026-03-01T00:00:00Z", until: "2026-04-01T00:00:00Z") {
  nodes { userId requests costUsd user { email } } } }"""
TOP = "{ dashboard { topSpenders(days: 7) { userId requests user { email } } } }"
MOVE = """mutation($id: Int!, $org: Int!) {
  updateUser(id: $id, input: {organizationId: $org}) { organizationId } }"""
SET_CAP = """mutation($id: Int!) {
  updateOrganization(id: $id, input: {spendCapUsd: "777"}) { spendCapUsd } }"""


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The test app on a loopback port: the export is fetched over a real socket."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1000):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def _rows(world: World, org_id: int, text: str, start: int, n: int) -> None:
    user = world.users["member_a"]
    for i in range(start, start + n):
        await RequestLog.create(
            request_id=f"req-{i:02d}",
            created_at=T0 + dt.timedelta(minutes=i),
            key_prefix="sb-membera0",
            user_id=user.id,
            org_id=org_id,
            endpoint="/v1/chat/completions",
            requested_model="gpt-4o",
            actual_model="openai/gpt-4o",
            provider="openai",
            status=200,
            input_tokens=10,
            output_tokens=5,
            cost_usd=Decimal("0.01"),
            request_body=f'{{"messages": [{{"role": "user", "content": "{text} {i}"}}]}}',
            response_body='{"content": "ok"}',
        )
    await UsageRollup.create(
        bucket=T0.replace(minute=0, second=0) + dt.timedelta(hours=start),
        user_id=user.id,
        org_id=org_id,
        model="openai/gpt-4o",
        provider="openai",
        requests=n,
        input_tokens=10 * n,
        output_tokens=5 * n,
        cost_usd=Decimal("0.01") * n,
    )
    await roll_up_days()


@pytest.fixture
async def moved(env: Env, world: World) -> World:
    """member_a: 3 requests under Acme, moved to Globex, then 2 requests under Globex."""
    await _rows(world, world.org_a.id, "ACME-PLAN", 0, 3)
    sup = world.token("super")
    user_id = world.users["member_a"].id
    out = data(await gql(env, MOVE, {"id": user_id, "org": world.org_b.id}, token=sup))
    assert out["updateUser"]["organizationId"] == world.org_b.id
    data(await gql(env, SET_CAP, {"id": world.org_b.id}, token=sup))  # Globex-only data
    await _rows(world, world.org_b.id, "GLOBEX-NOTE", 3, 2)
    return world


def _ids(body: dict[str, Any]) -> list[str]:
    return sorted(n["requestId"] for n in data(body)["gatewayLogs"]["nodes"])


async def _logs(env: Env, world: World, who: str) -> list[dict[str, Any]]:
    f = {"userId": world.users["member_a"].id}
    nodes: list[dict[str, Any]] = data(await gql(env, LOGS, {"f": f}, token=world.token(who)))[
        "gatewayLogs"
    ]["nodes"]
    return sorted(nodes, key=lambda n: n["requestId"])


async def test_new_org_admin_sees_only_rows_made_under_their_org(env: Env, moved: World) -> None:
    nodes = await _logs(env, moved, "admin_b")
    assert [n["requestId"] for n in nodes] == ["req-03", "req-04"]
    assert {n["organizationId"] for n in nodes} == {moved.org_b.id}
    assert not any("ACME-PLAN" in (n["requestBody"] or "") for n in nodes)
    # The user belongs to Globex now: shown, with Globex's data.
    org = nodes[0]["user"]["organization"]
    assert (org["name"], org["slug"], Decimal(org["spendCapUsd"])) == ("Globex", "globex", 777)
    # Reading an Acme row by id is refused like any other organization's row.
    acme_row = await RequestLog.get(request_id="req-00")
    body = await gql(
        env, f"{{ gatewayLog(id: {acme_row.id}) {{ requestBody }} }}", token=moved.token("admin_b")
    )
    assert body.get("errors") and "ACME-PLAN" not in str(body)


async def test_old_org_rows_do_not_show_the_new_orgs_data(env: Env, moved: World) -> None:
    nodes = await _logs(env, moved, "admin_a")
    assert [n["requestId"] for n in nodes] == ["req-00", "req-01", "req-02"]
    assert {n["organizationId"] for n in nodes} == {moved.org_a.id}
    # Who the user is now (Globex, its cap) is Globex's business: the nested user is withheld.
    assert all(n["user"] is None for n in nodes)
    assert "Globex" not in str(nodes) and "777" not in str(nodes)


async def test_super_admin_sees_everything_as_it_is(env: Env, moved: World) -> None:
    nodes = await _logs(env, moved, "super")
    assert [n["requestId"] for n in nodes] == [f"req-0{i}" for i in range(5)]
    assert {n["user"]["organization"]["slug"] for n in nodes} == {"globex"}


async def test_moved_member_sees_their_rows_under_their_current_org(env: Env, moved: World) -> None:
    # An org_admin can take over a member's account (set its password): "own rows" across
    # organizations would hand Acme's conversations to Globex's admin through the member.
    nodes = await _logs(env, moved, "member_a")
    assert [n["requestId"] for n in nodes] == ["req-03", "req-04"]
    usage = data(await gql(env, USAGE, token=moved.token("member_a")))["userUsage"]["nodes"]
    assert [(u["requests"], u["costUsd"]) for u in usage] == [(2, "0.02000000")]


async def test_usage_of_the_moved_user_per_org(env: Env, moved: World) -> None:
    user_id = moved.users["member_a"].id
    for who, requests, email in (("admin_b", 2, "member_a@example.com"), ("admin_a", 3, None)):
        usage = data(await gql(env, USAGE, token=moved.token(who)))["userUsage"]["nodes"]
        mine = [u for u in usage if u["userId"] == user_id]
        assert [u["requests"] for u in mine] == [requests], who
        assert (mine[0]["user"] or {}).get("email") == email, who
        top = data(await gql(env, TOP, token=moved.token(who)))["dashboard"]["topSpenders"]
        mine = [t for t in top if t["userId"] == user_id]
        assert [t["requests"] for t in mine] == [requests], who
        assert (mine[0]["user"] or {}).get("email") == email, who


def _csv(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


async def test_csv_export_follows_the_org_each_request_was_made_under(
    env: Env, moved: World
) -> None:
    url = f"/admin/users/{moved.users['member_a'].id}/activity.csv"
    async with serve(env.app) as http:

        async def export(who: str) -> httpx.Response:
            return await http.get(url, headers={"Authorization": f"Bearer {moved.token(who)}"})

        # The admin of the organization the user moved into: its own rows only.
        resp = await export("admin_b")
        assert resp.status_code == 200, resp.text
        assert [r["request_id"] for r in _csv(resp.text)] == ["req-03", "req-04"]
        assert "ACME-PLAN" not in resp.text and "GLOBEX-NOTE" in resp.text
        # The admin of the organization the user left keeps its own history, nothing else.
        resp = await export("admin_a")
        assert resp.status_code == 200, resp.text
        assert [r["request_id"] for r in _csv(resp.text)] == ["req-00", "req-01", "req-02"]
        assert "GLOBEX-NOTE" not in resp.text
        # The user: their rows under their current organization.
        resp = await export("member_a")
        assert resp.status_code == 200, resp.text
        assert [r["request_id"] for r in _csv(resp.text)] == ["req-03", "req-04"]
        resp = await export("super")
        assert len(_csv(resp.text)) == 5
        # An admin of neither organization: refused, nothing exported.
        resp = await export("member_b")
        assert resp.status_code == 403 and "ACME-PLAN" not in resp.text


async def test_org_admin_cannot_export_a_stranger(env: Env, world: World) -> None:
    await _rows(world, world.org_a.id, "ACME-PLAN", 0, 1)
    url = f"/admin/users/{world.users['member_a'].id}/activity.csv"
    resp = await env.client.get(url, headers={"Authorization": f"Bearer {world.token('admin_b')}"})
    assert resp.status_code == 403
    assert "organization" in resp.json()["error"]["message"]


async def test_live_events_follow_the_org_too(world: World) -> None:
    me = world.users["member_a"]
    me.organization_id = world.org_b.id  # type: ignore[attr-defined]  # moved
    assert can_see(me, {"user_id": me.id, "org_id": world.org_b.id})
    assert not can_see(me, {"user_id": me.id, "org_id": world.org_a.id})
