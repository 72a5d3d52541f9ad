"""Policies on the Gemini door, as on the chat endpoints, through the official google-genai SDK:
DLP (redaction upstream, restoration in answers and inside streamed chunks), fallback chains
(and skipping a candidate that cannot honour a Gemini-only field), a spend cap, the response
cache, logs (no ``?key=`` anywhere), and errors in Google's format via the SDK's exception.

One stack: the DLP scopes of ``dlp_support`` plus a fallback chain, a priced model and a capped
user, as ``test_responses_policies`` seeds them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.e2e.dlp_support import (
    Places,
    answer,
    answer_args,
    args,
    check_upstream,
    placeholder,
    prose,
    raw,
)
from tests.e2e.gemini_support import collect, gemini_client, request_id
from tests.e2e.harness import request_rows
from tests.e2e.policies_support import PolicyStack as Stack
from tests.e2e.policies_support import last_call, policy_stack
from tests.e2e.routing_support import AGENT, ORG_ALIAS, RoutingStack, models_called
from tests.e2e.routing_support import rstack as rstack
from tests.e2e.test_response_cache import CacheStack
from tests.e2e.test_response_cache import cache_stack as cache_stack
from tests.fakes.base import FakeUpstream, Reply, ToolCall

MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "ollama": "ollama/llama3.2",
}
PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "enerateContent",
    "ollama": "/api/chat",
}
FALLBACK = ("openai/gpt-gem-fb", "anthropic/claude-gem-fb")
GEMINI_ONLY_FALLBACK = ("gemini/gemini-gem-only", "anthropic/claude-gem-only")
CAPPED_MODEL = "anthropic/claude-gem-cap"
LOOKUP = types.FunctionDeclaration(
    name="lookup",
    description="Look a customer up",
    parameters_json_schema={"type": "object", "properties": {"marker": {"type": "string"}}},
)
STREAMED = "/v1beta/models/{model}:streamGenerateContent"
PLAIN = "/v1beta/models/{model}:generateContent"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("gemini-policies")
    # Request lines on (JSON), so the test can read what the process logs about each request.
    env = {"SWITCHBOARD_LOG_FORMAT": "json", "SWITCHBOARD_REQUEST_LOG": "1"}
    async with policy_stack(tmp, (FALLBACK, GEMINI_ONLY_FALLBACK), CAPPED_MODEL, env) as made:
        yield made


def generate(
    stack: Stack, stream: bool, key: str | None = None, **kwargs: Any
) -> tuple[str, list[Any], str]:
    """(text, function calls, request id) of one call through the SDK."""
    client = gemini_client(stack, key=key or stack.scopes["org"].key)
    if stream:
        text, calls, _, _, rid = collect(client.models.generate_content_stream(**kwargs))
        return text, calls, rid
    resp = client.models.generate_content(**kwargs)
    parts = resp.candidates[0].content.parts or []
    calls = [p.function_call for p in parts if p.function_call is not None]
    return "".join(p.text or "" for p in parts if p.text), calls, request_id(resp)


# -- DLP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
async def test_dlp_redacts_upstream_and_restores_the_answer(
    stack: Stack, provider: str, stream: bool
) -> None:
    """Every value in the system instruction, user text, a function call's args and a function
    response reaches the provider as its placeholder; the answer's placeholders (text split one
    character per chunk, function call args) reach the SDK as the values."""
    stack.reset()
    tag = f"gem-{provider}-{stream}"
    markers = {n: f"{tag}-{n}" for n in ("sys", "user", "res")}
    text = answer(placeholder)
    fake: FakeUpstream = stack.fakes()[provider]  # type: ignore[assignment]
    fake.replies.append(
        Reply(
            text=text,
            chunks=len(text),
            tool_calls=[ToolCall("lookup", answer_args(placeholder), id="call_g1")],
        )
    )
    contents = [
        types.Content(role="user", parts=[types.Part(text=prose(markers["user"], raw))]),
        types.Content(
            role="model",
            parts=[
                types.Part(
                    function_call=types.FunctionCall(
                        id="call_d1", name="lookup", args=args(f"{tag}-args", raw)
                    )
                )
            ],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        id="call_d1",
                        name="lookup",
                        response={"output": prose(markers["res"], raw)},
                    )
                ),
                types.Part(text="What do you make of all that?"),
            ],
        ),
    ]
    got, calls, _ = generate(
        stack,
        stream,
        model=MODELS[provider],
        contents=contents,
        config=types.GenerateContentConfig(
            system_instruction=prose(markers["sys"], raw),
            tools=[types.Tool(function_declarations=[LOOKUP])],
        ),
    )
    assert got == answer(raw)
    assert [c.args for c in calls] == [answer_args(raw)]
    places = Places(tuple(markers.values()), (f"{tag}-args",))
    check_upstream(last_call(fake, PATHS[provider]), stack.scopes["org"], places)


# -- fallback chains ------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_fallback_from_openai_to_anthropic(stack: Stack, stream: bool) -> None:
    stack.reset()
    stack.openai.replies.extend([Reply(status=500), Reply(status=500)])
    stack.anthropic.replies.append(Reply(text="from the fallback"))
    client = gemini_client(stack, key=stack.scopes["org"].key)
    if stream:
        chunks = list(client.models.generate_content_stream(model=FALLBACK[0], contents="hello"))
        text = "".join(c.text or "" for c in chunks)
        headers = chunks[0].sdk_http_response.headers
    else:
        resp = client.models.generate_content(model=FALLBACK[0], contents="hello")
        text, headers = resp.text or "", resp.sdk_http_response.headers
    assert text == "from the fallback"
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    assert headers["x-switchboard-model"] == FALLBACK[1]
    assert [r.path for r in stack.openai.requests] == ["/v1/chat/completions"] * 2
    row, superseded = await request_rows(stack, headers["x-request-id"], 3)  # type: ignore[arg-type]
    assert (row.status, row.actual_model, row.requested_model) == (200, FALLBACK[1], FALLBACK[0])
    assert row.endpoint == (STREAMED if stream else PLAIN)
    assert [r.actual_model for r in superseded] == [FALLBACK[0]] * 2


async def test_fallback_skips_a_candidate_that_cannot_honour_a_gemini_field(stack: Stack) -> None:
    """cachedContent is Gemini's: the Anthropic fallback is never sent a degraded request, so
    Gemini's failure is the answer."""
    stack.reset()
    stack.gemini.replies.extend([Reply(status=503), Reply(status=503)])
    client = gemini_client(stack, key=stack.scopes["org"].key)  # kept: its __del__ closes it
    with pytest.raises(errors.APIError) as info:
        client.models.generate_content(
            model=GEMINI_ONLY_FALLBACK[0],
            contents="hi",
            config=types.GenerateContentConfig(cached_content="cachedContents/abc123"),
        )
    assert info.value.code == 503 and info.value.status == "UNAVAILABLE"
    sent = last_call(stack.gemini, "generateContent").json
    assert sent["cachedContent"] == "cachedContents/abc123"
    assert not [r for r in stack.anthropic.requests if r.path == "/v1/messages"]


