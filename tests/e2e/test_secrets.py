"""No secret at rest or in any answer (issue 10, item 5).

One run through a real gateway process with known secret values:

- provider keys: OpenAI's from the environment, Anthropic's set through ``setProviderCredential``;
- a gateway API key (``createApiKey``), an admin token (``createAdminToken``), a session token
  (``login``), dashboard passwords (bootstrap and ``createUser``), a mistyped password and a
  made-up API key that are refused, and the gateway's master secret (``SWITCHBOARD_SECRET_KEY``);
- values DLP redacts (email, phone, card, IBAN, an API-key-like token, a custom rule's id) in
  chat requests (both SDKs, streamed and not) and an error report of a DLP-protected organization.

Then it searches the database (SQLite file + -wal/-journal/-shm bytes, or every row of every
PostgreSQL table as text), the server log, the request log rows, the user's CSV export and every
GraphQL answer of the run, plus a final sweep as super_admin that introspects the schema and
queries every root query field. No secret may appear anywhere, except each token/key in the
one answer that issued it ("shown once"). What may appear does: the API key's prefix, argon2
hashes, the credential's last four characters, DLP placeholders; and control values (an email
that is not secret, the key prefix) are found by the same searches, so the searches can fail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import asyncpg
import httpx
import openai
import orjson
import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    build_client_schema,
    get_introspection_query,
    get_named_type,
)

from backend.data.models.logs import RequestLog
from tests.e2e.conftest import UPSTREAM_KEYS, Stack
from tests.e2e.harness import orm, wait_for_rows
from tests.fakes.anthropic_fake import AnthropicReply
from tests.fakes.base import Reply
from tests.security.authz_probe import selection


def _luhn_card() -> str:
    """A fresh 16-digit card number with a valid Luhn check digit, grouped by four."""
    body = "4" + "".join(str(int(c, 16) % 10) for c in uuid.uuid4().hex[:14])
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    digits = body + str((10 - total % 10) % 10)
    return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


RUN = uuid.uuid4().hex[:10]
ENV_OPENAI_KEY = f"sk-envsecret-{uuid.uuid4().hex}"
DB_ANTHROPIC_KEY = f"sk-ant-dbsecret-{uuid.uuid4().hex}"
SUPER = (f"root-{RUN}@switchboard.test", f"Root-Password-{uuid.uuid4().hex}")
MEMBER_PASSWORD = f"Member-Password-{uuid.uuid4().hex}"
WRONG_PASSWORD = f"Wrong-Password-{uuid.uuid4().hex}"
BOGUS_API_KEY = f"sb-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex}"
#: (label, value as typed, placeholder kind, other spellings that must not leak either)
DLP_VALUES = (
    ("email", f"jane.{RUN}@example.com", "EMAIL", ()),
    ("phone", "+1 415 555 2671", "PHONE", ("4155552671",)),
    ("card", _luhn_card(), "CARD", ()),
    ("iban", "DE89 3704 0044 0532 0130 00", "IBAN", ("DE89370400440532013000",)),
    ("token", f"sk-proj-{uuid.uuid4().hex}{RUN}", "SECRET", ()),
    ("employee", f"EMP-{int(RUN, 16) % 900000 + 100000}", "EMPLOYEE_ID", ()),
)
OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"


@pytest.fixture(scope="module")
def gateway_overrides() -> dict[str, str]:
    return {"OPENAI_API_KEY": ENV_OPENAI_KEY}


@dataclass
class Run:
    stack: Stack
    token: str = ""
    #: (what, answer text, secrets this answer issued: shown once, here only)
    answers: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)
    issued: dict[str, str] = field(default_factory=dict)

    async def gql(
        self, query: str, token: str | None = None, issues: str = "", **variables: Any
    ) -> dict[str, Any]:
        auth = token if token is not None else self.token
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        async with httpx.AsyncClient(base_url=self.stack.gateway.url, timeout=30) as client:
            resp = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        body: dict[str, Any] = resp.json()
        secret = _dig(body, issues) if issues else None
        self.answers.append((query, resp.text, frozenset([secret] if secret else [])))
        return body

    async def ok(self, query: str, issues: str = "", **variables: Any) -> dict[str, Any]:
        body = await self.gql(query, issues=issues, **variables)
        assert not body.get("errors"), body
        out: dict[str, Any] = body["data"]
        return out


def _dig(body: dict[str, Any], path: str) -> str | None:
    value: Any = body.get("data")
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def prompt() -> str:
    return "Please file this: " + "; ".join(f"{label} {value}" for label, value, *_ in DLP_VALUES)


def echo() -> str:
    """The upstream's answer quotes every placeholder: the client gets the values back."""
    return "Filed: " + ", ".join(f"[{kind}_1]" for _, _, kind, _ in DLP_VALUES)


