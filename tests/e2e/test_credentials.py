"""Provider credentials through a real gateway process (issue 7, must-show 1, 3 and 5).

- DB over env at startup, both ways: ``OPENAI_BASE_URL`` names fake X; a stored row names fake Y.
- A credential set through GraphQL is used by the next request, and is stored only as AES-GCM
  ciphertext: the raw key is in no byte of the database (SQLite file + WAL, or every row of every
  PostgreSQL table), in no GraphQL answer (only the last four) and in no line of the server log.
- A flipped ciphertext byte, or a ciphertext moved to another provider's row (edited in the
  database, then a credentials reload; and at startup) breaks *that* provider with a clear error
  in the client's protocol; the gateway keeps serving the others.
- ``python -m backend.cli rotate-key`` + a restart under the new key keeps every credential usable.
- Only a super_admin may read or change credentials; no stored secret is in any GraphQL answer,
  proxy error, error report, server log line or database row (the last test greps them all).

The module shares one gateway; tests run in file order and each sets up the rows it needs.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from backend.data.models.logs import AuditLog, ErrorReport
from backend.data.models.settings import ProviderCredential
from backend.data.models.tenancy import User
from backend.security.crypto import (
    CredentialDecryptError,
    decrypt_secret,
    derive_key,
    encrypt_secret,
    provider_aad,
)
from backend.security.passwords import hash_password
from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import UPSTREAM_KEYS, gateway_env
from tests.e2e.harness import (
    ROOT,
    GatewayProc,
    Seeded,
    graphql,
    orm,
    prepare_database,
    seed_basic,
    wait_for_rows,
)
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

#: Generous: the test machine is shared, and a start is mostly imports and migrations.
START_TIMEOUT_S = 120.0
ADMIN = ("root@switchboard.test", "root-password-1234")
ORG_ADMIN = ("orgadmin@acme.test", "orgadmin-password-1234")
MEMBER = ("member@acme.test", "member-password-1234")

OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"

SET_CREDENTIAL = """
mutation($p: String!, $i: ProviderCredentialInput!) {
  setProviderCredential(provider: $p, input: $i) {
    provider kind baseUrl apiKeySet apiKeyLast4 enabled updatedBy
  }
}"""
LIST_CREDENTIALS = "{ providerCredentials { provider kind baseUrl apiKeySet apiKeyLast4 } }"


def new_secret(tag: str) -> str:
    return f"sk-{tag}-{uuid.uuid4().hex}"


@dataclass
class CredStack:
    gateway: GatewayProc
    database_url: str
    seeded: Seeded
    #: The OpenAI upstream named by ``OPENAI_BASE_URL``.
    x: OpenAIFake
    #: A second OpenAI-compatible upstream, only ever named by a stored credential.
    y: OpenAIFake
    anthropic: AnthropicFake
    tmp: Path
    admin_id: int
    token: str = ""
    #: Every GraphQL answer, proxy error body and CLI output of the module (grepped at the end).
    transcript: list[str] = field(default_factory=list)
    #: Every API key the module sent to the admin API or wrote to the database.
    stored: set[str] = field(default_factory=set)
    #: Every SWITCHBOARD_SECRET_KEY the gateway ran with.
    secret_keys: set[str] = field(default_factory=set)

    def reset(self) -> None:
        for fake in (self.x, self.y, self.anthropic):
            fake.reset()

    def restart(self) -> None:
        assert self.gateway.stop() == 0, self.gateway.log_text()[-3000:]
        self.gateway.start(START_TIMEOUT_S)


async def seed_people(db: str, org_id: int) -> int:
    from backend.admin.bootstrap import bootstrap_super_admin

    async with orm(db):
        admin, _ = await bootstrap_super_admin(*ADMIN)
        for (email, password), role in ((ORG_ADMIN, "org_admin"), (MEMBER, "member")):
            await User.create(
                name=role,
                email=email,
                role=role,
                organization_id=org_id,
                password_hash=hash_password(password),
            )
    return int(admin.id)


@pytest.fixture(scope="module")
async def cstack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CredStack]:
    tmp = tmp_path_factory.mktemp("credentials")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    admin_id = await seed_people(db, seeded.org_id)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    y = OpenAIFake()
    y.start()
    gw = GatewayProc(gateway_env(db, tmp, fakes), tmp / "gateway.log")
    try:
        gw.start(START_TIMEOUT_S)
        stack = CredStack(gw, db, seeded, fakes["openai"], y, fakes["anthropic"], tmp, admin_id)
        stack.secret_keys.add(gw.env["SWITCHBOARD_SECRET_KEY"])
        stack.token = login(stack, *ADMIN)
        yield stack
    finally:
        gw.stop()
        for fake in [*fakes.values(), y]:
            fake.stop()
        await drop_database(db)


# -- helpers ----------------------------------------------------------------------------------


def gql(stack: CredStack, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
    """One GraphQL call; the whole answer goes into the transcript."""
    return graphql(stack.gateway.url, token, query, variables, stack.transcript)


def ok(stack: CredStack, query: str, **variables: Any) -> dict[str, Any]:
    body = gql(stack, query, stack.token, **variables)
    assert not body.get("errors"), body
    return dict(body["data"])


def login(stack: CredStack, email: str, password: str) -> str:
    body = gql(
        stack,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        e=email,
        p=password,
    )
    assert not body.get("errors"), body
    return str(body["data"]["login"]["token"])


def set_credential(stack: CredStack, provider: str, **fields: Any) -> dict[str, Any]:
    if fields.get("apiKey"):
        stack.stored.add(fields["apiKey"])
    if fields.get("kind"):
        fields["kind"] = fields["kind"].upper()  # a ProviderKind: "openai" is OPENAI
    return dict(ok(stack, SET_CREDENTIAL, p=provider, i=fields)["setProviderCredential"])


def touch_credentials(stack: CredStack) -> None:
    """Any credentials mutation reloads every provider from the database (no config change)."""
    set_credential(stack, "gemini", kind="gemini", enabled=True)


def ask_openai(stack: CredStack, model: str = OPENAI_MODEL) -> str:
    client = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return resp.choices[0].message.content or ""


def ask_anthropic(stack: CredStack, model: str = ANTHROPIC_MODEL) -> str:
    client = anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )
    msg = client.messages.create(
        model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    return "".join(b.text for b in msg.content if b.type == "text")


def raw_request(stack: CredStack, protocol: str, model: str) -> httpx.Response:
    """A request in ``protocol``'s wire format; the answer goes into the transcript."""
    headers = {"authorization": f"Bearer {stack.seeded.user_key}"}
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if protocol == "openai":
        path = "/v1/chat/completions"
    else:
        path = "/v1/messages"
        headers["anthropic-version"] = "2023-06-01"
        body["max_tokens"] = 50
    resp = httpx.post(stack.gateway.url + path, json=body, headers=headers, timeout=30)
    stack.transcript.append(resp.text)
    return resp


