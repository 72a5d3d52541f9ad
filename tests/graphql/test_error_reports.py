"""Error reports and the audit trail through GraphQL."""

from __future__ import annotations

import datetime as dt

from backend.data.models.logs import ErrorReport
from tests.graphql.harness import T0, Env, World, data, error, gql

FIELDS = "id createdAt source type model error userId agent version requestId user { email }"
LIST = (
    "query($f: ErrorReportFilter, $first: Int, $after: String) { errorReports(filter: $f, "
    f"first: $first, after: $after) {{ nodes {{ {FIELDS} }} totalCount "
    "pageInfo { hasNextPage endCursor } } }"
)
REPORT = f"mutation($i: ErrorReportInput!) {{ reportError(input: $i) {{ {FIELDS} }} }}"


async def seed(world: World) -> None:
    rows = [
        ("gateway", "upstream_error", "openai/gpt-4o", "member_a", None),
        ("gateway", "timeout", "anthropic/claude", "member_b", None),
        ("client", "tool_failed", "openai/gpt-4o", "member_a", "planner"),
        ("gateway", "translation_error", None, None, None),
    ]
    for i, (source, typ, model, who, agent) in enumerate(rows):
        await ErrorReport.create(
            created_at=T0 + dt.timedelta(seconds=i),
            source=source,
            type=typ,
            model=model,
            error=f"error {i}",
            user_id=world.users[who].id if who else None,
            org_id=world.users[who].organization_id if who else None,  # type: ignore[attr-defined]
            agent=agent,
            version="1.2.3" if agent else None,
        )


async def test_list_filters_and_scope(env: Env, world: World) -> None:
    await seed(world)

    async def errors(token: str | None, f: dict[str, object] | None = None) -> list[str]:
        page = data(await gql(env, LIST, {"f": f}, token))["errorReports"]
        return [n["error"] for n in page["nodes"]]

    sup = world.token("super")
    assert await errors(sup) == ["error 3", "error 2", "error 1", "error 0"]
    assert await errors(sup, {"source": "CLIENT"}) == ["error 2"]
    assert await errors(sup, {"model": "openai/gpt-4o", "type": "upstream_error"}) == ["error 0"]
    assert await errors(sup, {"agent": "planner"}) == ["error 2"]
    since = (T0 + dt.timedelta(seconds=2)).isoformat()
    assert await errors(sup, {"since": since}) == ["error 3", "error 2"]
    assert await errors(world.token("admin_a")) == ["error 2", "error 0"]
    assert await errors(world.token("member_b")) == ["error 1"]
    body = await gql(env, LIST, {"f": {"source": "martians"}}, sup)
    assert "'martians' does not exist in 'ErrorSource'" in body["errors"][0]["message"]


async def test_report_error_is_stored_and_published(env: Env, world: World) -> None:
    got: list[dict[str, object]] = []
    async with env.bus.subscribe("errors") as events:
        body = await gql(
            env,
            REPORT,
            {
                "i": {
                    "type": "crash",
                    "error": "agent fell over",
                    "agent": "coder",
                    "version": "0.9",
                }
            },
            world.token("member_a"),
        )
        got.append(await anext(aiter(events)))
    row = data(body)["reportError"]
    assert (row["source"], row["type"], row["userId"]) == (
        "CLIENT",
        "crash",
        world.users["member_a"].id,
    )
    assert await ErrorReport.filter(type="crash").count() == 1
    assert got[0]["error"] == "agent fell over" and got[0]["id"] == row["id"]
    err = error(
        await gql(env, REPORT, {"i": {"type": "crash", "error": " "}}, world.token("member_a"))
    )
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "error")
    assert (
        error(await gql(env, REPORT, {"i": {"type": "x", "error": "y"}}))["code"]
        == "UNAUTHENTICATED"
    )


async def test_audit_log(env: Env, world: World) -> None:
    await gql(
        env,
        'mutation { createOrganization(input: {name: "Initech", slug: "initech"}) { id } }',
        token=world.token("super"),
    )
    q = "query($a: String) { auditLog(action: $a) { nodes { actorId action target detail } } }"
    rows = data(await gql(env, q, {"a": "org."}, world.token("super")))["auditLog"]["nodes"]
    assert rows == [
        {
            "actorId": world.users["super"].id,
            "action": "org.create",
            "target": rows[0]["target"],
            "detail": {
                "fields": ["cap_period", "dlp_enabled", "name", "rollover", "slug", "sso_only"]
            },
        }
    ]
    assert rows[0]["target"].startswith("org:")
    assert error(await gql(env, q, {}, world.token("admin_a")))["code"] == "FORBIDDEN"
