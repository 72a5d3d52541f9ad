"""Bad input and upstream failures: the right status, an error body in the caller's protocol, a
log row, and a gateway that keeps serving afterwards."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anthropic
import httpx
import openai
import pytest

from backend.data.models.keys import ApiKey
from backend.security.api_keys import generate_key
from tests.e2e.conftest import Stack
from tests.e2e.harness import orm, wait_for_rows
from tests.fakes.base import Reply

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


@pytest.fixture(scope="module")
def gateway_overrides() -> dict[str, str]:
    return {"SWITCHBOARD_UPSTREAM_TIMEOUT": "1", "SWITCHBOARD_MAX_BODY_BYTES": "100000"}


def post(stack: Stack, path: str, body: bytes | dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    if path == ANTHROPIC_PATH:
        headers["anthropic-version"] = "2023-06-01"
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    return httpx.post(stack.gateway.url + path, headers=headers, timeout=30, **kwargs)


def assert_protocol_error(
    resp: httpx.Response, path: str, status: int, etype: str | None = None
) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    if path == OPENAI_PATH:
        assert set(body) == {"error"}
        err = body["error"]
        assert isinstance(err["message"], str) and err["message"]
        if etype:
            assert err["type"] == etype
    else:
        assert body["type"] == "error"
        err = body["error"]
        assert isinstance(err["message"], str) and err["message"]
        if etype:
            assert err["type"] == etype
    return str(err["message"])


def ok_request(path: str, model: str = "openai/gpt-4o-mini") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if path == ANTHROPIC_PATH:
        body["max_tokens"] = 50
    return body


def still_serving(stack: Stack, path: str) -> None:
    stack.openai.replies.append(Reply(text="fine"))
    resp = post(stack, path, ok_request(path), stack.seeded.user_key)
    assert resp.status_code == 200, resp.text


PATHS = [OPENAI_PATH, ANTHROPIC_PATH]


@pytest.mark.parametrize("path", PATHS)
async def test_malformed_json(stack: Stack, path: str) -> None:
    resp = post(
        stack, path, b'{"model": "openai/gpt-4o-mini", "messages": [', stack.seeded.user_key
    )
    msg = assert_protocol_error(resp, path, 400, "invalid_request_error")
    assert "JSON" in msg
    rows = await wait_for_rows(stack.database_url, 1, request_id=resp.headers["x-request-id"])
    assert rows[-1].status == 400 and rows[-1].error_type == "invalid_request"
    still_serving(stack, path)


@pytest.mark.parametrize("path", PATHS)
async def test_missing_and_unknown_model(stack: Stack, path: str) -> None:
    body = ok_request(path)
    del body["model"]
    assert "model" in assert_protocol_error(
        post(stack, path, body, stack.seeded.user_key), path, 400
    )
    resp = post(stack, path, ok_request(path, model="no-such-model-xyz"), stack.seeded.user_key)
    msg = assert_protocol_error(resp, path, 404, "not_found_error")
    assert "no-such-model-xyz" in msg
    rows = await wait_for_rows(stack.database_url, 1, requested_model="no-such-model-xyz")
    assert rows[-1].status == 404
    still_serving(stack, path)


@pytest.mark.parametrize("path", PATHS)
async def test_very_long_unknown_model_is_refused_and_logged(stack: Stack, path: str) -> None:
    model = "m" * 5000
    resp = post(stack, path, ok_request(path, model=model), stack.seeded.user_key)
    assert_protocol_error(resp, path, 404, "not_found_error")
    rows = await wait_for_rows(stack.database_url, 1, request_id=resp.headers["x-request-id"])
    # The column holds 200 characters: the row is written with the name clipped, not dropped.
    assert rows[-1].status == 404 and rows[-1].requested_model.startswith("m" * 150)
    still_serving(stack, path)


@pytest.mark.parametrize("path", PATHS)
async def test_deeply_nested_body_is_a_clear_400(stack: Stack, path: str) -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = {"a": [deep]}
    body = ok_request(path)
    if path == OPENAI_PATH:
        body["messages"].append(
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            }
        )
        body["messages"].append({"role": "tool", "tool_call_id": "c1", "content": "ok"})
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": deep},
        }
    else:
        body["messages"] = [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "A", "input": deep}],
            },
            {"role": "user", "content": "hi"},
        ]
    resp = post(stack, path, body, stack.seeded.user_key)
    msg = assert_protocol_error(resp, path, 400, "invalid_request_error")
    assert "deeper than" in msg
    rows = await wait_for_rows(stack.database_url, 1, request_id=resp.headers["x-request-id"])
    assert rows[-1].status == 400
    still_serving(stack, path)


@pytest.mark.parametrize("path", PATHS)
async def test_missing_invalid_revoked_expired_key(stack: Stack, path: str) -> None:
    assert_protocol_error(
        post(stack, path, ok_request(path), None), path, 401, "authentication_error"
    )
    assert_protocol_error(
        post(stack, path, ok_request(path), "sb-nope-123"), path, 401, "authentication_error"
    )
    revoked, prefix, digest = generate_key()
    expired, prefix2, digest2 = generate_key()
    now = dt.datetime.now(dt.UTC)
    async with orm(stack.database_url):
        await ApiKey.create(
            prefix=prefix, key_hash=digest, user_id=stack.seeded.user_id, revoked_at=now
        )
        await ApiKey.create(
            prefix=prefix2,
            key_hash=digest2,
            user_id=stack.seeded.user_id,
            expires_at=now - dt.timedelta(minutes=1),
        )
    import asyncio

    await asyncio.sleep(1.1)  # past the throttle of the on-demand key reload
    msg = assert_protocol_error(post(stack, path, ok_request(path), revoked), path, 401)
    assert "revoked" in msg and prefix in msg
    await asyncio.sleep(1.1)
    msg = assert_protocol_error(post(stack, path, ok_request(path), expired), path, 401)
    assert "expired" in msg
    for secret in (revoked, expired):
        assert secret not in msg
    for p in (prefix, prefix2):
        rows = await wait_for_rows(stack.database_url, 1, key_prefix=p)
        assert rows and all(r.status == 401 for r in rows)
    still_serving(stack, path)


@pytest.mark.parametrize("path", PATHS)
async def test_body_over_limit(stack: Stack, path: str) -> None:
    body = ok_request(path)
    body["messages"][0]["content"] = "x" * 200_000
    resp = post(stack, path, body, stack.seeded.user_key)
    assert_protocol_error(resp, path, 413)
    still_serving(stack, path)


@pytest.mark.parametrize("path", PATHS)
async def test_upstream_5xx(stack: Stack, path: str) -> None:
    stack.reset()
    # One retry on the same model, then the error goes back (no fallback chain configured).
    stack.openai.replies.extend([Reply(status=500), Reply(status=500)])
    resp = post(stack, path, ok_request(path), stack.seeded.user_key)
    assert_protocol_error(resp, path, 502)
    assert len(stack.openai.requests) == 2
    rid = resp.headers["x-request-id"]
    rows = await wait_for_rows(stack.database_url, 1, request_id=rid, superseded=False)
    assert rows[0].status == 502 and rows[0].error_type == "upstream"
    still_serving(stack, path)


@pytest.mark.parametrize("path", PATHS)
async def test_upstream_timeout(stack: Stack, path: str) -> None:
    stack.reset()
    stack.openai.replies.extend([Reply(delay=3), Reply(delay=3)])
    resp = post(stack, path, ok_request(path), stack.seeded.user_key)
    assert_protocol_error(resp, path, 504)
    rows = await wait_for_rows(
        stack.database_url, 1, request_id=resp.headers["x-request-id"], superseded=False
    )
    assert rows[0].status == 504 and rows[0].error_type == "timeout"
    still_serving(stack, path)


async def test_dropped_stream_openai_sdk(stack: Stack) -> None:
    stack.reset()
    stack.openai.replies.append(
        Reply(text="a long answer that will be cut", chunks=10, drop_after=3)
    )
    client = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )
    got = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            got += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert got and "a long answer".startswith(got[:5])
    assert "upstream" in str(info.value).lower() or "truncated" in str(info.value).lower()
    rows = await wait_for_rows(stack.database_url, 1, status__in=(502, 503), streamed=True)
    assert rows and rows[-1].error_type in ("upstream", "unavailable")
    still_serving(stack, OPENAI_PATH)


async def test_dropped_stream_anthropic_sdk(stack: Stack) -> None:
    stack.reset()
    stack.openai.replies.append(
        Reply(text="a long answer that will be cut", chunks=10, drop_after=3)
    )
    client = anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        with client.messages.stream(
            model="openai/gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            for _ in s.text_stream:
                pass
    assert "upstream" in str(info.value).lower() or "truncated" in str(info.value).lower()
    still_serving(stack, ANTHROPIC_PATH)