# -- caps -----------------------------------------------------------------------------------------
async def test_weekly_cap_holds_on_the_gemini_door(stack: Stack) -> None:
    stack.reset()
    config = types.GenerateContentConfig(max_output_tokens=10)
    for i in range(3):
        stack.anthropic.replies.append(Reply(text="ok", input_tokens=5, output_tokens=10))
        text, _, rid = generate(
            stack, i == 1, key=stack.capped_key, model=CAPPED_MODEL, contents="hi", config=config
        )
        assert text == "ok"
        row, _ = await request_rows(stack, rid)
        assert row.cost_usd == Decimal("0.10")
    for stream in (False, True):
        with pytest.raises(errors.ClientError) as info:
            generate(
                stack,
                stream,
                key=stack.capped_key,
                model=CAPPED_MODEL,
                contents="hi",
                config=config,
            )
        assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
        assert "cap" in (info.value.message or "").lower()
    assert len([r for r in stack.anthropic.requests if r.path == "/v1/messages"]) == 3


# -- errors and logs ------------------------------------------------------------------------------
async def test_errors_are_google_errors_and_logged(stack: Stack) -> None:
    stack.reset()
    client = gemini_client(stack, key=stack.scopes["org"].key)
    with pytest.raises(errors.ClientError) as bad:
        client.models.generate_content(
            model=MODELS["anthropic"],
            contents="hi",
            config=types.GenerateContentConfig(cached_content="cachedContents/abc"),
        )
    assert (bad.value.code, bad.value.status) == (400, "INVALID_ARGUMENT")
    assert "'cachedContent'" in (bad.value.message or "") and "anthropic" in (
        bad.value.message or ""
    )
    rid = bad.value.response.headers["x-request-id"]  # type: ignore[union-attr]
    row, _ = await request_rows(stack, rid)
    assert (row.endpoint, row.status, row.requested_model) == (PLAIN, 400, MODELS["anthropic"])

    with pytest.raises(errors.ClientError) as unknown:
        client.models.generate_content(model="nosuchprovider/model-x", contents="hi")
    assert (unknown.value.code, unknown.value.status) == (404, "NOT_FOUND")

    stranger = gemini_client(stack, key="not-a-key")
    with pytest.raises(errors.ClientError) as auth:
        stranger.models.generate_content(model=MODELS["openai"], contents="hi")
    assert (auth.value.code, auth.value.status) == (401, "UNAUTHENTICATED")
    assert "Invalid API key" in (auth.value.message or "")

    # A body the SDK sends but the API refuses: a content without parts.
    with pytest.raises(errors.ClientError) as body:
        client.models.generate_content(
            model=MODELS["openai"], contents=[types.Content(role="user", parts=[])]
        )
    assert (body.value.code, body.value.status) == (400, "INVALID_ARGUMENT")
    assert "contents[0].parts" in (body.value.message or "")

    # A malformed body (the SDK cannot send one): Google's words, the field's path.
    resp = httpx.post(
        f"{stack.gateway.url}/v1beta/models/{MODELS['openai']}:generateContent",
        headers={"x-goog-api-key": stack.scopes["org"].key},
        json={"contents": [{"role": "robot", "parts": [{"text": "hi"}]}]},
        timeout=30,
    )
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and "contents[0].role" in err["message"]
    assert not stack.anthropic.requests and not stack.openai.requests