def protocol_error(resp: httpx.Response, protocol: str) -> dict[str, Any]:
    """The error object of an error answer, checked to be in ``protocol``'s own shape."""
    body = resp.json()
    if protocol == "openai":
        assert set(body) == {"error"}, body
    else:
        assert body["type"] == "error", body
    err = dict(body["error"])
    assert isinstance(err["message"], str) and isinstance(err["type"], str)
    return err


def served(fake: OpenAIFake | AnthropicFake, key: str) -> None:
    """``fake`` got exactly one request since its reset, authenticated with ``key``."""
    assert len(fake.requests) == 1, [r.path for r in fake.requests]
    headers = fake.requests[0].headers
    assert headers.get("authorization") == f"Bearer {key}" or headers.get("x-api-key") == key


async def rows(stack: CredStack) -> dict[str, ProviderCredential]:
    async with orm(stack.database_url):
        return {r.provider: r for r in await ProviderCredential.all()}


async def update_row(stack: CredStack, provider: str, **values: Any) -> None:
    async with orm(stack.database_url):
        assert await ProviderCredential.filter(provider=provider).update(**values) == 1


async def database_bytes(stack: CredStack) -> bytes:
    """Everything the database holds: the SQLite files as bytes, or every row of every table."""
    url = stack.database_url
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite://"))
        parts = [path] + [Path(f"{path}{s}") for s in ("-wal", "-journal", "-shm")]
        return b"".join(p.read_bytes() for p in parts if p.exists())
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        out = []
        for t in tables:
            name = t["table_name"].replace('"', '""')
            for row in await conn.fetch(f'SELECT t::text AS line FROM "{name}" t'):
                out.append(row["line"])
        return "\n".join(out).encode()
    finally:
        await conn.close()


async def gateway_key(stack: CredStack) -> bytes:
    return derive_key(stack.gateway.env["SWITCHBOARD_SECRET_KEY"])


# -- 3. precedence at startup (and a broken row at startup) --------------------------------------