async def setup_and_traffic(stack: Stack) -> tuple[Run, dict[str, Any]]:
    """Everything the run does through the admin API and the proxy; returns the ids it made."""
    from backend.admin.bootstrap import bootstrap_super_admin

    async with orm(stack.database_url):
        await bootstrap_super_admin(*SUPER)
    run = Run(stack)
    refused = await run.gql(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        token="",
        e=SUPER[0],
        p=WRONG_PASSWORD,
    )
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", refused
    body = await run.gql(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        token="",
        issues="login.token",
        e=SUPER[0],
        p=SUPER[1],
    )
    run.issued["session token"] = session = body["data"]["login"]["token"]
    body = await run.gql(
        'mutation { createAdminToken(name: "secrets run") { token adminToken { prefix } } }',
        token=session,
        issues="createAdminToken.token",
    )
    run.issued["admin token"] = run.token = body["data"]["createAdminToken"]["token"]

    org = (
        await run.ok(
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
            i={"name": "Vault Corp", "slug": f"vault-{RUN}"},
        )
    )["createOrganization"]
    await run.ok(
        "mutation($t: Int!) { setDlpProtection(scope: ORG, targetId: $t, enabled: true) "
        "{ enabled } }",
        t=org["id"],
    )
    await run.ok(
        "mutation($t: Int!, $i: DlpPolicyInput!) { updateDlpPolicy(scope: ORG, "
        "targetId: $t, input: $i) { rulesEnabled } }",
        t=org["id"],
        i={"customRules": [{"name": "Employee id", "pattern": "EMP-[0-9]{6}"}]},
    )
    member = (
        await run.ok(
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id email } }",
            i={
                "name": "Vera Vault",
                "email": f"vera-{RUN}@vault.test",
                "organizationId": org["id"],
                "password": MEMBER_PASSWORD,
            },
        )
    )["createUser"]
    body = await run.gql(
        'mutation($u: Int!) { createApiKey(input: {userId: $u, name: "vault key"}) '
        "{ secret apiKey { prefix } } }",
        issues="createApiKey.secret",
        u=member["id"],
    )
    assert not body.get("errors"), body
    run.issued["API key"] = api_key = body["data"]["createApiKey"]["secret"]
    prefix = body["data"]["createApiKey"]["apiKey"]["prefix"]
    await run.ok(
        'mutation($i: ProviderCredentialInput!) { setProviderCredential(provider: "anthropic", '
        "input: $i) { apiKeySet apiKeyLast4 } }",
        i={
            "kind": "ANTHROPIC",
            "baseUrl": stack.anthropic.sdk_base_url,
            "apiKey": DB_ANTHROPIC_KEY,
        },
    )
    # The member logs in too (their password is checked, never kept).
    body = await run.gql(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        token="",
        issues="login.token",
        e=member["email"],
        p=MEMBER_PASSWORD,
    )
    run.issued["member session token"] = body["data"]["login"]["token"]

    stack.reset()
    stack.openai.replies.extend([Reply(text=echo()), Reply(text=echo(), chunks=7)])
    stack.anthropic.replies.append(AnthropicReply(text=echo()))
    oai = openai.OpenAI(base_url=stack.gateway.openai_base_url, api_key=api_key, max_retries=0)
    messages: Any = [{"role": "user", "content": prompt()}]
    answers = [oai.chat.completions.create(model=OPENAI_MODEL, messages=messages)]
    streamed = oai.chat.completions.create(model=OPENAI_MODEL, messages=messages, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    ant = anthropic.Anthropic(base_url=stack.gateway.url, api_key=api_key, max_retries=0)
    msg = ant.messages.create(model=ANTHROPIC_MODEL, max_tokens=100, messages=messages)
    texts = [answers[0].choices[0].message.content or "", text, msg.content[0].text]  # type: ignore[union-attr]
    for label, value, *_ in DLP_VALUES:
        for t in texts:  # the client gets its own values back: restored, never stored
            assert value in t, (label, t)
    report = httpx.post(
        f"{stack.gateway.url}/v1/error-reports",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"type": "client_crash", "error": f"crashed while sending {prompt()}"},
        timeout=30,
    )
    assert report.status_code < 300, report.text
    for bad in (BOGUS_API_KEY, run.token):  # neither is an API key
        resp = httpx.post(
            f"{stack.gateway.openai_base_url}/chat/completions",
            headers={"Authorization": f"Bearer {bad}"},
            json={"model": OPENAI_MODEL, "messages": messages},
            timeout=30,
        )
        assert resp.status_code == 401, resp.text
    return run, {"member": member, "prefix": prefix}


