"""Same wire in and out is a passthrough (issue 14 item 1), through the real gateway with the
official SDKs against the fakes.

Anthropic -> Anthropic: a ``document`` block (cited), a server tool (``web_search_20250305``), a
field the gateway has never heard of and an echoed answer with ``citations`` reach the fake
verbatim; the fake's ``server_tool_use`` / ``web_search_tool_result`` blocks, citations,
``pause_turn`` and ``usage.server_tool_use`` reach the SDK, streamed and not. OpenAI -> OpenAI:
``n=2`` with ``logprobs`` streamed, ``input_audio`` parts, custom tools and unknown fields.
Policies still run: DLP redacts the text inside a document and restores a further streamed
choice; log rows count the upstream's tokens. Across protocols each of these is a 400 in the
caller's protocol naming the field and the provider, and nothing is sent upstream.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import orjson
import pytest

from tests.e2e.conftest import Stack, StackSetup
from tests.e2e.harness import Seeded, orm, wait_for_rows
from tests.fakes.base import Reply

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
EMAIL = "jane.doe@example.com"
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
DOCUMENT = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."},
    "title": "Notes",
    "citations": {"enabled": True},
    "cache_control": {"type": "ephemeral"},
}
CITATION = {
    "type": "web_search_result_location",
    "url": "https://example.com/sky",
    "title": "Sky",
    "encrypted_index": "Eo8BCioIAhgBIiQy",
    "cited_text": "The sky is blue because of Rayleigh scattering.",
}
SEARCH_USE = {
    "type": "server_tool_use",
    "id": "srvtoolu_01",
    "name": "web_search",
    "input": {"query": "sky colour"},
}
SEARCH_RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_01",
    "content": [
        {
            "type": "web_search_result",
            "url": "https://example.com/sky",
            "title": "Sky",
            "encrypted_content": "EqgfCioIARgBIiQ3",
            "page_age": "April 30, 2025",
        }
    ],
}
ANSWER_TEXT = {"type": "text", "text": "The sky is blue.", "citations": [CITATION]}
USAGE = {
    "input_tokens": 120,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 40,
    "server_tool_use": {"web_search_requests": 1},
    "service_tier": "standard",
}


#: A fallback chain whose primary cannot take Anthropic's extras and whose fallback can.
CHAIN = ("openai/gpt-doc-primary", ["anthropic/claude-sonnet-4-5"])


async def _prepare(db: str, seeded: Seeded) -> None:
    from backend.data.models.routing import FallbackChain
    from backend.data.models.tenancy import Organization

    # Globex (``other_key``) has DLP on.
    async with orm(db):
        await Organization.filter(id=seeded.other_org_id).update(dlp_enabled=True)
        await FallbackChain.create(primary_model=CHAIN[0], chain=CHAIN[1])


@pytest.fixture(scope="module")
def stack_setup() -> StackSetup:
    return StackSetup(prepare=_prepare)


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """The module's stack (``conftest``), with the fakes' scripts and records reset."""
    stack.reset()
    return stack


class Sent:
    """The bodies an SDK client sent and the request ids it got back (httpx hooks)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.request_ids: list[str] = []

    def __call__(self, request: Any) -> None:
        self.bodies.append(json.loads(request.content))

    def response(self, response: Any) -> None:
        self.request_ids.append(response.headers["x-request-id"])


def ant(stack: Stack, key: str | None = None, sent: Sent | None = None) -> anthropic.Anthropic:
    hooks = {"request": [sent], "response": [sent.response]} if sent is not None else {}
    return anthropic.Anthropic(
        base_url=stack.gateway.url,
        api_key=key or stack.seeded.user_key,
        max_retries=0,
        http_client=anthropic.DefaultHttpxClient(event_hooks=hooks, timeout=30),
    )


def oai(stack: Stack, key: str | None = None, sent: Sent | None = None) -> openai.OpenAI:
    hooks = {"request": [sent], "response": [sent.response]} if sent is not None else {}
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=key or stack.seeded.user_key,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(event_hooks=hooks, timeout=30),
    )


def received(stack: Stack, provider: str, path: str) -> list[dict[str, Any]]:
    fake = stack.fakes()[provider]
    return [r.json for r in fake.requests if path in r.path]  # type: ignore[attr-defined]


def anthropic_answer(stop_reason: str = "end_turn") -> Reply:
    body = {
        "id": "msg_passthrough",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [SEARCH_USE, SEARCH_RESULT, ANSWER_TEXT],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": USAGE,
    }
    return Reply(raw=orjson.dumps(body))