async def test_query_key_works_and_is_never_logged(stack: Stack) -> None:
    stack.reset()
    key = stack.scopes["org"].key
    stack.openai.replies.append(Reply(text="hello by query key"))
    url = f"{stack.gateway.url}/v1beta/models/{MODELS['openai']}:generateContent?key={key}"
    resp = httpx.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["candidates"][0]["content"]["parts"][0]["text"] == "hello by query key"
    rid = resp.headers["x-request-id"]
    row, _ = await request_rows(stack, rid)
    assert row.endpoint == PLAIN
    # The JSON stream of an un-SSE'd stream, with a key in the query too.
    stack.openai.replies.append(Reply(text="streamed as an array"))
    resp = httpx.post(
        url.replace(":generateContent", ":streamGenerateContent"),
        json={"contents": [{"parts": [{"text": "hi"}]}]},
        timeout=30,
    )
    chunks = resp.json()
    assert resp.headers["content-type"].startswith("application/json")
    assert (
        "".join(
            p.get("text", "")
            for c in chunks
            for p in (c["candidates"][0].get("content") or {}).get("parts", [])
        )
        == "streamed as an array"
    )
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    # A bad query key is refused like a bad header key.
    bad = httpx.post(url.replace(key, "wrong"), json={"contents": []}, timeout=30)
    assert bad.status_code == 401 and bad.json()["error"]["status"] == "UNAUTHENTICATED"
    log = stack.gateway.log_text()
    assert rid in log  # request lines are on: the request was logged...
    assert key not in log and "key=" not in log  # ...without its query string


# -- the response cache ---------------------------------------------------------------------------
async def test_a_repeated_request_is_served_from_the_cache(cache_stack: CacheStack) -> None:
    """Alice opted in: the same Gemini-door request twice reaches the provider once; the repeat
    (JSON, then streamed) is marked as a hit in its header and its log row."""
    cache_stack.anthropic.reset()
    cache_stack.anthropic.replies.append(Reply(text="cached answer", input_tokens=9))
    client = gemini_client(cache_stack)  # type: ignore[arg-type]
    question = f"cache me {uuid.uuid4().hex}"
    first = client.models.generate_content(model="anthropic/claude-sonnet-4-5", contents=question)
    again = client.models.generate_content(model="anthropic/claude-sonnet-4-5", contents=question)
    streamed = list(
        client.models.generate_content_stream(
            model="anthropic/claude-sonnet-4-5", contents=question
        )
    )
    assert first.text == again.text == "".join(c.text or "" for c in streamed) == "cached answer"
    assert len(cache_stack.anthropic.requests) == 1
    headers = {k.lower(): v for k, v in (again.sdk_http_response.headers or {}).items()}
    assert headers.get("x-switchboard-cache") == "hit"
    from tests.e2e.harness import wait_for_rows

    rows = await wait_for_rows(cache_stack.database_url, 1, request_id=headers["x-request-id"])
    assert rows[0].cache_hit and rows[0].endpoint == PLAIN
    assert json.dumps(first.model_dump(mode="json")["candidates"][0]["content"]) == json.dumps(
        again.model_dump(mode="json")["candidates"][0]["content"]
    )


