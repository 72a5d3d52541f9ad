"""The authorization audit (issue 10, item 4): docs/AUTHZ.md is generated from the code, and
every GraphQL field, mutation, subscription and HTTP route is called with every role and
without credentials against the real app, and must do what the table says.

- The rules come from ``backend.graphql.authz`` (the schema's permission classes and the app's
  route list), so a field or route added later is in the table, and in this test, by itself.
- allowed: no permission error (an input error for the dummy arguments is fine);
  refused: a GraphQL error with code FORBIDDEN (UNAUTHENTICATED without credentials) and no
  data, or HTTP 401/403.
- Across organizations: Acme's org_admin and member call every field they may call with
  Globex's rows as targets (and filters); nothing of Globex comes back (no marker text), reads
  are refused or empty, writes are refused, and Globex's rows are unchanged at the end.

The app is ``create_app`` served by uvicorn in this process (GraphQL, admin routes, proxy and
WebSockets are the production wiring), on SQLite or on PostgreSQL (+ Redis) by DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from graphql import GraphQLSchema
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from backend.app import create_app
from backend.config import Settings
from backend.data.log_record import ErrorRecord, LogRecord
from backend.graphql import authz
from backend.graphql.schema import schema as strawberry_schema
from tests.dbutil import create_database, drop_database, migrate_fresh, redis_url
from tests.security.authz_probe import (
    ProbeBuilder,
    allowed_problem,
    error_codes,
    refusal_problem,
)
from tests.security.authz_world import (
    ORG_A_ADMIN_MARK,
    ORG_B_MARK,
    ROLE_USER,
    World,
    org_b_snapshot,
    seed,
    serve,
)

SCHEMA: GraphQLSchema = strawberry_schema._schema
RULES = authz.graphql_rules(SCHEMA)
CALL_RULES = [r for r in RULES if r.kind in ("query", "mutation", "nested")]
SUB_RULES = [r for r in RULES if r.kind == "subscription"]
HTTP_RULES = authz.http_rules()
CROSS_PEOPLE = {"admin_a": "org_admin", "member_a": "member"}


@dataclass
class Audit:
    base: str
    app: Starlette
    world: World
    client: httpx.AsyncClient
    org_b_before: list[Any]
    #: Every answer each person received (checked for markers of what they may not see).
    answers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/graphql"


@pytest.fixture(scope="module")
async def audit(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Audit]:
    tmp = tmp_path_factory.mktemp("authz")
    url = await create_database(tmp)
    await migrate_fresh(url)
    settings = Settings(
        database_url=url,
        redis_url=redis_url(),
        redis_prefix=f"sbauthz-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp / "data",
        secret_key=f"authz-{uuid.uuid4().hex}",
        log_flush_interval_s=0.1,
    )
    app = create_app(settings)
    try:
        async with serve(app) as base:
            world = await seed(app.state.gateway, tmp)
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                yield Audit(base, app, world, client, await org_b_snapshot(world))
    finally:
        await drop_database(url)


def leaks(person: str | None, text: str) -> list[str]:
    """Markers in ``text`` that ``person`` must not see."""
    marks = {"admin_a": [ORG_B_MARK], "member_a": [ORG_B_MARK, ORG_A_ADMIN_MARK]}
    lowered = text.lower()
    return [m for m in marks.get(person or "", []) if m in lowered]


async def gql(
    audit: Audit, person: str | None, query: str, variables: dict[str, Any], token: str | None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await audit.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    audit.answers.setdefault(person or "", []).append(resp.text)
    body: dict[str, Any] = resp.json()
    return body


# -- the table ---------------------------------------------------------------------------------


def test_authz_doc_is_generated_from_the_code() -> None:
    assert authz.DOC_PATH.exists(), "run: python -m backend.graphql.authz --write"
    assert authz.DOC_PATH.read_text() == authz.render(), (
        "docs/AUTHZ.md is stale: run python -m backend.graphql.authz --write"
    )


def test_every_field_and_route_is_a_row() -> None:
    fields = {
        f"{root.name}.{name}"
        for root in (SCHEMA.query_type, SCHEMA.mutation_type, SCHEMA.subscription_type)
        if root is not None
        for name in root.fields
    }
    assert fields <= {r.path for r in RULES}
    assert "Query.dashboard.live" in {r.path for r in RULES}  # a gated nested field


def test_a_new_gate_or_route_without_a_decision_is_an_error() -> None:
    from starlette.routing import Route

    async def endpoint(request: Any) -> Any:
        raise NotImplementedError

    with pytest.raises(authz.AuthzTableError, match="declare who may call"):
        authz.http_rules([*authz.all_routes(), Route("/admin/new", endpoint, methods=["GET"])])
    scopes = {k: v for k, v in authz.SCOPES.items() if k != "Query.users"}
    with pytest.raises(authz.AuthzTableError, match=r"org_admin scope of Query\.users"):
        authz.graphql_rules(SCHEMA, scopes)
    stale = {**authz.SCOPES, "Query.providerCredentials": {"member": "everything"}}
    with pytest.raises(authz.AuthzTableError, match="names roles the gate refuses"):
        authz.graphql_rules(SCHEMA, stale)


async def test_running_app_routes_are_the_tables_routes(audit: Audit) -> None:
    assert authz.route_keys(audit.app.routes) == [r.path for r in HTTP_RULES]


# -- GraphQL: each role --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", CALL_RULES, ids=[r.path for r in CALL_RULES])
async def test_graphql_field_by_role(audit: Audit, rule: authz.Rule) -> None:
    w = audit.world
    problems = []
    for column in authz.COLUMNS:
        person = ROLE_USER.get(column)
        probe = await ProbeBuilder(SCHEMA, w, person or "member_a").build(rule)
        token = None
        if person is not None:
            token = await w.token_for(person) if rule.kind == "mutation" else w.tokens[person]
        body = await gql(audit, person, probe.document, probe.variables, token)
        if rule.allows(column):
            problem = allowed_problem(body)
        else:
            problem = refusal_problem(body, column, rule)
        if problem is None and (marks := leaks(person, orjson.dumps(body).decode())):
            problem = f"saw {marks}: {body}"
        if problem:
            problems.append(f"{column}: {problem}\n    {probe.document}\n    {probe.variables}")
    assert not problems, "\n".join(problems)


# -- GraphQL: across organizations -----------------------------------------------------------


def _empty(value: Any) -> bool:
    if value is None or value == []:
        return True
    if isinstance(value, dict) and value.get("count") == 0:
        return True  # a count of what another organization has: nothing reached
    return isinstance(value, dict) and value.get("nodes") == [] and not value.get("totalCount")


@pytest.mark.parametrize("rule", CALL_RULES, ids=[r.path for r in CALL_RULES])
async def test_graphql_field_across_organizations(audit: Audit, rule: authz.Rule) -> None:
    w = audit.world
    problems = []
    for person, column in CROSS_PEOPLE.items():
        if not rule.allows(column):
            continue  # refused whatever the target: checked by test_graphql_field_by_role
        probe = await ProbeBuilder(SCHEMA, w, person, side="other").build(rule)
        token = await w.token_for(person) if rule.kind == "mutation" else w.tokens[person]
        body = await gql(audit, person, probe.document, probe.variables, token)
        text = orjson.dumps(body).decode()
        if marks := leaks(person, text):
            problems.append(f"{person} saw {marks}: {text[:600]}")
        if not probe.targeted:
            continue
        value: Any = body.get("data")
        for name in rule.field_path:
            value = value.get(name) if isinstance(value, dict) else None
        codes = set(error_codes(body))
        if rule.kind == "mutation":
            if not codes or not codes <= {"FORBIDDEN", "NOT_FOUND"} or value is not None:
                problems.append(f"{person} wrote across organizations: {text[:600]}")
        elif not (codes and codes <= {"FORBIDDEN", "NOT_FOUND"}) and not _empty(value):
            problems.append(f"{person} read across organizations: {text[:600]}")
        if problems and problems[-1].startswith(person):
            problems[-1] += f"\n    {probe.document}\n    {probe.variables}"
    assert not problems, "\n".join(problems)


async def test_other_organization_unchanged_and_nothing_leaked(audit: Audit) -> None:
    """After every call above (run in file order), Globex's rows are as seeded."""
    assert await org_b_snapshot(audit.world) == audit.org_b_before
    for person, answers in audit.answers.items():
        for text in answers:
            assert not leaks(person, text), (person, text[:600])


