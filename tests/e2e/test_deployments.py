"""Provider deployments through a real gateway process (issue 18 item 5, must-show 4).

Two OpenAI accounts are two fake OpenAI servers, each told apart also by the key it receives.
Deployments are set through GraphQL as an operator would; requests come from the official
OpenAI SDK (``max_retries=0``: nothing the client retried could hide an error).

- Weights 3:1 give 75 % / 25 % (± 5 %) of 400 concurrent requests; each account sees only its key.
- One account answering 429 gives its share to the other, no error reaching the client; a
  stream whose first deployment fails before its first byte is answered by the other.
- A deployment's own requests-per-minute limit holds (the rest goes to the other account).
- GraphQL shows per-deployment load and health; keys are write-only (last 4), refused to members,
  and in no answer, log line or database column in clear.
- PostgreSQL + Redis: a change made on one instance is used by a second at once, and a
  deployment's rpm limit holds across both instances (one shared window).

The module shares one gateway; each test makes fresh deployments (new names, fresh state).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from backend.data.models.deployments import ProviderDeployment
from backend.security.crypto import decrypt_secret, derive_key
from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, Seeded, graphql, orm, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

START_TIMEOUT_S = 120.0
ADMIN = ("deployments-admin@switchboard.test", "deployments-password-1234")
MEMBER = ("deployments-member@acme.test", "member-password-1234")
MODEL = "openai/gpt-4o-mini"
ON_PG_REDIS = bool(redis_url()) and os.environ.get("DATABASE_URL", "").startswith(
    ("postgres://", "postgresql://")
)

SET = """
mutation($p: String!, $n: String!, $i: ProviderDeploymentInput!) {
  setProviderDeployment(provider: $p, name: $n, input: $i) {
    provider name baseUrl apiKeySet apiKeyLast4 weight rpmLimit tpmLimit models enabled
    status { health requests }
  }
}"""
LIST = """
query($p: String) {
  providerDeployments(provider: $p) {
    provider name apiKeyLast4 weight rpmLimit enabled
    status {
      health problem inFlight requests successes failures rateLimited limitRefusals
      cooldownSeconds lastError requestsLastMinute tokensLastMinute instances
    }
  }
}"""
DELETE = "mutation($p: String!, $n: String!) { deleteProviderDeployment(provider: $p, name: $n) }"


@dataclass
class DepStack:
    gateway: GatewayProc
    env: dict[str, str]
    db: str
    seeded: Seeded
    #: Account one: the environment's OPENAI_BASE_URL too.
    x: OpenAIFake
    #: Account two: only ever named by a deployment.
    y: OpenAIFake
    tmp: Path
    token: str = ""
    member_token: str = ""
    #: Every GraphQL answer of the module (grepped for keys at the end).
    transcript: list[str] = field(default_factory=list)
    #: Every deployment API key the module stored.
    secrets: set[str] = field(default_factory=set)
    names: Iterator[int] = field(default_factory=itertools.count)

    def reset(self) -> None:
        self.x.reset()
        self.y.reset()


@pytest.fixture(scope="module")
async def dstack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DepStack]:
    from backend.admin.bootstrap import bootstrap_super_admin
    from backend.data.models.tenancy import User
    from backend.security.passwords import hash_password

    tmp = tmp_path_factory.mktemp("deployments")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    async with orm(db):
        await bootstrap_super_admin(*ADMIN)
        await User.create(
            name="member",
            email=MEMBER[0],
            role="member",
            organization_id=seeded.org_id,
            password_hash=hash_password(MEMBER[1]),
        )
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    y = OpenAIFake()
    y.start()
    env = gateway_env(db, tmp, fakes)
    gw = GatewayProc(dict(env), tmp / "gateway.log")
    try:
        gw.start(START_TIMEOUT_S)
        stack = DepStack(gw, env, db, seeded, fakes["openai"], y, tmp)
        stack.token = login(stack, gw, *ADMIN)
        stack.member_token = login(stack, gw, *MEMBER)
        yield stack
    finally:
        gw.stop()
        for fake in [*fakes.values(), y]:
            fake.stop()
        await drop_database(db)


# -- helpers ----------------------------------------------------------------------------------


def gql(
    stack: DepStack, query: str, token: str | None, gw: GatewayProc | None = None, **variables: Any
) -> dict[str, Any]:
    return graphql((gw or stack.gateway).url, token, query, variables, stack.transcript)


def ok(stack: DepStack, query: str, gw: GatewayProc | None = None, **variables: Any) -> Any:
    body = gql(stack, query, stack.token, gw, **variables)
    assert not body.get("errors"), body
    return body["data"]


def login(stack: DepStack, gw: GatewayProc, email: str, password: str) -> str:
    body = gql(
        stack,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        None,
        gw,
        e=email,
        p=password,
    )
    assert not body.get("errors"), body
    return str(body["data"]["login"]["token"])


def key_for(tag: str) -> str:
    return f"sk-{tag}-{uuid.uuid4().hex}"


def deploy(stack: DepStack, name: str, **fields: Any) -> dict[str, Any]:
    if fields.get("apiKey"):
        stack.secrets.add(fields["apiKey"])
    return dict(ok(stack, SET, p="openai", n=name, i=fields)["setProviderDeployment"])


def fresh_pair(
    stack: DepStack, weight_x: int, weight_y: int, **x_fields: Any
) -> tuple[str, str, str, str]:
    """Delete every deployment, make two new ones (fresh state): name and key of x, then y."""
    for d in ok(stack, LIST, p="openai")["providerDeployments"]:
        ok(stack, DELETE, p="openai", n=d["name"])
    n = next(stack.names)
    name_x, name_y = f"acct-x{n}", f"acct-y{n}"
    key_x, key_y = key_for("x"), key_for("y")
    deploy(stack, name_x, baseUrl=stack.x.sdk_base_url, apiKey=key_x, weight=weight_x, **x_fields)
    deploy(stack, name_y, baseUrl=stack.y.sdk_base_url, apiKey=key_y, weight=weight_y)
    stack.reset()
    return name_x, key_x, name_y, key_y


def statuses(stack: DepStack, gw: GatewayProc | None = None) -> dict[str, dict[str, Any]]:
    rows = ok(stack, LIST, gw, p="openai")["providerDeployments"]
    return {d["name"]: d for d in rows}


async def send(
    gw: GatewayProc, key: str, count: int, *, concurrency: int = 16, stream: bool = False
) -> list[str]:
    """``count`` chat requests through the official SDK; the answers' texts (errors raise)."""
    client = openai.AsyncOpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0, timeout=60)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> str:
        async with gate:
            if stream:
                chunks = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
                )
                return "".join(
                    [c.choices[0].delta.content or "" async for c in chunks if c.choices]
                )
            resp = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}]
            )
            return resp.choices[0].message.content or ""

    try:
        return await asyncio.gather(*[one() for _ in range(count)])
    finally:
        await client.close()