def anthropic_stream() -> Reply:
    def frame(event: dict[str, Any]) -> bytes:
        return f"event: {event['type']}\ndata: ".encode() + orjson.dumps(event) + b"\n\n"

    start_usage = {**USAGE, "output_tokens": 1}
    del start_usage["server_tool_use"]
    message = {
        "id": "msg_passthrough",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [
        {"type": "message_start", "message": message},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {**SEARCH_USE, "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"query": "sky colour"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": SEARCH_RESULT},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "text", "text": "", "citations": []},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "citations_delta", "citation": CITATION},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "text_delta", "text": "The sky is blue."},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "pause_turn", "stop_sequence": None},
            "usage": {"output_tokens": 40, "server_tool_use": {"web_search_requests": 1}},
        },
        {"type": "message_stop"},
    ]
    return Reply(raw=b"".join(frame(e) for e in events), raw_content_type="text/event-stream")


def document_request(**extra: Any) -> dict[str, Any]:
    return {
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": [DOCUMENT, {"type": "text", "text": "Sky colour?"}]},
            {"role": "assistant", "content": [ANSWER_TEXT]},
            {"role": "user", "content": "And at night?"},
        ],
        "tools": [WEB_SEARCH],
        **extra,
    }


# -- Anthropic -> Anthropic ------------------------------------------------------------------


async def test_anthropic_documents_server_tools_and_citations_pass_through(stack: Stack) -> None:
    stack.anthropic.replies.append(anthropic_answer())
    sent = Sent()
    raw = ant(stack, sent=sent).messages.with_raw_response.create(
        model=CLAUDE,
        **document_request(),  # type: ignore[arg-type]
        extra_body={"brand_new_field": {"x": 1}},
    )
    msg = raw.parse()
    # The fake got what the SDK sent, but for the model's name: nothing dropped or rewritten.
    [upstream] = received(stack, "anthropic", "/v1/messages")
    [client] = sent.bodies
    assert upstream == {**client, "model": "claude-sonnet-4-5"}
    assert upstream["messages"][0]["content"][0] == DOCUMENT
    assert upstream["tools"] == [WEB_SEARCH] and upstream["brand_new_field"] == {"x": 1}
    # The SDK got the answer's blocks as the upstream sent them.
    assert [b.model_dump(exclude_none=True) for b in msg.content] == [
        SEARCH_USE,
        SEARCH_RESULT,
        ANSWER_TEXT,
    ]
    assert msg.usage.server_tool_use is not None
    assert msg.usage.server_tool_use.web_search_requests == 1
    assert msg.usage.service_tier == "standard"
    # Logged with the upstream's own counts.
    (row,) = await wait_for_rows(stack.database_url, 1, request_id=raw.headers["x-request-id"])
    assert row.input_tokens == 120 and row.output_tokens == 40


async def test_anthropic_streamed_server_tool_blocks_citations_and_pause_turn(stack: Stack) -> None:
    stack.anthropic.replies.append(anthropic_stream())
    with ant(stack).messages.stream(model=CLAUDE, **document_request()) as stream:  # type: ignore[arg-type]
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "citation" in kinds and "input_json" in kinds
    assert [b.model_dump(exclude_none=True) for b in final.content] == [
        SEARCH_USE,
        SEARCH_RESULT,
        ANSWER_TEXT,
    ]
    assert final.stop_reason == "pause_turn"
    assert final.usage.server_tool_use is not None
    assert final.usage.server_tool_use.web_search_requests == 1
    [upstream] = received(stack, "anthropic", "/v1/messages")
    assert upstream["stream"] is True and upstream["tools"] == [WEB_SEARCH]


async def test_dlp_redacts_the_text_inside_a_document(stack: Stack) -> None:
    stack.anthropic.replies.append(anthropic_answer())
    document = {**DOCUMENT, "source": {**DOCUMENT["source"], "data": f"Mail {EMAIL} today."}}
    body = document_request()
    body["messages"][0]["content"][0] = document
    ant(stack, key=stack.seeded.other_key).messages.create(model=CLAUDE, **body)
    [upstream] = received(stack, "anthropic", "/v1/messages")
    data = upstream["messages"][0]["content"][0]["source"]["data"]
    assert EMAIL not in orjson.dumps(upstream).decode()
    assert data == "Mail [EMAIL_1] today."
    # Byte-exact parts stay so: the encrypted index of an echoed citation.
    echoed = upstream["messages"][1]["content"][0]["citations"][0]
    assert echoed["encrypted_index"] == CITATION["encrypted_index"]


@pytest.mark.parametrize("model", [GPT, "gemini/gemini-2.5-flash", "ollama/llama3.2"])
async def test_anthropic_extras_elsewhere_are_a_400_naming_field_and_provider(
    stack: Stack, model: str
) -> None:
    client = ant(stack)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=model, **document_request())  # type: ignore[arg-type]
    body = info.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    message = body["error"]["message"]
    provider = model.split("/")[0]
    assert "'web_search_20250305'" in message and provider in message, message
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=model, **document_request(tools=[]))  # type: ignore[arg-type]
    # The document itself translates (a file); its citations ask has no translation.
    message = info.value.response.json()["error"]["message"]
    assert "field 'citations' of a document (messages[0].content[0])" in message
    assert all(not fake.requests for fake in stack.fakes().values())  # type: ignore[attr-defined]


