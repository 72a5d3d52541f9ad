"""Requests- and tokens-per-minute limits through the real gateway with the official SDKs (issue
18 item 2, must-show 2): concurrent requests on one instance (SQLite: in-process windows; with
REDIS_URL: the Redis script) and on two instances sharing PostgreSQL and Redis.

The numbers are exact by construction: every request says ``max_tokens=99`` and its input is
"hi" (the gateway's estimate: 1 token), so each reserves 100 tokens; the fake answers with
usage 1 + 99 = 100 tokens (or 1 + 9 = 10 when settlement is under test). A limit of 1000 tokens
per minute therefore admits exactly 10 concurrent requests, whatever the interleaving. The must-
show bound, "real tokens admitted in any 60 s window <= limit + one request's worth", is checked
on the log rows' token counts.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest

from backend.data.models.keys import ApiKey
from backend.data.models.logs import RequestLog
from backend.data.models.tenancy import Organization, User
from backend.security.api_keys import generate_key
from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, fake_upstreams, orm, prepare_database
from tests.fakes.base import Reply
from tests.fakes.openai_fake import OpenAIFake

MODEL = "openai/gpt-4o-mini"
MAX_TOKENS = 99
PER_REQUEST = 100  # reserved: 1 estimated input token + 99
TPM = 1000
#: Longest wait for a condition (the machine is shared and may be short of CPU).
WAIT_S = 30.0


@dataclass
class World:
    gateway: GatewayProc
    env: dict[str, str]
    db: str
    openai: OpenAIFake
    tmp: Any
    keys: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)


async def _key(world: World, name: str, user: User, **limits: Any) -> None:
    secret, prefix, digest = generate_key()
    await ApiKey.create(prefix=prefix, key_hash=digest, name=name, user=user, **limits)
    world.keys[name] = secret
    world.prefixes[name] = prefix


async def seed(world: World) -> None:
    org = await Organization.create(name="Free", slug=f"free-{os.urandom(3).hex()}")
    limited = await Organization.create(
        name="Limited", slug=f"limited-{os.urandom(3).hex()}", rate_limit_rpm=3
    )
    user = await User.create(name="U", email=f"u-{os.urandom(3).hex()}@rl.test", organization=org)
    for name in ("tpm", "tpm_settle", "tpm_shared"):
        await _key(world, name, user, rate_limit_tpm=TPM)
    await _key(world, "rpm", user, rate_limit_rpm=5)
    await _key(world, "rpm_shared", user, rate_limit_rpm=8)
    await _key(world, "errors", user, rate_limit_rpm=100, rate_limit_tpm=100_000)
    for i in range(2):  # two users' keys, one organization limit of 3 rpm
        member = await User.create(
            name=f"M{i}", email=f"m{i}-{os.urandom(3).hex()}@rl.test", organization=limited
        )
        await _key(world, f"org{i}", member)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("ratelimits")
    db = await create_database(tmp)
    await prepare_database(db)
    with fake_upstreams() as fakes:
        gw: GatewayProc | None = None
        try:
            env = gateway_env(db, tmp, fakes) | {"SWITCHBOARD_BUDGET_TIMEOUT": "10"}
            gw = GatewayProc(env, tmp / "gateway.log")
            made = World(gw, env, db, fakes["openai"], tmp)
            async with orm(db):
                await seed(made)
            gw.start()
            yield made
        finally:
            if gw is not None:
                gw.stop()
            await drop_database(db)


# -- calls --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    status: int
    headers: dict[str, str]
    code: str | None = None
    message: str = ""


def _failed(err: openai.APIStatusError | anthropic.APIStatusError) -> Outcome:
    body = err.body if isinstance(err.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    code = inner.get("code") or inner.get("type") if isinstance(inner, dict) else None
    message = str(inner.get("message", "")) if isinstance(inner, dict) else ""
    return Outcome(False, err.status_code, dict(err.response.headers), code, message)


async def call_openai(gw: GatewayProc, key: str, stream: bool) -> Outcome:
    client = openai.AsyncOpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0, timeout=60)
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=MAX_TOKENS,
            stream=stream,
        )  # fmt: skip
        parsed: Any = raw.parse()  # the openai SDK's raw parse() is sync
        if stream:
            async for _ in parsed:
                pass
        return Outcome(True, raw.status_code, dict(raw.headers))
    except openai.APIStatusError as err:
        return _failed(err)
    finally:
        await client.close()


async def call_anthropic(gw: GatewayProc, key: str, stream: bool) -> Outcome:
    client = anthropic.AsyncAnthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=60)
    try:
        raw = await client.messages.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=MAX_TOKENS,
            stream=stream,
        )  # fmt: skip
        parsed: Any = await raw.parse()
        if stream:
            async for _ in parsed:
                pass
        return Outcome(True, raw.http_response.status_code, dict(raw.headers))
    except anthropic.APIStatusError as err:
        return _failed(err)
    finally:
        await client.close()


async def burst(
    gateways: list[GatewayProc], key: str, n: int, *, streams: bool = True
) -> list[Outcome]:
    """``n`` concurrent requests, alternating SDKs (and gateways), half of them streamed."""
    calls = []
    for i in range(n):
        gw = gateways[i % len(gateways)]
        stream = streams and i % 4 >= 2
        sdk = call_openai if (i // len(gateways)) % 2 == 0 else call_anthropic
        calls.append(sdk(gw, key, stream))
    return list(await asyncio.gather(*calls))


def queue(world: World, n: int, *, output: int = MAX_TOKENS, delay: float = 0.3) -> None:
    world.openai.reset()
    for i in range(n):
        world.openai.replies.append(
            Reply(text=f"answer {i}", input_tokens=1, output_tokens=output, delay=delay)
        )


def upstream_calls(world: World) -> int:
    return sum(1 for r in world.openai.requests if r.path.endswith("/chat/completions"))


def assert_refused(o: Outcome, metric: str, limit: int) -> None:
    assert o.status == 429, o
    assert o.code in ("rate_limit_exceeded", "rate_limit_error"), o
    assert 1 <= int(o.headers["retry-after"]) <= 61, o.headers
    assert o.headers[f"x-ratelimit-limit-{metric}"] == str(limit)
    assert o.headers[f"x-ratelimit-remaining-{metric}"] == "0"
    assert o.headers[f"x-ratelimit-reset-{metric}"].endswith("s")
    assert f"{limit} {metric} per minute" in o.message, o.message


async def key_rows(world: World, prefix: str, n: int) -> list[RequestLog]:
    deadline = time.monotonic() + WAIT_S
    rows: list[RequestLog] = []
    while time.monotonic() < deadline:
        async with orm(world.db):
            rows = await RequestLog.filter(key_prefix=prefix, superseded=False).order_by("id")
        if len(rows) >= n:
            return rows
        await asyncio.sleep(0.1)
    return rows


def max_tokens_in_any_window(rows: list[RequestLog], span_s: float = 60.0) -> int:
    """The most real tokens (input + output) of answered requests within any ``span_s``."""
    answered = sorted(
        (r.created_at.timestamp(), r.input_tokens + r.output_tokens)
        for r in rows
        if r.status == 200
    )
    return max(
        (sum(n for t, n in answered if start <= t <= start + span_s) for start, _ in answered),
        default=0,
    )


# -- one instance -----------------------------------------------------------------------------


async def test_tokens_per_minute_under_concurrency(world: World) -> None:
    """30 concurrent requests (both SDKs, half streamed) of 100 tokens against 1000 tokens per
    minute: exactly 10 reach the provider; each answer, streamed or not, carries the limit and
    what remains (900 down to 0, one value each); the 20 refusals carry Retry-After."""
    queue(world, 30)
    outcomes = await burst([world.gateway], world.keys["tpm"], 30)
    ok = [o for o in outcomes if o.ok]
    refused = [o for o in outcomes if not o.ok]
    assert len(ok) == 10 and len(refused) == 20, [o.message for o in refused[:2]]
    assert upstream_calls(world) == 10
    assert sorted(int(o.headers["x-ratelimit-remaining-tokens"]) for o in ok) == list(
        range(0, TPM, PER_REQUEST)
    )
    for o in ok:
        assert o.headers["x-ratelimit-limit-tokens"] == str(TPM)
        assert o.headers["x-ratelimit-reset-tokens"].endswith("s")
        assert "x-ratelimit-limit-requests" not in o.headers  # this key has no rpm limit
    for o in refused:
        assert_refused(o, "tokens", TPM)
    rows = await key_rows(world, world.prefixes["tpm"], 30)
    assert sorted(r.status for r in rows) == [200] * 10 + [429] * 20
    admitted = max_tokens_in_any_window(rows)
    assert admitted <= TPM + PER_REQUEST, admitted
    print(f"tpm, one instance: {admitted} real tokens admitted in the window (limit {TPM})")


async def test_token_reservations_settle_to_real_usage(world: World) -> None:
    """Answers that use 10 tokens of the 100 reserved give the rest back: after 10 such
    requests 900 tokens remain, so 9 more of 100 fit, not 0."""
    queue(world, 60, output=9)
    first = await burst([world.gateway], world.keys["tpm_settle"], 30, streams=False)
    assert sum(o.ok for o in first) == 10
    second = await burst([world.gateway], world.keys["tpm_settle"], 30)
    ok = [o for o in second if o.ok]
    assert len(ok) == 9, [o.message for o in second if not o.ok][:2]
    assert sorted(int(o.headers["x-ratelimit-remaining-tokens"]) for o in ok) == list(
        range(0, 900, PER_REQUEST)
    )


async def test_requests_per_minute_under_concurrency(world: World) -> None:
    """20 concurrent requests against 5 per minute: exactly 5 pass, every answer says so."""
    queue(world, 20, delay=0.0)
    outcomes = await burst([world.gateway], world.keys["rpm"], 20)
    ok = [o for o in outcomes if o.ok]
    assert len(ok) == 5 and upstream_calls(world) == 5
    assert sorted(int(o.headers["x-ratelimit-remaining-requests"]) for o in ok) == [0, 1, 2, 3, 4]
    assert all(o.headers["x-ratelimit-limit-requests"] == "5" for o in ok)
    for o in outcomes:
        if not o.ok:
            assert_refused(o, "requests", 5)
            assert world.prefixes["rpm"] in o.message


async def test_an_organization_limit_counts_all_its_keys(world: World) -> None:
    queue(world, 10, delay=0.0)
    calls = [
        (call_openai if i % 2 else call_anthropic)(world.gateway, world.keys[f"org{i % 2}"], False)
        for i in range(10)
    ]
    outcomes = await asyncio.gather(*calls)
    assert sum(o.ok for o in outcomes) == 3
    refusal = next(o for o in outcomes if not o.ok)
    assert "organization Limited: 3 requests per minute" in refusal.message


async def test_headers_on_an_error_answer(world: World) -> None:
    """An admitted request the provider fails carries the rate-limit headers on its error."""
    world.openai.reset()
    world.openai.replies.extend([Reply(status=500), Reply(status=500)])  # the gateway retries once
    o = await call_openai(world.gateway, world.keys["errors"], False)
    assert not o.ok and o.status >= 500, o
    assert o.headers["x-ratelimit-limit-requests"] == "100"
    assert o.headers["x-ratelimit-remaining-requests"] == "99"
    assert o.headers["x-ratelimit-limit-tokens"] == "100000"
    world.openai.replies.extend([Reply(status=500), Reply(status=500)])
    a = await call_anthropic(world.gateway, world.keys["errors"], True)
    assert not a.ok and a.headers["x-ratelimit-remaining-requests"] == "98"


# -- two instances ------------------------------------------------------------------------------


def _shared_setup() -> str | None:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return "needs DATABASE_URL=postgres://... (two processes share one PostgreSQL database)"
    if not redis_url():
        return "needs REDIS_URL (two processes share the limits through Redis)"
    return None


@pytest.mark.skipif(_shared_setup() is not None, reason=str(_shared_setup()))
async def test_two_instances_share_the_limits(world: World) -> None:
    """Two gateway processes on one PostgreSQL and one Redis prefix: 40 concurrent requests
    spread over both against 1000 tokens per minute admit exactly 10 in total (not 10 each),
    and against 8 requests per minute exactly 8."""
    second = GatewayProc(dict(world.env), world.tmp / f"gateway2-{uuid.uuid4().hex[:6]}.log")
    await asyncio.to_thread(second.start, 120.0)
    try:
        gateways = [world.gateway, second]
        queue(world, 40)
        outcomes = await burst(gateways, world.keys["tpm_shared"], 40)
        ok = [o for o in outcomes if o.ok]
        assert len(ok) == 10 and upstream_calls(world) == 10
        assert sorted(int(o.headers["x-ratelimit-remaining-tokens"]) for o in ok) == list(
            range(0, TPM, PER_REQUEST)
        )
        for o in outcomes:
            if not o.ok:
                assert_refused(o, "tokens", TPM)
        rows = await key_rows(world, world.prefixes["tpm_shared"], 40)
        admitted = max_tokens_in_any_window(rows)
        assert admitted <= TPM + PER_REQUEST, admitted
        print(f"tpm, two instances: {admitted} real tokens admitted in the window (limit {TPM})")

        queue(world, 40, delay=0.0)
        outcomes = await burst(gateways, world.keys["rpm_shared"], 40)
        assert sum(o.ok for o in outcomes) == 8 and upstream_calls(world) == 8
    finally:
        await asyncio.to_thread(second.stop)