async def test_database_row_beats_environment_at_startup_both_ways(cstack: CredStack) -> None:
    async with orm(cstack.database_url):
        existing = await ProviderCredential.all().delete()
    if existing:
        cstack.restart()
    # No row: the environment's OPENAI_BASE_URL / OPENAI_API_KEY (fake X) answer.
    cstack.reset()
    cstack.x.replies.append(Reply(text="from X"))
    assert ask_openai(cstack) == "from X"
    served(cstack.x, UPSTREAM_KEYS["openai"])
    assert cstack.y.requests == []

    # A row written as the admin API writes it (AES-GCM under the gateway's key), then a start.
    # Next to it, Gemini's row holds a ciphertext made for OpenAI's row (moved between rows):
    # the gateway must still start, and serve everything but Gemini.
    key, moved = new_secret("startup"), new_secret("moved")
    cstack.stored |= {key, moved}
    aes = await gateway_key(cstack)
    async with orm(cstack.database_url):
        await ProviderCredential.create(
            provider="openai",
            kind="openai",
            base_url=cstack.y.sdk_base_url,
            api_key_ciphertext=encrypt_secret(aes, key, provider_aad("openai")),
            api_key_last4=key[-4:],
        )
        await ProviderCredential.create(
            provider="gemini",
            kind="gemini",
            api_key_ciphertext=encrypt_secret(aes, moved, provider_aad("openai")),
            api_key_last4=moved[-4:],
        )
    log_before = len(cstack.gateway.log_text())
    cstack.restart()
    cstack.reset()
    cstack.y.replies.append(Reply(text="from Y"))
    assert ask_openai(cstack) == "from Y"
    served(cstack.y, key)
    assert cstack.x.requests == []

    resp = raw_request(cstack, "anthropic", "gemini/gemini-2.5-flash")
    # Configuration, not an outage: not retried by the SDKs (x-should-retry), no breaker.
    assert resp.status_code == 404, resp.text
    assert resp.headers["x-should-retry"] == "false"
    message = protocol_error(resp, "anthropic")["message"]
    assert "gemini" in message and "failed authentication" in message
    assert "provider gemini disabled" in cstack.gateway.log_text()[log_before:]

    # Removing the rows through the admin API falls back to the environment at once.
    for provider in ("openai", "gemini"):
        ok(cstack, "mutation($p: String!) { deleteProviderCredential(provider: $p) }", p=provider)
    cstack.reset()
    assert ask_openai(cstack) == "ok"
    served(cstack.x, UPSTREAM_KEYS["openai"])
    assert ask_openai(cstack, "gemini/gemini-2.5-flash") == "ok"


# -- 1. set through GraphQL: next request, ciphertext at rest ----------------------------------


async def test_credential_set_through_graphql_applies_at_once_and_is_ciphertext_at_rest(
    cstack: CredStack,
) -> None:
    key = new_secret("hot")
    cred = set_credential(
        cstack, "openai", kind="openai", baseUrl=cstack.y.sdk_base_url, apiKey=key
    )
    assert cred["apiKeySet"] is True and cred["apiKeyLast4"] == key[-4:]
    assert cred["updatedBy"] == cstack.admin_id
    cstack.reset()
    cstack.y.replies.append(Reply(text="hot Y"))
    assert ask_openai(cstack) == "hot Y"  # no restart
    served(cstack.y, key)
    assert cstack.x.requests == []

    listed = {c["provider"]: c for c in ok(cstack, LIST_CREDENTIALS)["providerCredentials"]}
    assert listed["openai"]["apiKeyLast4"] == key[-4:]

    row = (await rows(cstack))["openai"]
    token = row.api_key_ciphertext
    assert token.startswith("v1:") and key not in token
    # A fresh nonce per write: the same key written again is another ciphertext.
    set_credential(cstack, "openai", apiKey=key)
    again = (await rows(cstack))["openai"].api_key_ciphertext
    assert again != token
    assert decrypt_secret(await gateway_key(cstack), again, provider_aad("openai")) == key

    dump = await database_bytes(cstack)
    assert again.encode() in dump  # the dump does cover the credentials table
    assert key.encode() not in dump
    assert cstack.gateway.env["SWITCHBOARD_SECRET_KEY"].encode() not in dump

    # The audit trail names who changed which fields, never the value.
    async with orm(cstack.database_url):
        audit = await AuditLog.filter(target="provider:openai").order_by("id")
    assert audit and audit[-1].actor_id == cstack.admin_id
    assert "api_key" in audit[-1].detail.get("fields", [])
    assert all(key not in str(a.detail) for a in audit)


