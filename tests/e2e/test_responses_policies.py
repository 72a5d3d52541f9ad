"""Policies on ``POST /v1/responses``, as on the chat endpoints: DLP (redaction upstream and
restoration in answers, inside streamed Responses events too), fallback chains, spend caps, logs,
errors in OpenAI's format, and the WebSocket answer Codex falls back from.

One stack: the DLP scopes of ``dlp_support`` (Alice's organization redacts every built-in kind
and a custom rule) plus a fallback chain, a priced model and a capped user seeded before start.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

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
from tests.e2e.harness import request_rows
from tests.e2e.policies_support import PolicyStack as Stack
from tests.e2e.policies_support import last_call, policy_stack
from tests.fakes.base import FakeUpstream, Reply, ToolCall

MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5"}
PATHS = {"openai": "/v1/responses", "anthropic": "/v1/messages"}
FALLBACK = ("openai/gpt-resp-fb", "anthropic/claude-resp-fb")
HOSTED_FALLBACK = ("openai/gpt-resp-hosted", "anthropic/claude-resp-hosted")
CAPPED_MODEL = "anthropic/claude-resp-cap"
LOOKUP = {
    "type": "function",
    "name": "lookup",
    "description": "Look a customer up",
    "parameters": {"type": "object", "properties": {"marker": {"type": "string"}}},
}


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("responses-policies")
    async with policy_stack(tmp, (FALLBACK, HOSTED_FALLBACK), CAPPED_MODEL) as made:
        yield made


def client(stack: Stack, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=key or stack.scopes["org"].key,
        max_retries=0,
        timeout=30,
    )


def create(stack: Stack, stream: bool, key: str | None = None, **kwargs: Any) -> tuple[Any, Any]:
    """(final response, the HTTP headers); streamed through ``responses.stream``, which also
    checks that the streamed text deltas add up to the final text."""
    c = client(stack, key)
    if not stream:
        raw_resp = c.responses.with_raw_response.create(**kwargs)
        return raw_resp.parse(), raw_resp.headers
    deltas = ""
    with c.responses.stream(**kwargs) as s:
        for event in s:
            if event.type == "response.output_text.delta":
                deltas += event.delta
        final = s.get_final_response()
        headers = s._response.headers
    assert deltas == final.output_text
    return final, headers


# -- DLP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
async def test_dlp_redacts_upstream_and_restores_the_answer(
    stack: Stack, provider: str, stream: bool
) -> None:
    """Every value in instructions, user text, a function call's arguments and a tool output
    reaches the provider as its placeholder; the answer's placeholders (text split one character
    per event, tool call arguments) reach the client as the values."""
    stack.reset()
    tag = f"{provider}-{stream}"
    markers = {n: f"resp-{tag}-{n}" for n in ("sys", "user", "res")}
    text = answer(placeholder)
    fake: FakeUpstream = stack.fakes()[provider]  # type: ignore[assignment]
    fake.replies.append(
        Reply(
            text=text,
            chunks=len(text),
            tool_calls=[ToolCall("lookup", answer_args(placeholder), id="call_r1")],
        )
    )
    history = [
        {"role": "user", "content": prose(markers["user"], raw)},
        {
            "type": "function_call",
            "call_id": "call_d1",
            "name": "lookup",
            "arguments": json.dumps(args(f"resp-{tag}-args", raw)),
        },
        {
            "type": "function_call_output",
            "call_id": "call_d1",
            "output": prose(markers["res"], raw),
        },
        {"role": "user", "content": "What do you make of all that?"},
    ]
    resp, _ = create(
        stack,
        stream,
        model=MODELS[provider],
        instructions=prose(markers["sys"], raw),
        input=history,
        tools=[LOOKUP],
    )
    assert resp.output_text == answer(raw)
    calls = [o for o in resp.output if o.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [answer_args(raw)]
    places = Places(tuple(markers.values()), (f"resp-{tag}-args",))
    check_upstream(last_call(fake, PATHS[provider]), stack.scopes["org"], places)


# -- fallback chains ------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_fallback_from_openai_responses_to_anthropic(stack: Stack, stream: bool) -> None:
    stack.reset()
    stack.openai.replies.extend([Reply(status=500), Reply(status=500)])
    stack.anthropic.replies.append(Reply(text="from the fallback"))
    resp, headers = create(stack, stream, model=FALLBACK[0], input="hello")
    assert resp.output_text == "from the fallback"
    assert headers["x-switchboard-model"] == FALLBACK[1]
    assert [r.path for r in stack.openai.requests] == ["/v1/responses"] * 2
    row, superseded = await request_rows(stack, headers["x-request-id"], 3)
    assert (row.status, row.actual_model, row.endpoint) == (200, FALLBACK[1], "/v1/responses")
    assert [r.actual_model for r in superseded] == [FALLBACK[0]] * 2
    assert all(r.status >= 500 and r.cost_usd is None for r in superseded)


async def test_fallback_skips_a_candidate_that_cannot_run_hosted_tools(stack: Stack) -> None:
    """A web search tool runs only at OpenAI: the Anthropic fallback is never sent a degraded
    request, so OpenAI's failure is the answer."""
    stack.reset()
    stack.openai.replies.extend([Reply(status=503), Reply(status=503)])
    with pytest.raises(openai.APIStatusError) as info:
        client(stack).responses.create(
            model=HOSTED_FALLBACK[0], input="news?", tools=[{"type": "web_search"}]
        )
    assert info.value.status_code == 503
    sent = last_call(stack.openai, "/v1/responses").json
    assert sent["tools"] == [{"type": "web_search"}]
    assert not [r for r in stack.anthropic.requests if r.path == "/v1/messages"]


