"""Golden transcripts of the Gemini door (Gemini wire from clients, both directions).

- ``request_gemini_cli.json`` (what Gemini CLI 0.61 sends on its second turn, trimmed) decodes to
  the IR; re-encoded for a Gemini upstream it is ``request_gemini_cli_upstream.json`` (the same
  wire: nothing lost); for Anthropic the CLI's call id is the tool_use id and its placeholder
  signature goes nowhere.
- ``request_full.json`` (every part and field the door decodes, snake_case spellings included)
  decodes to the IR and re-encodes for Gemini as ``request_full_upstream.json``; for another
  provider its Gemini-only items are refused with a 400 naming them.
- An answer from Anthropic (signed thinking, text, a tool call) encodes to ``answer.json`` and
  streams as ``answer.sse`` (and ``answer_array.json`` without ``alt=sse``); its parts sent back
  as history restore the signed thinking and the call id.
- A Gemini answer with extras (``gemini_answer.json``: a signed text part, safetyRatings,
  groundingMetadata, usage details) reaches a Gemini client unchanged, streamed too.
- Errors in Google's shape (``error_invalid.json``).

``REGEN=1`` rewrites the goldens the gateway produces after a deliberate change: review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ChatResponse,
    FilePart,
    ImagePart,
    Opaque,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from backend.ir.errors import InvalidRequest, UpstreamError
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.protocols import anthropic_messages
from backend.protocols.files import PDF
from backend.protocols.gemini import StreamDecoder, decode_response, encode_request
from backend.protocols.gemini.answer import encode_error, encode_response
from backend.protocols.gemini.inbound import decode_request, include_thoughts
from backend.protocols.gemini.inbound_stream import StreamEncoder
from backend.protocols.model_rules import refusal
from backend.protocols.sse import SSEParser

GOLDEN = Path(__file__).parent / "golden_door"
REGEN = os.environ.get("REGEN") == "1"
SIGNATURE = "EqMBCkgIBxABGAIiQL1fake/signature+base64=="
CLI_CALL = "run_shell_command_1796531791306_0"


def load(name: str) -> Any:
    return orjson.loads((GOLDEN / name).read_bytes())


def golden(name: str, value: Any) -> None:
    """``value`` equals the golden file (written instead when ``REGEN=1``)."""
    path = GOLDEN / name
    if isinstance(value, bytes):
        if REGEN:
            path.write_bytes(value)
        assert value == path.read_bytes()
        return
    if REGEN:
        path.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    assert value == load(name)


# -- requests ------------------------------------------------------------------------------------
def test_gemini_cli_request_decodes_and_passes_through() -> None:
    req = decode_request(
        load("request_gemini_cli.json"), "anthropic/claude-sonnet-4-5", stream=True
    )
    assert (req.protocol, req.stream, req.model) == ("gemini", True, "anthropic/claude-sonnet-4-5")
    assert [p.text for p in req.system] == ["You are a non-interactive CLI agent. (trimmed)"]
    assert [t.name for t in req.tools if isinstance(t, Tool)] == ["write_file", "run_shell_command"]
    write_file = req.tools[0]
    assert isinstance(write_file, Tool) and write_file.parameters["required"] == [
        "file_path",
        "content",
    ]
    assert (req.temperature, req.top_p, req.reasoning) == (1, 0.95, None)
    assert include_thoughts(req)
    assert req.extra["generationConfig.topK"] == 64
    call = req.messages[1].parts[0]
    result = req.messages[2].parts[0]
    assert isinstance(call, ToolCallPart) and isinstance(result, ToolResultPart)
    assert call.id == result.tool_call_id == CLI_CALL
    assert result.content == [
        TextPart(
            "<untrusted_context>\nOutput: (empty)\nProcess Group PGID: 19391\n</untrusted_context>"
        )
    ]
    golden("request_gemini_cli_upstream.json", encode_request(req, "gemini-2.5-flash", stream=True))

    # Another provider: the CLI's own id is the tool_use id, the placeholder signature stays.
    body = anthropic_messages.encode_request(req, "claude-sonnet-4-5", stream=True)
    blocks = [b for m in body["messages"] for b in m["content"] if isinstance(b, dict)]
    assert [b["id"] for b in blocks if b["type"] == "tool_use"] == [CLI_CALL]
    assert [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"] == [CLI_CALL]
    assert "skip_thought_signature_validator" not in orjson.dumps(body).decode()
    assert body["top_k"] == 64 and "thinking" not in body


def test_every_decoded_field_and_part() -> None:
    req = decode_request(load("request_full.json"), "gemini/gemini-2.5-pro", stream=False)
    user, model1, results, model2, last = req.messages
    assert [type(p).__name__ for p in user.parts] == [
        "TextPart",
        "ImagePart",
        "ImagePart",
        "FilePart",
    ]
    inline, remote, pdf = user.parts[1], user.parts[2], user.parts[3]
    assert isinstance(inline, ImagePart) and (inline.data, inline.media_type) == (
        "iVBORw0KGgo=",
        "image/png",
    )
    assert isinstance(remote, ImagePart) and remote.url == "https://example.com/chart.jpg"
    assert isinstance(pdf, FilePart) and (pdf.data, pdf.media_type) == ("JVBERi0xLjQ=", PDF)
    thought, call1, call2 = model1.parts
    assert isinstance(thought, ThinkingPart) and thought.thinking == "Let me think. Charts first."
    assert thought.signature is None  # Gemini's signature is a wire key, not Anthropic's field
    assert isinstance(call1, ToolCallPart) and isinstance(call2, ToolCallPart)
    r1, r2 = results.parts
    assert isinstance(r1, ToolResultPart) and isinstance(r2, ToolResultPart)
    # No ids on the wire: each response answers the earliest unanswered call of its name.
    assert (r1.tool_call_id, r2.tool_call_id) == (call1.id, call2.id)
    assert r1.content == [TextPart("a bar chart")]
    assert r2.content == [TextPart('{"pages":3,"title":"Q3"}')]
    assert model2.parts == [
        TextPart(
            "The chart shows growth.", extra={"_soft": {"thoughtSignature": "R2VtaW5pVGV4dA=="}}
        )
    ]
    assert last.role == "user" and last.text() == "And the numbers?"
    assert [p.text for p in req.system] == ["Be precise.", "Cite pages."]
    lookup = req.tools[0]
    assert isinstance(lookup, Tool) and lookup.parameters == {
        "type": "object",
        "properties": {
            "q": {"type": "string", "description": "What to look for"},
            "page": {"type": ["integer", "null"]},
        },
        "required": ["q"],
    }
    assert req.tools[1] == Opaque(protocol="gemini", data={"googleSearch": {}})
    assert req.tool_choice == ToolChoice("tool", "lookup")
    assert (req.temperature, req.top_p, req.max_tokens, req.stop) == (0.2, 0.9, 512, ["END"])
    assert req.reasoning == Reasoning(budget_tokens=1024)
    fmt = req.response_format or {}
    assert fmt["json_schema"]["schema"]["properties"]["pages"] == {
        "type": "array",
        "items": {"type": "integer"},
    }
    golden("request_full_upstream.json", encode_request(req, "gemini-2.5-pro", stream=False))

    # Another provider cannot take Gemini's own items: a 400 naming the first, never a drop.
    err = refusal(req, "openai", "openai", "gpt-4o")
    assert err is not None and err.status == 400
    assert "'cachedContent' cannot be honoured by openai model 'gpt-4o'" in err.message
    del req.extra["cachedContent"]
    err = refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5")
    assert err is not None and "generationConfig.seed" in err.message
    req.extra = {k: v for k, v in req.extra.items() if not k.startswith("generationConfig.")}
    err = refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5")
    assert err is not None and "tool type 'googleSearch' (tools[1])" in err.message
    req.tools = req.tools[:1]
    # The PDF is a file: Anthropic reads it as a document, Ollama takes no files.
    err = refusal(req, "ollama", "ollama", "llama3.2")
    assert err is not None and "a file part (messages[0].content[3])" in err.message
    req.top_p = None  # Sonnet 4.5 takes one sampler: the file is what this checks
    assert refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5") is None
    claude = anthropic_messages.encode_request(req, "claude-sonnet-4-5", stream=False)
    document = claude["messages"][0]["content"][3]
    assert document == {
        "type": "document",
        "source": {"type": "base64", "media_type": PDF, "data": "JVBERi0xLjQ="},
    }


def test_bad_requests_name_the_field() -> None:
    cases = [
        ({}, "contents"),
        ({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"parts": []}]}, "contents[0].parts"),
        ({"contents": [{"parts": [{"text": 3}]}]}, "contents[0].parts[0].text"),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"temperature": "hot"}},
            "generationConfig.temperature",
        ),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "tools": [
                    {"functionDeclarations": [{"name": "f", "parameters": {"type": "BLOB"}}]}
                ],
            },
            "tools[0].functionDeclarations[0].parameters.type",
        ),
    ]
    for body, param in cases:
        with pytest.raises(InvalidRequest) as info:
            decode_request(body, "m", stream=False)
        assert info.value.param == param, (body, info.value.message)
        assert param in info.value.message


def test_errors_in_googles_shape() -> None:
    err = InvalidRequest("Invalid value at 'contents[0].role'.", param="contents[0].role")
    status, body = encode_error(err)
    assert status == 400
    golden("error_invalid.json", body)


# -- answers -------------------------------------------------------------------------------------
def anthropic_answer() -> ChatResponse:
    return ChatResponse(
        id="msg_01",
        model="claude-sonnet-4-5",
        content=[
            ThinkingPart("Weather needs a tool.", signature=SIGNATURE),
            TextPart("Let me check."),
            ToolCallPart("toolu_01", "get_weather", '{"city": "Paris"}'),
        ],
        finish_reason="tool_calls",
        usage=Usage(input_tokens=30, output_tokens=12, cached_tokens=10),
        protocol="anthropic",
    )


def anthropic_events() -> list[StreamEvent]:
    return [
        StreamStart("msg_01", "claude-sonnet-4-5", usage=Usage(input_tokens=30)),
        BlockStart(0, "thinking"),
        ThinkingDelta(0, "Weather needs "),
        ThinkingDelta(0, "a tool."),
        ThinkingDelta(0, signature=SIGNATURE),
        BlockStop(0),
        BlockStart(1, "text"),
        TextDelta(1, "Let me "),
        TextDelta(1, "check."),
        BlockStop(1),
        BlockStart(2, "tool_call", tool_call_id="toolu_01", tool_name="get_weather"),
        ToolArgsDelta(2, '{"city": '),
        ToolArgsDelta(2, '"Paris"}'),
        BlockStop(2),
        StreamEnd("tool_calls", Usage(input_tokens=30, output_tokens=12, cached_tokens=10)),
    ]


def stream(events: list[StreamEvent], *, sse: bool) -> bytes:
    enc = StreamEncoder("anthropic/claude-sonnet-4-5", sse=sse, include_thoughts=True)
    return b"".join(enc.encode(ev) for ev in events)


def test_answer_json_and_stream() -> None:
    body = encode_response(anthropic_answer(), "anthropic/claude-sonnet-4-5", True)
    golden("answer.json", body)
    sse = stream(anthropic_events(), sse=True)
    golden("answer.sse", sse)
    array = stream(anthropic_events(), sse=False)
    golden("answer_array.json", orjson.loads(array))
    # The stream adds up to the answer: same parts once merged, same finish and usage.
    chunks = [orjson.loads(e.data) for e in SSEParser().feed(sse)]
    assert chunks == orjson.loads(array)
    parts = [p for c in chunks for p in (c["candidates"][0].get("content") or {}).get("parts", [])]
    calls = [p for p in parts if "functionCall" in p]
    assert calls == [p for p in body["candidates"][0]["content"]["parts"] if "functionCall" in p]
    assert chunks[-1]["usageMetadata"] == body["usageMetadata"]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_answer_sent_back_restores_anthropics_thinking() -> None:
    """Whatever the client keeps of thought parts, the call's signature brings Anthropic's
    signed thinking back, in front of the tool_use, as Anthropic requires."""
    body = encode_response(anthropic_answer(), "anthropic/claude-sonnet-4-5", True)
    model_parts = body["candidates"][0]["content"]["parts"]
    without_thoughts = [p for p in model_parts if not p.get("thought")]
    for kept in (model_parts, without_thoughts):
        history = {
            "contents": [
                {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": kept},
                {
                    "role": "user",
                    "parts": [
                        {
                            "functionResponse": {
                                "id": "toolu_01",
                                "name": "get_weather",
                                "response": {"output": "sunny"},
                            }
                        }
                    ],
                },
            ]
        }
        req = decode_request(history, "anthropic/claude-sonnet-4-5", stream=False)
        sent = anthropic_messages.encode_request(req, "claude-sonnet-4-5", stream=False)
        assistant = sent["messages"][1]["content"]
        assert [b["type"] for b in assistant] == ["thinking", "text", "tool_use"]
        assert assistant[0]["signature"] == SIGNATURE
        assert assistant[0]["thinking"] == "Weather needs a tool."
        assert assistant[2]["id"] == "toolu_01"
        assert sent["messages"][2]["content"][0]["tool_use_id"] == "toolu_01"


def test_an_error_mid_stream_ends_it_in_googles_shape() -> None:
    events = [*anthropic_events()[:8], StreamError(UpstreamError("anthropic: overloaded"))]
    sse = stream(events, sse=True)
    last = [orjson.loads(e.data) for e in SSEParser().feed(sse)][-1]
    assert last == {
        "error": {"code": 502, "message": "anthropic: overloaded", "status": "UNAVAILABLE"}
    }
    array = orjson.loads(stream(events, sse=False))
    assert array[-1] == last


def test_gemini_answer_reaches_a_gemini_client_unchanged() -> None:
    """Same wire: the upstream's part keys, candidate and body extras and usage details."""
    upstream = load("gemini_answer.json")
    resp = decode_response(upstream)
    assert resp.protocol == "gemini"
    out = encode_response(resp, "gemini-2.5-flash", True)
    expected = orjson.loads(orjson.dumps(upstream))
    # The door adds the call id a Gemini client echoes back (Gemini CLI does).
    for part in out["candidates"][0]["content"]["parts"]:
        if "functionCall" in part:
            assert part["functionCall"].pop("id").startswith("call_resp-1_0_lookup")
    assert out == expected


