"""Injected faults, upstream side: an OpenAI upstream (``ChaosUpstream``) that hangs, resets the
connection, truncates or garbles its SSE stream, answers 200 with a body that is not a
completion; and a client that disconnects mid-stream.

Each fault must end in bounded time with a clean answer in the caller's protocol (an error body
before the first byte, an error event after it), the right log row, and a gateway that serves the
next request. A 5xx appears here only because the upstream was told to fail.

The database and Redis outages are in ``test_faults_stores.py``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import User
from backend.security.api_keys import generate_key
from tests.e2e.chaos import ChaosUpstream
from tests.e2e.conftest import Stack
from tests.e2e.harness import orm, wait_for_rows
from tests.fuzz.checks import anthropic_error, log_alarms, openai_error, sse_events

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
PATHS = [OPENAI_PATH, ANTHROPIC_PATH]
#: The gateway's upstream (read) timeout in this module.
TIMEOUT_S = 2.0
#: Upper bound for any fault to be answered: two timed-out attempts plus a loaded machine.
BOUND_S = 20.0


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosUpstream]:
    upstream = ChaosUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def gateway_overrides(chaos: ChaosUpstream) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": chaos.sdk_base_url,
        "ANTHROPIC_BASE_URL": chaos.base_url,
        "SWITCHBOARD_UPSTREAM_TIMEOUT": str(TIMEOUT_S),
        # Every test here fails the same model on purpose; an open circuit would hide the faults.
        "SWITCHBOARD_CIRCUIT_THRESHOLD": "100000",
    }


OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"


def body_for(
    path: str, *, stream: bool, max_tokens: int = 50, model: str = OPENAI_MODEL
) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }


def headers_for(path: str, key: str) -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    if path == ANTHROPIC_PATH:
        headers["anthropic-version"] = "2023-06-01"
    return headers


def call(
    stack: Stack,
    path: str,
    *,
    stream: bool,
    key: str | None = None,
    max_tokens: int = 50,
    model: str = OPENAI_MODEL,
) -> tuple[httpx.Response, bytes, float]:
    """One request read to its end: (response, body, seconds)."""
    started = time.monotonic()
    with (
        httpx.Client(timeout=BOUND_S + 10) as client,
        client.stream(
            "POST",
            stack.gateway.url + path,
            content=orjson.dumps(body_for(path, stream=stream, max_tokens=max_tokens, model=model)),
            headers=headers_for(path, key or stack.seeded.user_key),
        ) as resp,
    ):
        raw = resp.read()
    return resp, raw, time.monotonic() - started


def assert_error_body(path: str, resp: httpx.Response, raw: bytes, status: set[int]) -> str:
    assert resp.status_code in status, (resp.status_code, raw[:300])
    assert resp.headers["content-type"].startswith("application/json")
    body = orjson.loads(raw)
    problem = openai_error(body) if path == OPENAI_PATH else anthropic_error(body)
    assert problem is None, problem
    return str(body["error"]["message"])


def assert_stream_ends_in_error(path: str, resp: httpx.Response, raw: bytes) -> str:
    """Some answer text, then one error event in the caller's protocol, and nothing after it."""
    assert resp.status_code == 200
    events = sse_events(raw)
    assert len(events) >= 2, raw
    name, data = events[-1]
    obj = orjson.loads(data)
    if path == OPENAI_PATH:
        assert all(d != b"[DONE]" for _, d in events)
        assert openai_error(obj) is None, obj
        assert b'"content":"o"' in raw  # the chunk that arrived before the fault
    else:
        assert name == "error"
        assert anthropic_error(obj) is None, obj
        assert events[0][0] == "message_start"
    return str(obj["error"]["message"])


