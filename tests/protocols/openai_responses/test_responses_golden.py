"""Golden transcripts of the Responses codec: requests, answers and full SSE event sequences.

- A Codex-shaped request (developer messages, namespace and hosted tools, encrypted reasoning,
  namespaced calls, a hosted-tool item, a file) decodes to the IR and re-encodes for OpenAI's
  own Responses API exactly as ``request_codex_upstream.json`` (ids dropped, ``store: false``).
- An IR answer (signed thinking, text, a namespaced tool call) encodes to ``answer.json`` and
  streams as ``answer.sse``, whose final event carries the same response object.
- OpenAI's own answer (``upstream_response.json``, ``upstream_stream.sse``: reasoning with
  encrypted content, an annotated message, a hosted web search, a function call) decodes to the
  IR and reaches a Responses client with OpenAI's items intact.

Ids the gateway makes are random; the tests number them (``_ids``). ``REGEN=1`` rewrites the
gateway-made goldens (``answer.*``) after a deliberate change: review the diff.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ChatResponse,
    FilePart,
    Opaque,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from backend.ir.errors import UpstreamError
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    OpaqueEvent,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.protocols import openai_responses as oar
from backend.protocols.model_rules import refusal
from backend.protocols.openai_responses import vocab
from backend.protocols.sse import SSEParser

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("REGEN") == "1"
SIGNATURE = "EqMBCkgIBxABGAIiQL1fake/signature+base64=="


def load(name: str) -> Any:
    return orjson.loads((GOLDEN / name).read_bytes())


def canonical(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))


@pytest.fixture(autouse=True)
def _ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gateway-made ids numbered 1, 2, 3... so transcripts are stable."""
    counter = itertools.count(1)

    class Numbered:
        @staticmethod
        def token_hex(n: int) -> str:
            return f"{next(counter):0{2 * n}d}"

    monkeypatch.setattr(vocab, "secrets", Numbered)


def golden_compare(name: str, produced: bytes) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_bytes(produced)
    assert produced.decode() == path.read_text()


def sse_objects(raw: bytes, chunk: int = 0) -> list[tuple[str | None, dict[str, Any]]]:
    parser = SSEParser()
    if chunk:
        events = [e for i in range(0, len(raw), chunk) for e in parser.feed(raw[i : i + chunk])]
    else:
        events = parser.feed(raw)
    return [(e.event, orjson.loads(e.data)) for e in events + parser.close()]


# -- requests ------------------------------------------------------------------------------------
def test_codex_request_decodes_to_the_ir() -> None:
    req = oar.decode_request(load("request_codex.json"))
    assert req.protocol == "openai_responses" and req.stream
    assert [p.text for p in req.system] == ["You are a coding agent running in the Codex CLI."]
    roles = [m.role for m in req.messages]
    assert roles == "user user assistant user assistant user assistant assistant user user".split()
    turn = req.messages[2].parts
    assert isinstance(turn[0], ThinkingPart) and turn[0].thinking == "I should write the file."
    assert turn[0].signature is None  # OpenAI's reasoning: unsigned for everyone else
    assert turn[0].extra == {"_encrypted_content": "gAAAAABopenai-encrypted-1"}
    assert turn[1] == ToolCallPart("call_1", "exec_command", '{"cmd":"echo hi > hello.txt"}')
    namespaced = req.messages[4].parts[0]
    assert isinstance(namespaced, ToolCallPart) and namespaced.name == "multi_agent_v1__wait_agent"
    result = req.messages[5].parts[0]
    assert isinstance(result, ToolResultPart) and result.tool_call_id == "call_2"
    assert result.content == [TextPart("no agents")]
    assert isinstance(req.messages[6].parts[0], Opaque)  # the hosted web search call, in place
    assert req.messages[7].parts == [TextPart("Done.")]  # not merged across it
    assert req.messages[-1].parts[0] == FilePart(file_id="file-abc123")  # a file at OpenAI
    names = [t.name if isinstance(t, Tool) else t.kind for t in req.tools]
    assert names == ["exec_command", "multi_agent_v1__wait_agent", "web_search"]
    assert req.reasoning is not None and req.reasoning.effort == "medium"


def test_codex_request_reaches_openai_as_sent() -> None:
    req = oar.decode_request(load("request_codex.json"))
    body = oar.encode_request(req, "gpt-5", stream=True)
    assert canonical(body) == canonical(load("request_codex_upstream.json"))