def seen_keys(fake: OpenAIFake) -> set[str]:
    return {r.headers.get("authorization", "") for r in fake.requests}


# -- tests ------------------------------------------------------------------------------------


async def test_weights_three_to_one_over_400_requests(dstack: DepStack) -> None:
    name_x, key_x, name_y, key_y = fresh_pair(dstack, 3, 1)
    answers = await send(dstack.gateway, dstack.seeded.user_key, 400)
    assert answers == ["ok"] * 400
    nx, ny = len(dstack.x.requests), len(dstack.y.requests)
    assert nx + ny == 400
    assert 0.70 <= nx / 400 <= 0.80 and 0.20 <= ny / 400 <= 0.30, (nx, ny)
    # Each account received its own key only.
    assert seen_keys(dstack.x) == {f"Bearer {key_x}"} and seen_keys(dstack.y) == {f"Bearer {key_y}"}
    status = statuses(dstack)
    assert status[name_x]["status"]["requests"] == nx and status[name_y]["status"]["requests"] == ny
    assert status[name_x]["status"]["health"] == "HEALTHY"
    assert status[name_x]["status"]["inFlight"] == 0


async def test_one_account_429_moves_its_share_without_errors(dstack: DepStack) -> None:
    name_x, _, name_y, _ = fresh_pair(dstack, 3, 1)
    dstack.x.replies.extend(
        Reply(status=429, error_message="Rate limit reached for gpt-4o-mini") for _ in range(2000)
    )
    started = asyncio.get_running_loop().time()
    answers = await send(dstack.gateway, dstack.seeded.user_key, 200, concurrency=16)
    elapsed = asyncio.get_running_loop().time() - started
    assert answers == ["ok"] * 200  # max_retries=0: the client saw no 429
    # x answered 429 only to what reached it before its first 429 came back (at most the 16
    # in flight), then once per 5 s cooldown (no Retry-After); y answered every request.
    assert len(dstack.y.requests) == 200
    assert 1 <= len(dstack.x.requests) <= 16 * (1 + int(elapsed / 5) + 1), (
        len(dstack.x.requests),
        elapsed,
    )
    status = statuses(dstack)
    sx = status[name_x]["status"]
    assert sx["health"] == "RATE_LIMITED" and sx["rateLimited"] == len(dstack.x.requests)
    assert sx["cooldownSeconds"] > 0 and "Rate limit reached" in sx["lastError"]
    assert status[name_y]["status"]["successes"] == 200