def test_gemini_stream_reaches_a_gemini_client_unchanged() -> None:
    upstream = load("gemini_answer.json")
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in split_chunks(upstream))
    parser, decoder = SSEParser(), StreamDecoder(model="gemini-2.5-flash")
    events = [ev for sse in parser.feed(raw) for ev in decoder.feed(sse)] + decoder.close()
    out = stream_gemini(events)
    text = "".join(
        p.get("text", "")
        for c in out
        for p in (c["candidates"][0].get("content") or {}).get("parts", [])
        if not p.get("thought")
    )
    assert text == "Paris is sunny."
    parts = [p for c in out for p in (c["candidates"][0].get("content") or {}).get("parts", [])]
    assert {"thoughtSignature": "R2VtaW5pVGV4dA==", "text": "."} in parts
    merged: dict[str, Any] = {}
    for c in out:
        merged.update({k: v for k, v in c["candidates"][0].items() if k != "content"})
    assert merged["safetyRatings"] == upstream["candidates"][0]["safetyRatings"]
    assert merged["groundingMetadata"] == upstream["candidates"][0]["groundingMetadata"]


def split_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole answer as Gemini streams it: one part per chunk, the rest on the last."""
    cand = body["candidates"][0]
    parts = cand["content"]["parts"]
    chunks = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        c: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        if last:
            c.update({k: v for k, v in cand.items() if k not in ("content", "index")})
        chunks.append(
            {
                "candidates": [c],
                "usageMetadata": body["usageMetadata"],
                "modelVersion": body["modelVersion"],
                "responseId": body["responseId"],
            }
        )
    return chunks


def stream_gemini(events: list[StreamEvent]) -> list[dict[str, Any]]:
    enc = StreamEncoder("gemini-2.5-flash", sse=True, include_thoughts=True)
    raw = b"".join(enc.encode(ev) for ev in events)
    return [orjson.loads(e.data) for e in SSEParser().feed(raw)]


def test_several_candidates_same_wire() -> None:
    """candidateCount 2 to Gemini: both candidates reach the client (not streamed; a stream
    carries one, so there it is refused)."""
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"candidateCount": 2}}
    req = decode_request(body, "gemini-2.5-flash", stream=False)
    assert encode_request(req, "gemini-2.5-flash", stream=False)["generationConfig"] == {
        "candidateCount": 2
    }
    second = {"content": {"parts": [{"text": "Hello!"}], "role": "model"}, "index": 1}
    upstream = {
        "candidates": [
            {"content": {"parts": [{"text": "Hi."}], "role": "model"}, "finishReason": "STOP"},
            {**second, "finishReason": "STOP"},
        ],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 4, "totalTokenCount": 5},
        "responseId": "r2",
    }
    out = encode_response(decode_response(upstream), "gemini-2.5-flash", False)
    assert [c["content"]["parts"][0]["text"] for c in out["candidates"]] == ["Hi.", "Hello!"]
    with pytest.raises(InvalidRequest) as refused:
        decode_request(body, "gemini-2.5-flash", stream=True)
    assert refused.value.param == "generationConfig.candidateCount"