def test_agents_sdk_request_reaches_openai_unchanged() -> None:
    sent = {
        "model": "openai/gpt-4o-mini",
        "include": [],
        "input": [{"content": "THE PROMPT", "role": "user"}],
        "instructions": "Be brief.",
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather for a city.",
                "strict": True,
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            }
        ],
    }
    body = oar.encode_request(oar.decode_request(sent), "gpt-4o-mini", stream=False)
    assert body == {
        "model": "gpt-4o-mini",
        "instructions": "Be brief.",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "THE PROMPT"}],
            }
        ],
        "tools": sent["tools"],
        "store": False,
    }


def test_hosted_tools_items_and_files_are_refused_elsewhere_by_name() -> None:
    body = load("request_codex.json")
    req = oar.decode_request(body)
    assert oar.responses_refusal(req, "openai", "openai", "gpt-5") is None
    err = oar.responses_refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5")
    assert err is not None and err.status == 400 and err.param == "tools"
    assert (
        "'web_search' is a hosted tool" in err.message and 'web_search = "disabled"' in err.message
    )
    # Compatible chat servers and Azure are not OpenAI's Responses API either.
    assert oar.responses_refusal(req, "openai", "compat", "m") is not None
    body["tools"] = body["tools"][:2]
    err = oar.responses_refusal(oar.decode_request(body), "gemini", "gemini", "g")
    assert err is not None and "'web_search_call'" in err.message and err.param == "input"
    body["input"] = [i for i in body["input"] if i.get("type") != "web_search_call"]
    # The file by file_id is the IR's file: the per-provider file rules name the field.
    req = oar.decode_request(body)
    assert oar.responses_refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5") is None
    err = refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5")
    assert err is not None and err.param == "input"
    assert "'file_id' 'file-abc123'" in err.message and "stored at OpenAI" in err.message
    err = refusal(req, "ollama", "ollama", "q")
    assert err is not None and "a file part" in err.message
    body["input"] = body["input"][:-1]
    assert oar.responses_refusal(oar.decode_request(body), "ollama", "ollama", "q") is None
    # An image by file_id has no IR form: refused naming the field.
    body["input"].append(
        {"role": "user", "content": [{"type": "input_image", "file_id": "file-img"}]}
    )
    err = oar.responses_refusal(oar.decode_request(body), "gemini", "gemini", "g")
    assert err is not None and "'file_id' of an 'input_image' part" in err.message


def test_unmodelled_fields_are_no_ops_or_refused_by_name() -> None:
    base = {"model": "m", "input": "hi"}
    for field, value in (
        ("prompt_cache_key", "k"),
        ("client_metadata", {"a": "b"}),
        ("truncation", "auto"),
        ("service_tier", "flex"),
        ("include", ["reasoning.encrypted_content"]),
        ("top_logprobs", 0),
    ):
        req = oar.decode_request({**base, field: value})
        assert oar.responses_refusal(req, "anthropic", "anthropic", "c") is None, field
    for field, value, param in (
        ("include", ["message.output_text.logprobs"], "include"),
        ("top_logprobs", 3, "top_logprobs"),
        ("prompt", {"id": "pmpt_1"}, "prompt"),
        ("brand_new_field", 1, "brand_new_field"),
    ):
        req = oar.decode_request({**base, field: value})
        err = oar.responses_refusal(req, "anthropic", "anthropic", "c")
        assert err is not None and err.param == param, field
        assert oar.responses_refusal(req, "openai", "openai", "gpt-5") is None
    for field, value in (("background", True), ("conversation", "conv_1")):
        req = oar.decode_request({**base, field: value})
        err = oar.responses_refusal(req, "openai", "openai", "gpt-5")
        assert err is not None and err.param == field


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": "hi"}, "model", "Missing required parameter"),
        ({"model": "m"}, "input", "Missing required parameter"),
        ({"model": "m", "input": 3}, "input", "expected an array"),
        ({"model": "m", "input": [{"role": "bot", "content": "x"}]}, "input[0].role", "'bot'"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "input[0].content[0].type",
            "'image_url'",
        ),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id", ""),
        ({"model": "m", "input": "hi", "tool_choice": "sometimes"}, "tool_choice", "'sometimes'"),
        (
            {"model": "m", "input": "hi", "text": {"format": {"type": "xml"}}},
            "text.format.type",
            "",
        ),
        (
            {"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}},
            "text.format.schema",
            "",
        ),
        ({"model": "m", "input": "hi", "reasoning": {"effort": "huge"}}, "reasoning.effort", ""),
        ({"model": "m", "input": "hi", "temperature": 3}, "temperature", "out of range"),
        ({"model": "m", "input": "hi", "max_output_tokens": 0}, "max_output_tokens", "minimum"),
        ({"model": "m", "input": "hi", "stream_options": {}}, "stream_options", "stream"),
        ({"model": "m", "input": "hi", "metadata": {"a": 1}}, "metadata.a", "a string"),
        ({"model": "m", "input": "hi", "tools": [{"name": "f"}]}, "tools[0].type", ""),
    ],
)
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(Exception) as info:
        oar.decode_request(body)
    err = info.value
    assert getattr(err, "status", None) == 400 and getattr(err, "param", None) == param
    assert words in str(err)
    status, wire = oar.encode_error(err)  # type: ignore[arg-type]
    assert status == 400 and wire["error"]["type"] == "invalid_request_error"
    assert wire["error"]["param"] == param