# -- GraphQL subscriptions -----------------------------------------------------------------------


def _log_event(w: World, person: str, request_id: str) -> tuple[str, dict[str, Any]]:
    user = w.user(person)
    record = LogRecord(
        request_id=request_id,
        created_at=dt.datetime.now(dt.UTC),
        endpoint="/v1/chat/completions",
        user_id=user.id,
        org_id=user.organization_id,  # type: ignore[attr-defined]
        requested_model="openai/gpt-4o-mini",
        actual_model="openai/gpt-4o-mini",
        provider="openai",
    )
    return "logs", record.event()


def _error_event(w: World, person: str, request_id: str) -> tuple[str, dict[str, Any]]:
    record = ErrorRecord(
        created_at=dt.datetime.now(dt.UTC),
        source="client",
        type="timeout",
        error=f"live {request_id}",
        user_id=w.user(person).id,
        org_id=w.user(person).organization_id,  # type: ignore[attr-defined]
        request_id=request_id,
    )
    return "errors", record.event()


#: How to make each subscription emit: an event of a given person with a given request id.
TRIGGERS: dict[str, Callable[[World, str, str], tuple[str, dict[str, Any]]]] = {
    "gatewayLogs": _log_event,
    "errorReports": _error_event,
}


async def _send(ws: ClientConnection, msg: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(msg).decode())