# -- 1. tampering ----------------------------------------------------------------------------


def assert_refused_for_openai(stack: CredStack) -> None:
    """OpenAI's model gets a clear error in both protocols; nothing reaches an OpenAI upstream."""
    stack.reset()
    for protocol in ("openai", "anthropic"):
        resp = raw_request(stack, protocol, OPENAI_MODEL)
        assert resp.status_code == 404, resp.text  # configuration: not retried, no breaker
        assert resp.headers["x-should-retry"] == "false"
        err = protocol_error(resp, protocol)
        assert "openai" in err["message"], err
        assert "failed authentication" in err["message"], err
    assert stack.x.requests == [] and stack.y.requests == []


def assert_others_serve(stack: CredStack, anthropic_key: str) -> None:
    stack.reset()
    stack.anthropic.replies.append(Reply(text="anthropic fine"))
    assert ask_anthropic(stack) == "anthropic fine"
    served(stack.anthropic, anthropic_key)
    stack.anthropic.reset()
    assert ask_openai(stack, ANTHROPIC_MODEL) == "ok"  # the other protocol, same provider
    assert len(stack.anthropic.requests) == 1


async def two_credentials(stack: CredStack) -> tuple[str, str]:
    """OpenAI (fake Y) and Anthropic rows with fresh keys, both verified to serve."""
    okey, akey = new_secret("openai"), new_secret("ant")
    set_credential(stack, "openai", kind="openai", baseUrl=stack.y.sdk_base_url, apiKey=okey)
    set_credential(
        stack, "anthropic", kind="anthropic", baseUrl=stack.anthropic.base_url, apiKey=akey
    )
    stack.reset()
    ask_openai(stack)
    served(stack.y, okey)
    assert_others_serve(stack, akey)
    return okey, akey


async def test_flipped_ciphertext_byte_breaks_only_that_provider(cstack: CredStack) -> None:
    okey, akey = await two_credentials(cstack)
    token = (await rows(cstack))["openai"].api_key_ciphertext
    raw = bytearray(base64.b64decode(token.removeprefix("v1:")))
    raw[len(raw) // 2] ^= 0x01  # one bit inside the sealed bytes
    await update_row(cstack, "openai", api_key_ciphertext="v1:" + base64.b64encode(raw).decode())
    log_before = len(cstack.gateway.log_text())
    touch_credentials(cstack)  # a reload, no restart

    assert_refused_for_openai(cstack)
    assert_others_serve(cstack, akey)
    new_log = cstack.gateway.log_text()[log_before:]
    assert "provider openai disabled" in new_log and "failed authentication" in new_log
    # The failed request is in the log with its reason.
    # Waits for this test's own rows: earlier tests of the module left 404 rows of their own.
    rows_ = await wait_for_rows(
        cstack.database_url,
        2,
        status=404,
        requested_model=OPENAI_MODEL,
        error_message__contains="failed authentication",
    )
    assert len(rows_) >= 2, "the refused OpenAI requests have no log rows with their reason"
    assert all("'openai'" in (r.error_message or "") for r in rows_), [
        (r.endpoint, r.status, r.error_type, r.error_message) for r in rows_
    ]

    set_credential(cstack, "openai", apiKey=okey)  # re-entering the key repairs it
    cstack.reset()
    ask_openai(cstack)
    served(cstack.y, okey)


async def test_ciphertext_moved_to_another_providers_row_is_refused(cstack: CredStack) -> None:
    okey, akey = await two_credentials(cstack)
    creds = await rows(cstack)
    # Anthropic's (valid) ciphertext copied into OpenAI's row: the associated data says no.
    await update_row(cstack, "openai", api_key_ciphertext=creds["anthropic"].api_key_ciphertext)
    log_before = len(cstack.gateway.log_text())
    touch_credentials(cstack)

    assert_refused_for_openai(cstack)
    assert_others_serve(cstack, akey)
    assert "provider openai disabled" in cstack.gateway.log_text()[log_before:]

    set_credential(cstack, "openai", apiKey=okey)
    cstack.reset()
    ask_openai(cstack)
    served(cstack.y, okey)


# -- 1. key rotation ----------------------------------------------------------------------------


async def test_key_rotation_keeps_every_credential_usable(cstack: CredStack) -> None:
    okey, akey = await two_credentials(cstack)
    before = {
        p: r.api_key_ciphertext for p, r in (await rows(cstack)).items() if r.api_key_ciphertext
    }
    old_secret = cstack.gateway.env["SWITCHBOARD_SECRET_KEY"]
    new_secret_key = "rotated-" + uuid.uuid4().hex
    assert cstack.gateway.stop() == 0

    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env |= cstack.gateway.env
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "backend.cli", "rotate-key", "--new-key", new_secret_key],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    cstack.transcript += [done.stdout, done.stderr]
    assert done.returncode == 0, done.stderr
    assert f"re-encrypted {len(before)} credential(s)" in done.stdout

    after = await rows(cstack)
    for provider, token in before.items():
        new_token = after[provider].api_key_ciphertext
        assert new_token != token
        with pytest.raises(CredentialDecryptError):
            decrypt_secret(derive_key(old_secret), new_token, provider_aad(provider))
    assert (
        decrypt_secret(
            derive_key(new_secret_key), after["openai"].api_key_ciphertext, provider_aad("openai")
        )
        == okey
    )

    cstack.gateway.env["SWITCHBOARD_SECRET_KEY"] = new_secret_key
    cstack.secret_keys.add(new_secret_key)
    cstack.gateway.start(START_TIMEOUT_S)
    cstack.reset()
    cstack.y.replies.append(Reply(text="rotated Y"))
    assert ask_openai(cstack) == "rotated Y"
    served(cstack.y, okey)
    assert_others_serve(cstack, akey)
    # Credentials written from now on use the new key, too.
    newer = new_secret("after-rotation")
    set_credential(cstack, "openai", apiKey=newer)
    cstack.reset()
    ask_openai(cstack)
    served(cstack.y, newer)