async def test_fallback_skips_a_candidate_that_cannot_take_the_extras(stack: Stack) -> None:
    stack.anthropic.replies.append(anthropic_answer())
    raw = ant(stack).messages.with_raw_response.create(model=CHAIN[0], **document_request())  # type: ignore[arg-type]
    msg = raw.parse()
    assert msg.content[0].type == "server_tool_use"
    # The OpenAI primary was skipped, not sent a request without the document.
    assert not received(stack, "openai", "/chat/completions")
    [upstream] = received(stack, "anthropic", "/v1/messages")
    assert upstream["messages"][0]["content"][0] == DOCUMENT
    assert raw.headers["x-switchboard-model"] == CHAIN[1][0]


# -- OpenAI -> OpenAI --------------------------------------------------------------------------


def two_choice_stream(second: list[str]) -> Reply:
    """An OpenAI stream of ``n=2`` with log probabilities; ``second`` is choice 1's pieces."""

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        frame = {
            "id": "chatcmpl-n2s",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-4o-mini",
            "system_fingerprint": "fp_pt",
            "choices": choices,
            "usage": usage,
        }
        return b"data: " + orjson.dumps(frame) + b"\n\n"

    def logprobs(token: str) -> dict[str, Any]:
        entry = {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}
        return {"content": [entry], "refusal": None}

    def choice(i: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        lp = logprobs(delta["content"]) if delta.get("content") else None
        return {"index": i, "delta": delta, "logprobs": lp, "finish_reason": finish}

    role = {"role": "assistant", "content": "", "refusal": None}
    frames = [chunk([choice(0, role), choice(1, role)]), chunk([choice(0, {"content": "A"})])]
    frames += [chunk([choice(1, {"content": piece})]) for piece in second]
    frames += [chunk([choice(0, {}, "stop")]), chunk([choice(1, {}, "stop")])]
    usage = {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}
    frames += [chunk([], usage), b"data: [DONE]\n\n"]
    return Reply(raw=b"".join(frames), raw_content_type="text/event-stream")


async def test_openai_n_and_logprobs_stream_through(stack: Stack) -> None:
    stack.openai.replies.append(two_choice_stream(["B", "C"]))
    sent = Sent()
    with oai(stack, sent=sent).chat.completions.stream(
        model=GPT,
        messages=[{"role": "user", "content": "hi"}],
        n=2,
        logprobs=True,
    ) as stream:
        completion = stream.get_final_completion()
    assert [c.index for c in completion.choices] == [0, 1]
    assert [c.message.content for c in completion.choices] == ["A", "BC"]
    assert [c.finish_reason for c in completion.choices] == ["stop", "stop"]
    tokens = [[t.token for t in (c.logprobs.content or [])] for c in completion.choices]  # type: ignore[union-attr]
    assert tokens == [["A"], ["B", "C"]]
    assert completion.system_fingerprint == "fp_pt"
    [upstream] = received(stack, "openai", "/chat/completions")
    assert upstream["n"] == 2 and upstream["logprobs"] is True and upstream["stream"] is True
    (row,) = await wait_for_rows(stack.database_url, 1, request_id=sent.request_ids[0])
    assert (row.input_tokens, row.output_tokens) == (9, 7)


async def test_dlp_restores_a_further_streamed_choice(stack: Stack) -> None:
    # Choice 1 names the placeholder split across two chunks.
    stack.openai.replies.append(two_choice_stream(["Mail [EMA", "IL_1] now"]))
    with oai(stack, key=stack.seeded.other_key).chat.completions.stream(
        model=GPT,
        messages=[{"role": "user", "content": f"Write to {EMAIL}"}],
        n=2,
    ) as stream:
        completion = stream.get_final_completion()
    assert completion.choices[1].message.content == f"Mail {EMAIL} now"
    [upstream] = received(stack, "openai", "/chat/completions")
    assert EMAIL not in orjson.dumps(upstream).decode()


async def test_openai_audio_parts_custom_tools_and_unknown_fields_pass_through(
    stack: Stack,
) -> None:
    stack.openai.replies.append(Reply(text="heard"))
    sent = Sent()
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}
    custom = {"type": "custom", "custom": {"name": "grep", "description": "Search the code."}}
    resp = oai(stack, sent=sent).chat.completions.create(
        model=GPT,
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is it?"}, audio]}],  # type: ignore[list-item]
        tools=[custom],  # type: ignore[list-item]
        extra_body={"brand_new_field": [1, 2]},
    )
    assert resp.choices[0].message.content == "heard"
    [upstream] = received(stack, "openai", "/chat/completions")
    [client] = sent.bodies
    assert upstream == {**client, "model": "gpt-4o-mini"}
    # Elsewhere, each is a 400 naming it.
    with pytest.raises(openai.BadRequestError) as info:
        oai(stack).chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": [audio]}],  # type: ignore[list-item]
        )
    error = info.value.response.json()["error"]
    assert error["param"] == "messages" and "'input_audio'" in error["message"]
    assert "anthropic" in error["message"]
    assert len(stack.anthropic.requests) == 0
