"""Error reports of a user who moves from org A to org B stay with the organization each report
was made under (its ``organizationId``), in the query, the nested user and live events.

member_a reports ``ACME-CRASH`` while in Acme (org A); a super_admin moves them to Globex (org
B), where they report ``GLOBEX-CRASH``. Both reports go through the ``reportError`` mutation, which
records the organization from the reporter as they are at that moment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from websockets.asyncio.client import connect

from backend.data.log_record import ErrorRecord
from backend.data.models.logs import ErrorReport
from tests.graphql.harness import Env, World, data, gql
from tests.graphql.test_subscriptions import recv, send, serve, wait_subscribers

LIST = """query { errorReports { nodes {
  error organizationId userId user { email organization { slug } }
} } }"""
REPORT = """mutation($e: String!) {
  reportError(input: {type: "crash", error: $e}) { organizationId } }"""
MOVE = """mutation($id: Int!, $org: Int!) {
  updateUser(id: $id, input: {organizationId: $org}) { organizationId } }"""


async def _moved(env: Env, world: World) -> None:
    member = world.token("member_a")
    out = data(await gql(env, REPORT, {"e": "ACME-CRASH"}, token=member))
    assert out["reportError"]["organizationId"] == world.org_a.id
    user_id = world.users["member_a"].id
    moved = {"id": user_id, "org": world.org_b.id}
    data(await gql(env, MOVE, moved, token=world.token("super")))
    out = data(await gql(env, REPORT, {"e": "GLOBEX-CRASH"}, token=member))
    assert out["reportError"]["organizationId"] == world.org_b.id


async def _reports(env: Env, world: World, who: str) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = data(await gql(env, LIST, token=world.token(who)))[
        "errorReports"
    ]["nodes"]
    return nodes


async def test_reports_stay_with_the_org_they_were_made_under(env: Env, world: World) -> None:
    await _moved(env, world)
    # The organization the user moved into: its own report only, with the user as they are now.
    nodes = await _reports(env, world, "admin_b")
    assert [(n["error"], n["organizationId"]) for n in nodes] == [("GLOBEX-CRASH", world.org_b.id)]
    assert nodes[0]["user"]["organization"]["slug"] == "globex"
    # The organization the user left keeps its report; who the user is now is not its business.
    nodes = await _reports(env, world, "admin_a")
    assert [(n["error"], n["organizationId"]) for n in nodes] == [("ACME-CRASH", world.org_a.id)]
    assert nodes[0]["userId"] == world.users["member_a"].id and nodes[0]["user"] is None
    assert "globex" not in str(nodes)
    # The user: their reports under their current organization (an org_admin can take over a
    # member's account, so "own reports" across organizations would leak Acme's to Globex).
    assert [n["error"] for n in await _reports(env, world, "member_a")] == ["GLOBEX-CRASH"]
    assert [n["error"] for n in await _reports(env, world, "super")] == [
        "GLOBEX-CRASH",
        "ACME-CRASH",
    ]
    assert await _reports(env, world, "member_b") == []


async def test_an_app_keys_reports_belong_to_the_apps_org(env: Env, world: World) -> None:
    # A gateway error on an app key's request has no user: its organization is the app's.
    await ErrorReport.create(
        created_at=env.clock(),
        source="gateway",
        type="upstream",
        error="APP-CRASH",
        org_id=world.org_a.id,
    )
    assert [n["error"] for n in await _reports(env, world, "admin_a")] == ["APP-CRASH"]
    assert await _reports(env, world, "admin_b") == []


async def test_live_reports_follow_the_org_they_were_made_under(env: Env, world: World) -> None:
    sub = "subscription { errorReports { error organizationId user { email } } }"
    async with serve(env.app) as url:
        sockets = {}
        for who in ("admin_a", "admin_b"):
            ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
            token = world.token(who)
            await send(ws, {"type": "connection_init", "payload": {"token": token}})
            assert (await recv(ws))["type"] == "connection_ack"
            await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": sub}})
            sockets[who] = ws
        await wait_subscribers(env, "errors", 2)
        # member_a now belongs to Globex, but this report was made under Acme (a request that
        # was in flight when they moved): Acme's admin gets it, Globex's does not.
        member = world.users["member_a"]
        member.organization_id = world.org_b.id  # type: ignore[attr-defined]
        await member.save()
        for org, text in ((world.org_a, "MADE-UNDER-ACME"), (world.org_b, "MADE-UNDER-GLOBEX")):
            rec = ErrorRecord(
                created_at=dt.datetime.now(dt.UTC),
                source="gateway",
                type="timeout",
                error=text,
                user_id=member.id,
                org_id=org.id,
            )
            await env.bus.publish("errors", rec.event())
        got_a = (await recv(sockets["admin_a"], timeout=10))["payload"]["data"]["errorReports"]
        assert (got_a["error"], got_a["organizationId"]) == ("MADE-UNDER-ACME", world.org_a.id)
        assert got_a["user"] is None  # the user is Globex's now
        got_b = (await recv(sockets["admin_b"], timeout=10))["payload"]["data"]["errorReports"]
        assert got_b["error"] == "MADE-UNDER-GLOBEX"  # Globex's first event is its own
        assert got_b["user"] == {"email": "member_a@example.com"}
        for ws in sockets.values():
            await ws.close()