# -- answers to a Responses client ---------------------------------------------------------------
def _request() -> Any:
    body = load("request_codex.json") | {"model": "anthropic/claude-sonnet-4-5"}
    return oar.decode_request(body)


ANSWER = ChatResponse(
    id="msg_upstream",
    model="claude-sonnet-4-5",
    content=[
        ThinkingPart(thinking="Let me check.", signature=SIGNATURE),
        TextPart("Checking the agents."),
        ToolCallPart("toolu_1", "multi_agent_v1__wait_agent", '{"timeout": 5}'),
    ],
    finish_reason="tool_calls",
    usage=Usage(input_tokens=100, output_tokens=40, cached_tokens=60, reasoning_tokens=12),
)


def answer_events() -> list[StreamEvent]:
    return [
        StreamStart(id="msg_upstream", model="claude-sonnet-4-5"),
        BlockStart(0, "thinking"),
        ThinkingDelta(0, "Let me "),
        ThinkingDelta(0, "check."),
        ThinkingDelta(0, "", SIGNATURE),
        BlockStop(0),
        BlockStart(1, "text"),
        TextDelta(1, "Checking "),
        TextDelta(1, "the agents."),
        BlockStop(1),
        BlockStart(2, "tool_call", tool_call_id="toolu_1", tool_name="multi_agent_v1__wait_agent"),
        ToolArgsDelta(2, '{"timeout":'),
        ToolArgsDelta(2, " 5}"),
        BlockStop(2),
        StreamEnd("tool_calls", ANSWER.usage),
    ]


def test_answer_golden() -> None:
    answer = oar.encode_response(ANSWER, _request(), response_id="resp_1", created_at=1767225600)
    golden_compare("answer.json", orjson.dumps(answer, option=orjson.OPT_INDENT_2) + b"\n")
    # The signature rides in encrypted_content and comes back as Anthropic's signed thinking.
    reasoning = answer["output"][0]
    assert reasoning["encrypted_content"].startswith(vocab.SIGNED_PREFIX)
    echo = oar.decode_request({"model": "m", "input": [reasoning]})
    assert echo.messages[0].parts == [ThinkingPart("Let me check.", SIGNATURE)]
    call = answer["output"][2]
    assert (call["namespace"], call["name"], call["call_id"]) == (
        "multi_agent_v1",
        "wait_agent",
        "toolu_1",
    )
    assert answer["usage"] == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 0},
        "output_tokens": 40,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 140,
    }


def test_answer_stream_golden() -> None:
    encoder = oar.StreamEncoder(_request(), response_id="resp_1", created_at=1767225600)
    raw = b"".join(encoder.encode(ev) for ev in answer_events())
    golden_compare("answer.sse", raw)
    events = sse_objects(raw, chunk=7)
    assert [obj["sequence_number"] for _, obj in events] == list(range(len(events)))
    assert all(name == obj["type"] for name, obj in events)
    final = events[-1][1]
    assert final["type"] == "response.completed" and final["response"] == encoder.final
    # Streamed and not, the same response (ids apart: each answer makes its own).
    whole = oar.encode_response(ANSWER, _request(), response_id="resp_1", created_at=1767225600)
    strip = lambda items: [{k: v for k, v in i.items() if k != "id"} for i in items]  # noqa: E731
    assert strip(final["response"]["output"]) == strip(whole["output"])


def test_length_is_incomplete_and_upstream_failure_is_failed() -> None:
    req = oar.decode_request({"model": "m", "input": "hi", "stream": True})
    enc = oar.StreamEncoder(req, response_id="resp_2", created_at=1)
    raw = b"".join(
        enc.encode(ev)
        for ev in (
            StreamStart("x", "m"),
            BlockStart(0, "text"),
            TextDelta(0, "Once upon"),
            StreamEnd("length", Usage(3, 16)),
        )
    )
    kinds = [obj["type"] for _, obj in sse_objects(raw)]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert enc.final is not None and enc.final["incomplete_details"] == {
        "reason": "max_output_tokens"
    }
    enc = oar.StreamEncoder(req, response_id="resp_3", created_at=1)
    raw = enc.encode(StreamStart("x", "m")) + enc.encode(
        StreamError(UpstreamError("anthropic: overloaded", code="overloaded_error"))
    )
    objs = [obj for _, obj in sse_objects(raw)]
    assert [o["type"] for o in objs] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert objs[2]["code"] == "overloaded_error" and "overloaded" in objs[2]["message"]
    assert objs[3]["response"]["status"] == "failed"
    assert objs[3]["response"]["error"]["code"] == "overloaded_error"