async def graphql_sweep(run: Run) -> None:
    """Introspect the schema and query every root query field without required arguments
    (every list and connection among them), as super_admin, everything selected 3 levels deep."""
    intro = await run.ok(get_introspection_query())
    schema = build_client_schema(intro)  # type: ignore[arg-type]
    assert schema.query_type is not None
    query_type = next(t for t in intro["__schema"]["types"] if t["name"] == "Query")
    # From the introspection JSON: the client schema loses enum defaults (they read Undefined).
    required = {
        f["name"]
        for f in query_type["fields"]
        if any(a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None for a in f["args"])
    }
    swept, lists = set(), set()
    for name, f in schema.query_type.fields.items():
        t = f.type.of_type if isinstance(f.type, GraphQLNonNull) else f.type
        if isinstance(t, GraphQLList) or get_named_type(t).name.endswith("Connection"):
            lists.add(name)
        if name in required:
            continue
        inner = selection(f.type)
        args = "(first: 200)" if "first" in f.args else ""
        await run.ok(f"query {{ {name}{args}{f' {{ {inner} }}' if inner else ''} }}")
        swept.add(name)
    assert lists and lists <= swept, lists - swept
    assert {"gatewayLogs", "errorReports", "auditLog", "providerCredentials"} <= swept


async def database_text(database_url: str) -> bytes:
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite://").split("?", 1)[0])
        parts = [path] + [Path(f"{path}{s}") for s in ("-wal", "-journal", "-shm")]
        return b"".join(p.read_bytes() for p in parts if p.exists())
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        lines = []
        for t in tables:
            name = t["table_name"].replace('"', '""')
            lines += [
                r["line"] for r in await conn.fetch(f'SELECT t::text AS line FROM "{name}" t')
            ]
        assert len(tables) >= 10, tables
        return "\n".join(lines).encode()
    finally:
        await conn.close()


async def test_no_secret_anywhere(stack: Stack) -> None:
    run, made = await setup_and_traffic(stack)
    member, prefix = made["member"], made["prefix"]

    # The secrets were really used: the upstreams got the provider keys and placeholders only.
    chats = [r for r in stack.openai.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 2 and all(
        r.headers.get("authorization") == f"Bearer {ENV_OPENAI_KEY}" for r in chats
    )
    calls = [r for r in stack.anthropic.requests if r.path.endswith("/messages")]
    assert len(calls) == 1 and calls[0].headers.get("x-api-key") == DB_ANTHROPIC_KEY
    for r in chats + calls:
        upstream = r.body.decode()
        assert all(value not in upstream for _, value, *_ in DLP_VALUES), upstream
        assert all(f"[{kind}_1]" in upstream for _, _, kind, _ in DLP_VALUES), upstream

    rows = await wait_for_rows(stack.database_url, 3, user_id=member["id"])
    assert len(rows) >= 3, rows
    async with orm(stack.database_url):
        log_rows = orjson.dumps(
            await RequestLog.all().order_by("id").values(), default=str
        ).decode()
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=30) as client:
        csv_resp = await client.get(
            f"/admin/users/{member['id']}/activity.csv",
            headers={"Authorization": f"Bearer {run.token}"},
        )
    assert csv_resp.status_code == 200, csv_resp.text
    csv_text = csv_resp.text
    await graphql_sweep(run)
    database = await database_text(stack.database_url)
    server_log = stack.gateway.log_text()

    secrets: dict[str, str] = {
        "OpenAI key (environment)": ENV_OPENAI_KEY,
        "Anthropic key (credentials mutation)": DB_ANTHROPIC_KEY,
        "super_admin password": SUPER[1],
        "member password": MEMBER_PASSWORD,
        "mistyped password": WRONG_PASSWORD,
        "made-up API key": BOGUS_API_KEY,
        "master secret": stack.gateway.env["SWITCHBOARD_SECRET_KEY"],
        **{f"env {k} key": v for k, v in UPSTREAM_KEYS.items()},
        **run.issued,
    }
    for label, value, _, also in DLP_VALUES:
        secrets[f"DLP {label}"] = value
        for i, variant in enumerate(also):
            secrets[f"DLP {label} ({i})"] = variant
    places = {
        "database": database.decode("utf-8", errors="replace"),
        "server log": server_log,
        "request log rows": log_rows,
        "CSV export": csv_text,
    }
    found = []
    for what, secret in secrets.items():
        for place, text in places.items():
            if secret in text:
                found.append(f"{what} in the {place}")
        if secret.encode() in database:
            found.append(f"{what} in the database bytes")
        for query, answer, issued in run.answers:
            if secret in answer and secret not in issued:
                found.append(f"{what} in the answer to {query[:80]!r}")
    assert not found, "\n".join(found)
    # Each token or key was shown exactly once: in the answer that issued it.
    for what, secret in run.issued.items():
        assert sum(secret in a for _, a, _ in run.answers) == 1, what

    # What may be seen is seen (and so the searches above look at the right text).
    answers = "\n".join(a for _, a, _ in run.answers)
    assert prefix in log_rows and prefix in csv_text and prefix in answers
    assert prefix.encode() in database
    assert b"$argon2" in database
    assert DB_ANTHROPIC_KEY[-4:] in answers
    for _, _, kind, _ in DLP_VALUES:
        for place in ("request log rows", "CSV export"):
            assert f"[{kind}_1]" in places[place], (kind, place)
        assert f"[{kind}_1]".encode() in database, kind
    assert member["email"] in answers and member["email"].encode() in database
    assert "crashed while sending" in answers  # the error report, as redacted, was swept
    assert "anthropic" in server_log  # the log saw the credential change
