"""Every answer carries ``x-request-id``; unknown routes and wrong methods answer in the caller's
protocol (issue 16 item 7): OpenAI's ``{"error"}`` by default, Anthropic's ``{"type": "error"}``
under ``/v1/messages`` or with ``anthropic-version``/``x-api-key``, GraphQL's ``{"errors"}``
under ``/graphql``."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import httpx
import openai
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.e2e.conftest import Stack

REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")


def openai_sdk(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key)


def anthropic_sdk(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.gateway.url, api_key=stack.seeded.user_key)


def request_id(headers: Any) -> str:
    rid = headers.get("x-request-id")
    assert rid is not None and REQUEST_ID.match(rid), dict(headers)
    return str(rid)


async def test_every_kind_of_answer_has_a_request_id(stack: Stack) -> None:
    base = stack.gateway.url
    auth = {"authorization": f"Bearer {stack.seeded.user_key}"}
    ids: list[str] = []

    raw = openai_sdk(stack).models.with_raw_response.list()
    assert raw.parse().data
    ids.append(request_id(raw.headers))
    araw = anthropic_sdk(stack).models.with_raw_response.list()
    assert araw.parse().data
    ids.append(request_id(araw.headers))

    answers = [
        httpx.get(f"{base}/healthz"),
        httpx.get(f"{base}/v1/models"),  # 401, no key
        httpx.post(f"{base}/v1/error-reports", headers=auth, json={"type": "t", "error": "e"}),
        httpx.post(f"{base}/v1/error-reports", headers=auth, json={"type": 1}),  # 400
        httpx.post(f"{base}/graphql", json={"query": "{ __typename }"}),
        httpx.post(f"{base}/graphql", json={"query": "{ nope }"}),
        httpx.get(f"{base}/graphql", headers={"accept": "text/html"}),
        httpx.get(f"{base}/v1/nope"),
        httpx.get(f"{base}/nope"),
        httpx.get(f"{base}/v1/chat/completions"),
        httpx.put(f"{base}/graphql"),
        httpx.head(f"{base}/healthz"),
    ]
    statuses = [r.status_code for r in answers]
    assert statuses == [200, 401, 202, 400, 200, 200, 200, 404, 404, 405, 405, 200], statuses
    ids += [request_id(r.headers) for r in answers]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("method", "path"), [("post", "/completions"), ("get", "/nope"), ("post", "/chat")]
)
async def test_unknown_route_raises_not_found_in_the_openai_sdk(
    stack: Stack, method: str, path: str
) -> None:
    client = openai_sdk(stack)
    call = client.post if method == "post" else client.get
    kwargs: dict[str, Any] = {"body": {"model": "openai/gpt-4o-mini"}} if method == "post" else {}
    with pytest.raises(openai.NotFoundError) as info:
        call(path, cast_to=object, **kwargs)
    err = info.value
    full = f"/v1{path}"
    body: Any = err.body  # the SDK hands over the inner error object
    assert (body["type"], body["code"], body["param"]) == ("not_found_error", "unknown_route", None)
    message = body["message"]
    assert message.startswith(f"Unknown route: {method.upper()} {full}. This gateway serves ")
    assert "POST /v1/chat/completions" in message and "GET /v1/models" in message
    request_id(err.response.headers)


@pytest.mark.parametrize("path", ["/v1/complete", "/v1/messages/batches", "/v1/nope"])
async def test_unknown_route_raises_not_found_in_the_anthropic_sdk(stack: Stack, path: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        anthropic_sdk(stack).post(path, cast_to=object, body={"model": "x"})
    err = info.value
    assert err.body["type"] == "error"
    assert err.body["error"]["type"] == "not_found_error"
    assert err.body["error"]["message"].startswith(f"Unknown route: POST {path}. This gateway ")
    request_id(err.response.headers)


async def test_wrong_method_is_405_in_each_protocol(stack: Stack) -> None:
    with pytest.raises(openai.APIStatusError) as oinfo:
        openai_sdk(stack).get("/chat/completions", cast_to=object)
    assert oinfo.value.status_code == 405
    assert oinfo.value.response.headers["allow"] == "POST"
    assert oinfo.value.body == {
        "message": "Method GET is not allowed on /v1/chat/completions; use POST.",
        "type": "invalid_request_error",
        "param": None,
        "code": "method_not_allowed",
    }

    with pytest.raises(anthropic.APIStatusError) as ainfo:
        anthropic_sdk(stack).get("/v1/messages", cast_to=object)
    assert ainfo.value.status_code == 405
    assert ainfo.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "Method GET is not allowed on /v1/messages; use POST.",
        },
    }

    # /v1/models is GET-only: an Anthropic client learns it in its own format.
    resp = httpx.post(
        f"{stack.gateway.url}/v1/models", headers={"anthropic-version": "2023-06-01"}, json={}
    )
    assert resp.status_code == 405 and resp.json()["type"] == "error"
    assert resp.json()["error"]["message"] == "Method POST is not allowed on /v1/models; use GET."


async def test_graphql_paths_answer_graphql_errors(stack: Stack) -> None:
    base = stack.gateway.url
    put = httpx.put(f"{base}/graphql", json={"query": "{ __typename }"})
    assert put.status_code == 405
    assert put.json() == {
        "errors": [
            {
                "message": "Method PUT is not allowed on /graphql; use GET, POST.",
                "extensions": {"code": "METHOD_NOT_ALLOWED"},
            }
        ]
    }
    missing = httpx.post(f"{base}/graphql/nope/deeper", json={})
    assert missing.status_code == 404
    assert missing.json() == {
        "errors": [
            {
                "message": "Unknown route: POST /graphql/nope/deeper.",
                "extensions": {"code": "NOT_FOUND"},
            }
        ]
    }


async def test_other_paths_default_to_openai_and_the_path_is_bounded(stack: Stack) -> None:
    resp = httpx.delete(f"{stack.gateway.url}/{'a' * 5000}")
    assert resp.status_code == 404
    error = resp.json()["error"]
    assert error["type"] == "not_found_error" and error["code"] == "unknown_route"
    assert error["message"] == f"Unknown route: DELETE /{'a' * 199}...."
    key = httpx.get(f"{stack.gateway.url}/v2/x", headers={"x-api-key": "whatever"})
    assert key.json()["error"] == {
        "type": "not_found_error",
        "message": "Unknown route: GET /v2/x.",
    }


async def test_a_websocket_handshake_has_a_request_id(stack: Stack) -> None:
    url = stack.gateway.url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        assert ws.response is not None
        request_id(ws.response.headers)