# -- caps -----------------------------------------------------------------------------------------
async def test_weekly_cap_holds_on_responses(stack: Stack) -> None:
    stack.reset()
    for i in range(3):
        stack.anthropic.replies.append(Reply(text="ok", input_tokens=5, output_tokens=10))
        resp, headers = create(
            stack,
            i == 1,
            key=stack.capped_key,
            model=CAPPED_MODEL,
            input="hi",
            max_output_tokens=10,
        )
        assert resp.output_text == "ok"
        row, _ = await request_rows(stack, headers["x-request-id"])
        assert row.cost_usd == Decimal("0.10")
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as info:
            create(
                stack,
                stream,
                key=stack.capped_key,
                model=CAPPED_MODEL,
                input="hi",
                max_output_tokens=10,
            )
        body = info.value.body
        assert isinstance(body, dict) and body.get("code") == "insufficient_quota"
        assert info.value.response.headers.get("x-should-retry") == "false"
    assert len([r for r in stack.anthropic.requests if r.path == "/v1/messages"]) == 3


# -- errors and logs ------------------------------------------------------------------------------
async def test_refusals_are_openai_errors_and_logged(stack: Stack) -> None:
    stack.reset()
    c = client(stack)
    with pytest.raises(openai.BadRequestError) as bad:
        c.responses.create(
            model=MODELS["anthropic"], input="news?", tools=[{"type": "web_search_preview"}]
        )
    err = bad.value.body
    assert isinstance(err, dict) and err["param"] == "tools" and err["code"] == "unsupported_value"
    assert "'web_search_preview' is a hosted tool" in err["message"]
    row, _ = await request_rows(stack, bad.value.response.headers["x-request-id"])
    assert (row.endpoint, row.status, row.requested_model) == (
        "/v1/responses",
        400,
        MODELS["anthropic"],
    )
    with pytest.raises(openai.BadRequestError) as bad:
        c.responses.create(
            model=MODELS["anthropic"],
            input=[{"role": "user", "content": [{"type": "input_video"}]}],  # type: ignore[list-item]
        )
    assert (
        isinstance(bad.value.body, dict) and bad.value.body["param"] == "input[0].content[0].type"
    )
    with pytest.raises(openai.AuthenticationError) as auth:
        client(stack, key="sk-not-a-key").responses.create(model=MODELS["openai"], input="hi")
    assert isinstance(auth.value.body, dict) and auth.value.body["code"] == "invalid_api_key"
    assert not stack.anthropic.requests and not stack.openai.requests


async def test_a_websocket_upgrade_gets_426(stack: Stack) -> None:
    """What makes Codex use HTTP at once (any other refusal costs it seven reconnects)."""
    headers = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "authorization": f"Bearer {stack.scopes['org'].key}",
    }
    resp = httpx.get(f"{stack.gateway.openai_base_url}/responses", headers=headers, timeout=10)
    assert resp.status_code == 426
    assert resp.json()["error"]["code"] == "websocket_not_supported"
    assert resp.headers["x-request-id"]


@pytest.mark.parametrize("provider", list(MODELS))
async def test_a_stream_cut_upstream_ends_with_error_and_failed(
    stack: Stack, provider: str
) -> None:
    """After the first event nothing can fall back: the client gets ``error`` then
    ``response.failed`` (never a silent truncation), and the row says what happened."""
    stack.reset()
    fake: FakeUpstream = stack.fakes()[provider]  # type: ignore[assignment]
    fake.replies.append(Reply(text="A long answer that is cut short", chunks=10, drop_after=6))
    raw_resp = client(stack).responses.with_raw_response.create(
        model=MODELS[provider], input="tell me", stream=True
    )
    events = list(raw_resp.parse())
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds
    assert kinds[-2:] == ["error", "response.failed"], kinds
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None and failed.error.message
    assert [e.sequence_number for e in events] == list(range(len(events)))
    row, _ = await request_rows(stack, raw_resp.headers["x-request-id"])
    assert row.endpoint == "/v1/responses" and row.status >= 500 and row.streamed