# -- 5. roles, and no secret anywhere -----------------------------------------------------------


async def test_only_a_super_admin_reads_or_changes_credentials(cstack: CredStack) -> None:
    set_credential(cstack, "openai", apiKey=new_secret("roles"))
    before = (await rows(cstack))["openai"].api_key_ciphertext
    intruder = new_secret("intruder")
    cstack.stored.add(intruder)  # refused, so never stored: grepped for all the same
    for email, password in (ORG_ADMIN, MEMBER):
        token = login(cstack, email, password)
        attempts = [
            (LIST_CREDENTIALS, {}),
            (SET_CREDENTIAL, {"p": "openai", "i": {"apiKey": intruder}}),
            ('mutation { deleteProviderCredential(provider: "openai") }', {}),
        ]
        for query, variables in attempts:
            body = gql(cstack, query, token, **variables)
            assert body.get("data") is None, body
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
            assert "super_admin" in body["errors"][0]["message"]
    anonymous = gql(cstack, LIST_CREDENTIALS)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await rows(cstack))["openai"].api_key_ciphertext == before  # nothing changed


async def test_no_stored_secret_in_any_answer_log_line_or_row(cstack: CredStack) -> None:
    # Self-sufficient when run alone: store one more key, use it, and have a write refused
    # whose message could have echoed the value.
    key = new_secret("last")
    set_credential(cstack, "openai", kind="openai", baseUrl=cstack.y.sdk_base_url, apiKey=key)
    cstack.reset()
    ask_openai(cstack)
    served(cstack.y, key)
    refused = new_secret("refused")
    cstack.stored.add(refused)
    body = gql(cstack, SET_CREDENTIAL, cstack.token, p="openai", i={"apiKey": f"{refused} x"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    # Read back everything an operator can read, so it is part of what is grepped.
    ok(cstack, LIST_CREDENTIALS)
    ok(
        cstack,
        "{ gatewayLogs(first: 200) { nodes { errorMessage requestBody responseBody } } "
        "errorReports(first: 200) { nodes { error } } "
        "auditLog(first: 200) { nodes { action target detail } } }",
    )
    secrets = cstack.stored | set(UPSTREAM_KEYS.values()) | cstack.secret_keys

    answers = "\n".join(cstack.transcript)
    server_log = cstack.gateway.log_text()
    dump = await database_bytes(cstack)
    async with orm(cstack.database_url):
        reports = " ".join(r.error for r in await ErrorReport.all())
    assert "providers rebuilt: openai" in server_log  # the log did see credential changes
    for secret in secrets:
        assert secret not in answers
        assert secret not in server_log
        assert secret not in reports
        assert secret.encode() not in dump
    # What operators do see of a stored key: its last four characters.
    assert key[-4:] in answers