# -- OpenAI's own answers (the Responses API upstream) -------------------------------------------
def test_upstream_answer_reaches_the_client_with_openais_items() -> None:
    upstream = load("upstream_response.json")
    resp = oar.decode_response(upstream)
    assert resp.protocol == "openai_responses" and resp.finish_reason == "tool_calls"
    kinds = [type(p).__name__ for p in resp.content]
    assert kinds == ["ThinkingPart", "TextPart", "ToolCallPart"]
    assert resp.usage == Usage(
        input_tokens=812, output_tokens=134, cached_tokens=768, reasoning_tokens=64
    )
    req = oar.decode_request({"model": "openai/gpt-5", "input": "Find the docs and list them."})
    answer = oar.encode_response(resp, req, response_id="resp_9", created_at=1)
    assert answer["output"] == upstream["output"]


def test_upstream_stream_decodes_to_ir_events() -> None:
    raw = (GOLDEN / "upstream_stream.sse").read_bytes()
    parser, decoder = SSEParser(), oar.StreamDecoder()
    events: list[StreamEvent] = []
    for i in range(0, len(raw), 13):
        for sse in parser.feed(raw[i : i + 13]):
            events += decoder.feed(sse)
    for sse in parser.close():
        events += decoder.feed(sse)
    events += decoder.close()
    assert events[0] == StreamStart(id="resp_up1", model="gpt-5", created=1767225600)
    body = events[1:]
    assert body[0] == BlockStart(0, "thinking")
    assert ThinkingDelta(0, "", vocab.OPENAI_ENCRYPTED + "gAAAAABenc-1") in body
    assert isinstance(body[body.index(BlockStop(0)) + 1], BlockStart)
    opaque = [e for e in body if isinstance(e, BlockStart) and e.kind == "opaque"]
    assert len(opaque) == 1 and opaque[0].opaque is not None
    assert opaque[0].opaque.data["type"] == "web_search_call"
    assert [e.text for e in body if isinstance(e, TextDelta)] == ["The docs ", "are at [1]."]
    args = "".join(e.partial_json for e in body if isinstance(e, ToolArgsDelta))
    assert args == '{"path": "docs"}'
    assert body[-1] == StreamEnd(
        "tool_calls",
        Usage(input_tokens=812, output_tokens=134, cached_tokens=768, reasoning_tokens=64),
    )
    assert all(
        not isinstance(e, OpaqueEvent) or e.opaque.protocol == "openai_responses" for e in body
    )
    # Through the client encoder: OpenAI's items, in order, web search included.
    req = oar.decode_request({"model": "openai/gpt-5", "input": "x", "stream": True})
    enc = oar.StreamEncoder(req, response_id="resp_9", created_at=1)
    out = sse_objects(b"".join(enc.encode(ev) for ev in events))
    assert enc.final is not None
    upstream = load("upstream_response.json")
    strip = lambda items: [{k: v for k, v in i.items() if k != "id"} for i in items]  # noqa: E731
    produced = strip(enc.final["output"])
    expected = strip(upstream["output"])
    assert produced == expected  # annotations and the hosted search included
    kinds = [o["type"] for _, o in out]
    # The client sees OpenAI's event sequence, event for event.
    assert kinds == [o["type"] for _, o in sse_objects(raw)]
    annotation = next(o for _, o in out if o["type"] == "response.output_text.annotation.added")
    message_id = enc.final["output"][2]["id"]
    assert (annotation["item_id"], annotation["output_index"]) == (message_id, 2)


def test_truncated_upstream_stream_is_an_error() -> None:
    decoder = oar.StreamDecoder()
    assert decoder.feed(_sse("response.created", {"response": {"id": "r", "model": "m"}}))
    events = decoder.close()
    assert len(events) == 1 and isinstance(events[0], StreamError)


def _sse(kind: str, obj: dict[str, Any]) -> Any:
    from backend.protocols.sse import SSEEvent

    return SSEEvent(kind, orjson.dumps({"type": kind, **obj}).decode())