# -- the live log -----------------------------------------------------------------------------
LIVE = "subscription { gatewayLogs { requestId endpoint provider actualModel status userId } }"


async def test_live_log_shows_gemini_door_requests(cache_stack: CacheStack) -> None:
    """The dashboard's live log (GraphQL subscription) gets each Gemini-door request as it
    completes, named by its endpoint template."""
    ws_url = cache_stack.gateway.url.replace("http://", "ws://") + "/graphql"
    client = gemini_client(cache_stack)  # type: ignore[arg-type]

    def request() -> str:
        cache_stack.openai.replies.append(Reply(text="live"))
        chunks = list(
            client.models.generate_content_stream(
                model="openai/gpt-4o-mini", contents=f"live {uuid.uuid4().hex}"
            )
        )
        return request_id(chunks[0])

    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        auth = {"Authorization": f"Bearer {cache_stack.admin_token}"}
        await ws.send(orjson.dumps({"type": "connection_init", "payload": auth}).decode())
        ack = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        subscribe = {"id": "logs", "type": "subscribe", "payload": {"query": LIVE}}
        await ws.send(orjson.dumps(subscribe).decode())

        async def event_for(rid: str, timeout: float) -> dict[str, Any] | None:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    msg = orjson.loads(await asyncio.wait_for(ws.recv(), left))
                except TimeoutError:
                    return None
                if msg["type"] == "ping":
                    await ws.send(orjson.dumps({"type": "pong"}).decode())
                    continue
                assert msg["type"] == "next", msg
                event = dict(msg["payload"]["data"]["gatewayLogs"])
                if event["requestId"] == rid:
                    return event
            return None

        # The subscription attaches asynchronously: repeat until one request is seen.
        deadline = time.monotonic() + 15
        while (event := await event_for(await asyncio.to_thread(request), 1.0)) is None:
            assert time.monotonic() < deadline, "no live event for a Gemini-door request"
    assert event["endpoint"] == STREAMED
    assert (event["provider"], event["actualModel"], event["status"]) == (
        "openai",
        "openai/gpt-4o-mini",
        200,
    )
    assert event["userId"] == cache_stack.seeded.user_id


# -- aliases and agent tiers ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "tier_header", "target"),
    [
        ("team-model", None, ORG_ALIAS[1]),  # the organization's alias beats the global one
        ("agent/coder", None, AGENT["normal_model"]),
        ("agent/coder:heavy", None, AGENT["heavy_model"]),  # a ':' inside the model segment
        ("agent/coder", "max", AGENT["max_model"]),
    ],
)
async def test_aliases_and_agent_tiers_on_the_gemini_door(
    rstack: RoutingStack, model: str, tier_header: str | None, target: str
) -> None:
    rstack.reset()
    headers = {"x-switchboard-tier": tier_header} if tier_header else None
    client = genai.Client(
        api_key=rstack.seeded.user_key,
        http_options=types.HttpOptions(
            base_url=rstack.gateway.url, api_version="v1beta", timeout=30_000, headers=headers
        ),
    )
    resp = client.models.generate_content(model=model, contents="hello")
    assert resp.text == "ok"
    got = {k.lower(): v for k, v in (resp.sdk_http_response.headers or {}).items()}
    assert got["x-switchboard-model"] == target
    assert models_called(rstack.openai) + models_called(rstack.anthropic) == [
        target.split("/", 1)[1]
    ]
    row, _ = await request_rows(rstack, got["x-request-id"], 1)
    assert (row.requested_model, row.actual_model, row.endpoint) == (model, target, PLAIN)