LOG_ROWS = """
query($r: String!) {
  gatewayLogs(filter: {requestId: $r, includeSuperseded: true}, first: 10) {
    nodes { provider deployment status superseded attempts errorMessage actualModel }
  }
}"""


async def log_rows(stack: DepStack, request_id: str, count: int) -> list[dict[str, Any]]:
    """The request's rows (its own and its attempts), once the log writer wrote ``count``."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        rows = ok(stack, LOG_ROWS, r=request_id)["gatewayLogs"]["nodes"]
        if len(rows) >= count:
            return sorted(rows, key=lambda r: (not r["superseded"], r["status"]))
        assert asyncio.get_running_loop().time() < deadline, rows
        await asyncio.sleep(0.1)


async def test_the_log_names_the_deployment_and_each_failed_try(dstack: DepStack) -> None:
    name_x, _, name_y, _ = fresh_pair(dstack, 3, 1)
    client = openai.AsyncOpenAI(
        base_url=dstack.gateway.openai_base_url, api_key=dstack.seeded.user_key, max_retries=0
    )
    try:
        # x (weight 3, picked first) answers 429, y answers: one answer, two rows.
        dstack.x.replies.append(Reply(status=429, error_message="Rate limit reached"))
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.parse().choices[0].message.content == "ok"
        tried, answered = await log_rows(dstack, raw.headers["x-request-id"], 2)
        assert (tried["deployment"], tried["status"], tried["superseded"]) == (name_x, 429, True)
        assert tried["provider"] == "openai" and "Rate limit reached" in tried["errorMessage"]
        assert (answered["deployment"], answered["status"], answered["superseded"]) == (
            name_y,
            200,
            False,
        )
        assert answered["attempts"] == 2
        # Streamed, x cooling down: y answers at once, one row naming it.
        chunks = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(
            [c.choices[0].delta.content or "" async for c in chunks.parse() if c.choices]
        )
        assert text == "ok"
        [row] = await log_rows(dstack, chunks.headers["x-request-id"], 1)
        assert (row["deployment"], row["attempts"]) == (name_y, 1)
        # Every try fails (the router retries the model too): one row per upstream call, each
        # naming its deployment; the request's own row is the last failure's.
        name_x, _, name_y, _ = fresh_pair(dstack, 3, 1)
        for fake in (dstack.x, dstack.y):
            fake.replies.extend(Reply(status=503, error_message="overloaded") for _ in range(20))
        with pytest.raises(openai.InternalServerError) as failed:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}]
            )
        calls = len(dstack.x.requests) + len(dstack.y.requests)
        assert calls >= 2 and dstack.x.requests and dstack.y.requests
        rows = await log_rows(dstack, failed.value.response.headers["x-request-id"], calls)
        assert len(rows) == calls
        by_deployment = [r["deployment"] for r in rows]
        assert by_deployment.count(name_x) == len(dstack.x.requests)
        assert by_deployment.count(name_y) == len(dstack.y.requests)
        [own] = [r for r in rows if not r["superseded"]]
        assert own["status"] == failed.value.status_code and own["attempts"] == calls
        # Embeddings go through the pool too.
        fresh_pair(dstack, 3, 1)
        dstack.x.replies.append(Reply(status=429, error_message="Rate limit reached"))
        emb = await client.embeddings.with_raw_response.create(
            model="openai/text-embedding-3-small", input="hello"
        )
        assert emb.parse().data
        rows = await log_rows(dstack, emb.headers["x-request-id"], 2)
        assert [(r["status"], r["superseded"]) for r in rows] == [(429, True), (200, False)]
        assert rows[0]["deployment"].startswith("acct-x") and rows[1]["deployment"].startswith(
            "acct-y"
        )
    finally:
        await client.close()


async def test_stream_moves_before_its_first_byte(dstack: DepStack) -> None:
    # y is a standby (weight 0): every stream goes to x first.
    fresh_pair(dstack, 1, 0)
    dstack.x.replies.append(Reply(status=503, error_message="overloaded"))
    dstack.y.replies.append(Reply(text="answered by y"))
    assert await send(dstack.gateway, dstack.seeded.user_key, 1, stream=True) == ["answered by y"]
    assert len(dstack.x.requests) == 1 and len(dstack.y.requests) == 1
    # x is down now: skipped while another deployment can serve.
    answers = await send(dstack.gateway, dstack.seeded.user_key, 5, stream=True)
    assert answers == ["ok"] * 5 and len(dstack.x.requests) == 1


async def test_a_deployments_own_rpm_limit_holds(dstack: DepStack) -> None:
    name_x, _, name_y, _ = fresh_pair(dstack, 3, 1, rpmLimit=10)
    answers = await send(dstack.gateway, dstack.seeded.user_key, 60)
    assert answers == ["ok"] * 60
    assert len(dstack.x.requests) == 10 and len(dstack.y.requests) == 50
    sx = statuses(dstack)[name_x]["status"]
    # Its window full, its headroom weight is 0: it is no longer picked, so not even refused.
    assert sx["requestsLastMinute"] == 10 and sx["health"] == "HEALTHY"
    # Without a limit, counted by this instance only (never a Redis call).
    assert statuses(dstack)[name_y]["status"]["requestsLastMinute"] == 50


async def test_every_deployment_full_is_a_429_with_retry_after(dstack: DepStack) -> None:
    fresh_pair(dstack, 1, 0)
    for d in ok(dstack, LIST, p="openai")["providerDeployments"]:
        deploy(dstack, d["name"], rpmLimit=2)
    assert await send(dstack.gateway, dstack.seeded.user_key, 4, concurrency=1) == ["ok"] * 4
    client = openai.OpenAI(
        base_url=dstack.gateway.openai_base_url, api_key=dstack.seeded.user_key, max_retries=0
    )
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert "at its own rate limit" in str(refused.value)
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 61
    for d in statuses(dstack).values():
        assert d["status"]["limitRefusals"] >= 1 and d["status"]["requestsLastMinute"] == 2


async def test_graphql_validation_and_access(dstack: DepStack) -> None:
    refused = gql(dstack, LIST, dstack.member_token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refused = gql(dstack, SET, dstack.member_token, p="openai", n="m", i={"weight": 1})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = gql(dstack, SET, dstack.token, p="openai", n="w", i={"weight": -1})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "weight must be an integer from 0 to 1000" in bad["errors"][0]["message"]
    bad = gql(dstack, SET, dstack.token, p="nosuch", n="w", i={"weight": 1})
    assert bad["errors"][0]["extensions"]["code"] == "FAILED_PRECONDITION"
    bad = gql(dstack, SET, dstack.token, p="openai", n="Bad Name", i={})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad = gql(dstack, SET, dstack.token, p="openai", n="w", i={"apiKey": "short"})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    gone = gql(dstack, DELETE, dstack.token, p="openai", n="never-made")
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_broken_deployment_is_shown_and_its_sibling_serves(dstack: DepStack) -> None:
    name_x, key_x, name_y, _ = fresh_pair(dstack, 1, 1)
    # x's ciphertext copied onto y's row: bound to another name, it must not decrypt.
    async with orm(dstack.db):
        rows = {r.name: r for r in await ProviderDeployment.filter(provider="openai")}
        secret = derive_key(dstack.env["SWITCHBOARD_SECRET_KEY"])
        aad = f"deployment:openai/{name_x}"
        assert decrypt_secret(secret, rows[name_x].api_key_ciphertext or "", aad) == key_x
        assert key_x not in (rows[name_x].api_key_ciphertext or "")
        await ProviderDeployment.filter(id=rows[name_y].id).update(
            api_key_ciphertext=rows[name_x].api_key_ciphertext
        )
    deploy(dstack, name_x, weight=1)  # any change reloads the credentials domain
    status = statuses(dstack)
    assert status[name_y]["status"]["health"] == "BROKEN"
    assert "failed authentication" in status[name_y]["status"]["problem"]
    assert await send(dstack.gateway, dstack.seeded.user_key, 6) == ["ok"] * 6
    assert len(dstack.x.requests) == 6 and not dstack.y.requests


@pytest.mark.skipif(not ON_PG_REDIS, reason="two instances need PostgreSQL + Redis (CI's 2nd pass)")
async def test_two_instances_hot_reload_and_share_the_rpm_window(dstack: DepStack) -> None:
    second = GatewayProc(dict(dstack.env), dstack.tmp / "gateway-2.log")
    await asyncio.to_thread(second.start, START_TIMEOUT_S)
    try:
        name_x, _, name_y, key_y = fresh_pair(dstack, 1, 1)
        # Made on instance one: instance two serves with it at once (the mutation returned
        # after one's reload; two reloads on the event).
        new_key = key_for("x-rotated")
        deploy(dstack, name_x, apiKey=new_key, weight=1)
        deadline = asyncio.get_running_loop().time() + 20
        while f"Bearer {new_key}" not in seen_keys(dstack.x):
            assert asyncio.get_running_loop().time() < deadline, "instance two never reloaded"
            await send(second, dstack.seeded.user_key, 2, concurrency=1)
        # Disabled on one: two stops sending to it.
        deploy(dstack, name_y, enabled=False)
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            dstack.reset()
            await send(second, dstack.seeded.user_key, 4, concurrency=1)
            if not dstack.y.requests:
                break
            assert asyncio.get_running_loop().time() < deadline, "instance two kept using y"
        # One window for both instances: x takes 8 requests in all, y the rest. y is enabled
        # last: once two serves y again, its reload (of every row) has x's limit too.
        deploy(dstack, name_x, rpmLimit=8, weight=3)
        deploy(dstack, name_y, enabled=True)
        deadline = asyncio.get_running_loop().time() + 20
        while statuses(dstack, second)[name_y]["status"]["health"] == "DISABLED":
            assert asyncio.get_running_loop().time() < deadline, "instance two never reloaded"
            await asyncio.sleep(0.1)
        dstack.reset()
        answers = await asyncio.gather(
            send(dstack.gateway, dstack.seeded.user_key, 20),
            send(second, dstack.seeded.user_key, 20),
        )
        assert answers == [["ok"] * 20, ["ok"] * 20]
        assert len(dstack.x.requests) == 8 and len(dstack.y.requests) == 32
        assert seen_keys(dstack.y) == {f"Bearer {key_y}"}
        assert statuses(dstack, second)[name_x]["status"]["requestsLastMinute"] == 8
        # Load and health read the same on either instance: each one's counts, summed.
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            one_y = statuses(dstack)[name_y]["status"]
            two_y = statuses(dstack, second)[name_y]["status"]
            if one_y == two_y and one_y["instances"] == 2:
                break
            assert asyncio.get_running_loop().time() < deadline, (one_y, two_y)
            await asyncio.sleep(0.2)
        assert one_y["requests"] >= 32 and one_y["successes"] == one_y["requests"]
    finally:
        await asyncio.to_thread(second.stop)


async def test_no_key_in_answers_or_logs(dstack: DepStack) -> None:
    assert dstack.secrets
    logs = dstack.gateway.log_text()
    second = dstack.tmp / "gateway-2.log"
    if second.exists():
        logs += second.read_text(errors="replace")
    for secret in dstack.secrets:
        assert not any(secret in answer for answer in dstack.transcript)
        assert secret not in logs
    assert any(secret[-4:] in answer for secret in dstack.secrets for answer in dstack.transcript)