async def until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether ``check()`` became true within ``timeout`` (the chaos thread records closes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


async def row_for(stack: Stack, resp: httpx.Response) -> Any:
    rows = await wait_for_rows(
        stack.database_url, 1, request_id=resp.headers["x-request-id"], superseded=False
    )
    assert len(rows) == 1
    return rows[0]


def still_serving(stack: Stack, chaos: ChaosUpstream, path: str) -> None:
    chaos.set("ok")
    for stream in (False, True):
        resp, raw, _ = call(stack, path, stream=stream)
        assert resp.status_code == 200, raw[:300]


# -- the upstream hangs ------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
async def test_upstream_hangs_before_answering(
    stack: Stack, chaos: ChaosUpstream, path: str
) -> None:
    for stream in (False, True):
        chaos.set("hang")
        resp, raw, took = call(stack, path, stream=stream)
        msg = assert_error_body(path, resp, raw, {504})
        assert "timed out" in msg
        assert TIMEOUT_S <= took < BOUND_S
        row = await row_for(stack, resp)
        assert (row.status, row.error_type, row.streamed) == (504, "timeout", stream)
        # The gateway gave up on the upstream request: it closed the connection itself.
        assert await until(lambda: all(c.peer_closed_at is not None for c in chaos.conns))
        assert chaos.conns
    still_serving(stack, chaos, path)


@pytest.mark.parametrize("path", PATHS)
async def test_upstream_hangs_mid_stream(stack: Stack, chaos: ChaosUpstream, path: str) -> None:
    chaos.set("hang_mid_stream")
    resp, raw, took = call(stack, path, stream=True)
    assert "timed out" in assert_stream_ends_in_error(path, resp, raw)
    assert took < BOUND_S
    row = await row_for(stack, resp)
    assert (row.status, row.error_type, row.streamed) == (504, "timeout", True)
    assert len(chaos.conns) == 1  # no retry once bytes reached the client
    assert await until(lambda: chaos.conns[0].peer_closed_at is not None)
    still_serving(stack, chaos, path)


# -- the upstream resets the connection --------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
async def test_upstream_resets_connection(stack: Stack, chaos: ChaosUpstream, path: str) -> None:
    for stream in (False, True):
        chaos.set("reset")
        resp, raw, took = call(stack, path, stream=stream)
        assert_error_body(path, resp, raw, {502, 503})
        assert took < BOUND_S
        row = await row_for(stack, resp)
        assert row.status == resp.status_code
        assert row.error_type in ("upstream", "unavailable")
    chaos.set("reset_mid_stream")
    resp, raw, _ = call(stack, path, stream=True)
    assert_stream_ends_in_error(path, resp, raw)
    row = await row_for(stack, resp)
    assert row.status in (502, 503) and row.error_type in ("upstream", "unavailable")
    still_serving(stack, chaos, path)


# -- the upstream sends a truncated or malformed stream ----------------------------------------
@pytest.mark.parametrize("path", PATHS)
async def test_truncated_stream(stack: Stack, chaos: ChaosUpstream, path: str) -> None:
    chaos.set("truncated_stream")
    resp, raw, _ = call(stack, path, stream=True)
    assert_stream_ends_in_error(path, resp, raw)
    row = await row_for(stack, resp)
    assert row.status in (502, 503) and row.error_type in ("upstream", "unavailable")
    still_serving(stack, chaos, path)


@pytest.mark.parametrize("path", PATHS)
async def test_malformed_stream(stack: Stack, chaos: ChaosUpstream, path: str) -> None:
    # Garbage as the first frame: nothing reached the client, so it gets a plain error body.
    chaos.set("malformed_stream")
    resp, raw, _ = call(stack, path, stream=True)
    assert_error_body(path, resp, raw, {502})
    assert (await row_for(stack, resp)).error_type == "upstream"
    # Garbage after good chunks: an error event ends the stream.
    chaos.set("malformed_mid_stream")
    resp, raw, _ = call(stack, path, stream=True)
    assert_stream_ends_in_error(path, resp, raw)
    row = await row_for(stack, resp)
    assert row.status == 502 and row.error_type == "upstream"
    still_serving(stack, chaos, path)


# -- the upstream answers 200 with something that is not a completion --------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", ["invalid_json", "wrong_shape"])
async def test_200_with_a_bad_body(
    stack: Stack, chaos: ChaosUpstream, path: str, mode: str
) -> None:
    for stream in (False, True):
        chaos.set(mode)
        resp, raw, _ = call(stack, path, stream=stream)
        assert_error_body(path, resp, raw, {502})
        row = await row_for(stack, resp)
        assert row.status == 502 and row.error_type == "upstream"
    still_serving(stack, chaos, path)


# -- the client disconnects mid-stream ---------------------------------------------------------
@pytest.fixture(scope="module")
async def capped_key(stack: Stack) -> str:
    """A user whose $1 weekly cap holds exactly one $0.60 reservation (max_tokens 1M)."""
    async with orm(stack.database_url):
        user = await User.create(
            name="Capped",
            email=f"capped-{os.urandom(3).hex()}@acme.test",
            organization_id=stack.seeded.org_id,
            weekly_cap_usd=Decimal("1"),
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="faults", user=user)
    await asyncio.sleep(1.1)  # past the throttle of the on-demand key reload
    return secret


def stream_then_hang_up(
    stack: Stack, chaos: ChaosUpstream, path: str, key: str, model: str, max_tokens: int
) -> tuple[str, float]:
    """Read two chunks of a slow stream, check its reservation holds, hang up: (id, when)."""
    with (
        httpx.Client(timeout=BOUND_S) as client,
        client.stream(
            "POST",
            stack.gateway.url + path,
            content=orjson.dumps(body_for(path, stream=True, max_tokens=max_tokens, model=model)),
            headers=headers_for(path, key),
        ) as resp,
    ):
        assert resp.status_code == 200
        # A live iterator: abandoning one (``break``) would already close the connection.
        pieces = resp.iter_raw()
        seen = b""
        while seen.count(b'"x"') < 2:
            seen += next(pieces)
        # While this stream holds its reservation, a second one does not fit under the cap.
        chaos.mode = "ok"
        second, raw, _ = call(
            stack, path, stream=False, key=key, max_tokens=max_tokens, model=model
        )
        assert second.status_code == 429, raw[:300]
        chaos.mode = "slow_stream"
        rid = resp.headers["x-request-id"]
    # Leaving the block closed the connection mid-stream.
    return rid, time.monotonic()


#: (upstream model, max_tokens whose worst case is about $0.60: one fits under the $1 cap).
#: Either way the stream is billed, not released: the OpenAI upstream counts no token before its
#: end, so its input is estimated from the request; the Anthropic one counts input tokens in
#: ``message_start``. The output is the text relayed so far (~4 characters per token).
UPSTREAMS = {
    "openai upstream": (OPENAI_MODEL, 1_000_000),
    "anthropic upstream": (ANTHROPIC_MODEL, 40_000),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
async def test_client_disconnects_mid_stream(
    stack: Stack, chaos: ChaosUpstream, capped_key: str, path: str, upstream: str
) -> None:
    model, big = UPSTREAMS[upstream]
    chaos.set("slow_stream")
    log_start = len(stack.gateway.log_text())
    rid, hung_up = stream_then_hang_up(stack, chaos, path, capped_key, model, big)

    conn = chaos.conns[0]
    assert await until(lambda: conn.peer_closed_at is not None, BOUND_S), (
        "the upstream request was not cancelled"
    )
    assert conn.peer_closed_at is not None
    assert conn.peer_closed_at - hung_up < 10
    assert conn.chunks_sent < chaos.slow_chunks

    rows = await wait_for_rows(stack.database_url, 1, request_id=rid)
    assert len(rows) == 1
    row = rows[0]
    assert row.status == 499 and row.streamed and row.error_type == "client_closed"
    assert row.cost_usd and row.cost_usd > 0  # settled at what was used, never free
    assert row.output_tokens >= 1  # two 'x' chunks had been relayed
    if model == ANTHROPIC_MODEL:
        assert row.input_tokens == 10  # counted by the upstream
    else:
        assert row.input_tokens > 0 and "input tokens estimated" in (row.error_message or "")
    # Either way the $0.60 hold is gone: another $0.60 request fits again.
    chaos.set("ok")
    again, raw, _ = call(stack, path, stream=False, key=capped_key, max_tokens=1_000_000)
    assert again.status_code == 200, raw[:300]
    alarms = log_alarms(stack.gateway.log_text()[log_start:])
    assert not alarms, alarms[0]


async def test_no_traceback_in_server_log(stack: Stack) -> None:
    """Every fault above was handled: nothing escaped as an unhandled exception."""
    alarms = log_alarms(stack.gateway.log_text())
    assert not alarms, alarms[0]