async def _recv(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg.get("type") not in ("ping", "pong", "ka"):
            return msg


async def _connect(audit: Audit, token: str | None) -> tuple[ClientConnection, str | None]:
    """Open a graphql-transport-ws connection; the second item says why it was refused."""
    ws = await connect(audit.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    await _send(ws, {"type": "connection_init", "payload": payload})
    try:
        msg = await _recv(ws, 10)
    except ConnectionClosed as closed:
        return ws, f"closed {closed.rcvd.code if closed.rcvd else None}"
    return ws, None if msg["type"] == "connection_ack" else f"got {msg}"


async def _first_own_event(
    audit: Audit, ws: ClientConnection, rule: authz.Rule, person: str
) -> tuple[list[dict[str, Any]], str]:
    """Publish another organization's event and then an own one until a message arrives."""
    w, gw = audit.world, audit.app.state.gateway
    trigger = TRIGGERS[rule.field_path[0]]
    own_id, other_id = f"live-own-{uuid.uuid4().hex[:8]}", f"live-{ORG_B_MARK}-{uuid.uuid4().hex}"
    received: list[dict[str, Any]] = []
    for _ in range(100):
        for who, rid in (("member_b", other_id), ("member_a", own_id)):
            channel, event = trigger(w, who, rid)
            await gw.bus.publish(channel, event)
        try:
            while True:
                msg = await _recv(ws, 0.2)
                received.append(msg)
                if msg["type"] != "next" or own_id in orjson.dumps(msg).decode():
                    return received, own_id
        except TimeoutError:
            continue
    return received, own_id


@pytest.mark.parametrize("rule", SUB_RULES, ids=[r.path for r in SUB_RULES])
async def test_subscription_by_role(audit: Audit, rule: authz.Rule) -> None:
    assert rule.field_path[0] in TRIGGERS, f"teach the audit how to trigger {rule.path}"
    w = audit.world
    for column in authz.COLUMNS:
        person = ROLE_USER.get(column)
        ws, refused = await _connect(audit, w.tokens[person] if person else None)
        try:
            if refused is not None:
                assert not rule.allows(column), f"{column} refused at connect: {refused}"
                assert column == authz.NONE and "4403" in refused, refused
                continue
            probe = await ProbeBuilder(SCHEMA, w, person or "member_a").build(rule)
            query = {"query": probe.document, "variables": probe.variables}
            await _send(ws, {"id": "1", "type": "subscribe", "payload": query})
            received, own_id = await _first_own_event(audit, ws, rule, person or "member_a")
            assert received, f"{column}: no message on {rule.path}"
            text = orjson.dumps(received).decode()
            if rule.allows(column):
                assert received[-1]["type"] == "next" and own_id in text, (column, received)
                assert not leaks(person, text), (column, text[:600])
                if person == "super":
                    assert ORG_B_MARK in text.lower(), "the super_admin sees everyone's events"
            else:
                codes = [
                    (e.get("extensions") or {}).get("code") for e in received[0].get("payload", [])
                ]
                assert received[0]["type"] == "error" and "FORBIDDEN" in codes, (column, text)
        finally:
            await ws.close()


# -- HTTP routes ---------------------------------------------------------------------------------

Status = int
HttpProbe = Callable[[Audit, str, str | None], Awaitable[Status]]
PROXY_BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": "authz-probe-model",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/messages": {
        "model": "authz-probe-model",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/messages/count_tokens": {
        "model": "authz-probe-model",
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/embeddings": {"model": "authz-probe-model", "input": "hi"},
    "/v1/error-reports": {"type": "probe", "error": "authz probe"},
    "/v1/responses": {"model": "authz-probe-model", "input": "hi"},
    "/v1beta/models/authz-probe-model:generateContent": {"contents": [{"parts": [{"text": "hi"}]}]},
    "/v1/models/authz-probe-model:generateContent": {"contents": [{"parts": [{"text": "hi"}]}]},
}


def _proxy(method: str, path: str) -> HttpProbe:
    async def probe(audit: Audit, side: str, person: str | None) -> Status:
        w = audit.world
        headers = {"anthropic-version": "2023-06-01"} if path.startswith("/v1/messages") else {}
        if person is not None:
            key = w.api_keys[person] if side == "own" else w.tokens[person]
            headers["Authorization"] = f"Bearer {key}"
        resp = await audit.client.request(
            method, path, json=PROXY_BODIES.get(path), headers=headers
        )
        return resp.status_code

    return probe


async def _activity_csv(audit: Audit, side: str, person: str | None) -> Status:
    w = audit.world
    own = {"super": "member_a", "admin_a": "member_a", "member_a": "member_a"}
    other = {"super": "member_b", "admin_a": "member_b", "member_a": "admin_a"}
    target = w.user((own if side == "own" else other).get(person or "", "member_a"))
    headers = {"Authorization": f"Bearer {w.tokens[person]}"} if person else {}
    resp = await audit.client.get(f"/admin/users/{target.id}/activity.csv", headers=headers)
    if resp.status_code == 200 and person in ("admin_a", "member_a"):
        assert not leaks(person, resp.text), resp.text
    return resp.status_code


def _graphql_http(method: str) -> HttpProbe:
    async def probe(audit: Audit, side: str, person: str | None) -> Status:
        headers = {"Authorization": f"Bearer {audit.world.tokens[person]}"} if person else {}
        if method == "GET":
            resp = await audit.client.get(
                "/graphql", params={"query": "{ __typename }"}, headers=headers
            )
        else:
            resp = await audit.client.post(
                "/graphql", json={"query": "{ __typename }"}, headers=headers
            )
        return resp.status_code

    return probe


async def _graphql_ws(audit: Audit, side: str, person: str | None) -> Status:
    ws, refused = await _connect(audit, audit.world.tokens[person] if person else None)
    await ws.close()
    return 101 if refused is None else 401


async def _responses_ws(audit: Audit, side: str, person: str | None) -> Status:
    """A WebSocket upgrade on /v1/responses: 426 for everyone (Codex then uses HTTP)."""
    headers = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    if person is not None:
        headers["authorization"] = f"Bearer {audit.world.api_keys[person]}"
    return (await audit.client.get("/v1/responses", headers=headers)).status_code


async def _healthz(audit: Audit, side: str, person: str | None) -> Status:
    return (await audit.client.get("/healthz")).status_code


def _public_get(path: str) -> HttpProbe:
    """A route that takes no credentials: sent with the person's token, which must not matter."""

    async def probe(audit: Audit, side: str, person: str | None) -> Status:
        headers = {"Authorization": f"Bearer {audit.world.tokens[person]}"} if person else {}
        return (await audit.client.get(path, headers=headers)).status_code

    return probe


#: How to call each route as a person, with their own credentials/targets or the other side's.
HTTP_PROBES: dict[str, HttpProbe] = {
    "GET /healthz": _healthz,
    "GET /metrics": _public_get("/metrics"),
    "GET /graphql/assets/{name}": _public_get("/graphql/assets/graphiql.js"),
    "GET /admin/users/{user_id:int}/activity.csv": _activity_csv,
    # Single sign-on takes no credentials (here not set up: a 404 page for everyone).
    "GET /auth/oidc/login": _public_get("/auth/oidc/login"),
    "GET /auth/oidc/callback": _public_get("/auth/oidc/callback?state=authz-probe&code=x"),
    "GET /graphql": _graphql_http("GET"),
    "POST /graphql": _graphql_http("POST"),
    "WS /graphql": _graphql_ws,
    **{
        f"{m} {p}": _proxy(m, p)
        for m, p in (
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/messages"),
            ("POST", "/v1/messages/count_tokens"),
            ("POST", "/v1/embeddings"),
            ("GET", "/v1/models"),
            ("POST", "/v1/error-reports"),
            ("POST", "/v1/responses"),
        )
    },
    "WS /v1/responses": _responses_ws,
    # The Gemini door (a gateway key as Bearer works there too; unknown model: 404).
    "GET /v1beta/models": _proxy("GET", "/v1beta/models"),
    "GET /v1beta/models/{name:path}": _proxy("GET", "/v1beta/models/authz-probe-model"),
    "POST /v1beta/models/{name:path}": _proxy(
        "POST", "/v1beta/models/authz-probe-model:generateContent"
    ),
    "GET /v1/models/{name:path}": _proxy("GET", "/v1/models/authz-probe-model"),
    "POST /v1/models/{name:path}": _proxy("POST", "/v1/models/authz-probe-model:generateContent"),
    # Stored responses: an id nobody stored (the key's own organization answers 404).
    "GET /v1/responses/{response_id}": _proxy("GET", "/v1/responses/resp_authz_probe"),
    "DELETE /v1/responses/{response_id}": _proxy("DELETE", "/v1/responses/resp_authz_probe"),
    "GET /v1/responses/{response_id}/input_items": _proxy(
        "GET", "/v1/responses/resp_authz_probe/input_items"
    ),
}


@pytest.mark.parametrize("rule", HTTP_RULES, ids=[r.path for r in HTTP_RULES])
async def test_http_route_by_role(audit: Audit, rule: authz.Rule) -> None:
    assert rule.path in HTTP_PROBES, f"teach the audit how to call {rule.path}"
    probe = HTTP_PROBES[rule.path]
    problems = []
    for column in authz.COLUMNS:
        person = ROLE_USER.get(column)
        status = await probe(audit, "own", person)
        if rule.allows(column) and status in (401, 403):
            problems.append(f"{column}: allowed but got {status}")
        if not rule.allows(column) and status not in (401, 403):
            problems.append(f"{column}: refused but got {status}")
        if column == authz.NONE or not rule.allows(column):
            continue
        if rule.path.startswith(
            ("POST /v1/", "GET /v1/", "DELETE /v1/", "GET /v1beta/", "POST /v1beta/")
        ):
            # A dashboard session or admin token is not a gateway API key.
            status = await probe(audit, "other", person)
            if status != 401:
                problems.append(f"{column}: an admin token was accepted as an API key ({status})")
        elif "{user_id" in rule.path and person != "super":
            status = await probe(audit, "other", person)
            if status != 403:
                problems.append(f"{column}: another organization's user gave {status}")
    assert not problems, "\n".join(problems)
