"""Golden files: Gemini wire shapes as the API produces them, decoded to the IR; IR encoded to the
request bodies Gemini expects. Clients never speak Gemini, so only the outbound directions exist:
IR -> request, response/stream/error -> IR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from backend.ir.errors import (
    InvalidRequest,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
)
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolArgsDelta,
)
from backend.protocols.gemini import (
    StreamDecoder,
    decode_count_tokens,
    decode_embedding_response,
    decode_error,
    decode_response,
    encode_count_tokens_request,
    encode_embedding_request,
    encode_request,
)
from backend.protocols.gemini.toolids import make_tool_call_id, signature_from_id
from backend.protocols.sse import SSEParser
from tests.protocols.gemini.ir_samples import (
    LONDON_ID,
    PARIS_ID,
    RID,
    SIGNATURE,
    history_from_other_provider,
    tool_round_trip,
)

GOLDEN = Path(__file__).parent / "golden"


def load(name: str) -> Any:
    return orjson.loads((GOLDEN / name).read_bytes())


def decode_stream(raw: bytes, *, step: int | None = None) -> list[StreamEvent]:
    """Feed ``raw`` through SSEParser + StreamDecoder, whole or ``step`` bytes at a time."""
    parser, decoder = SSEParser(), StreamDecoder(model="fallback-model")
    pieces = [raw] if step is None else [raw[i : i + step] for i in range(0, len(raw), step)]
    out: list[StreamEvent] = []
    for piece in pieces:
        for ev in parser.feed(piece):
            out += decoder.feed(ev)
    for ev in parser.close():
        out += decoder.feed(ev)
    return out + decoder.close()


# -- requests ------------------------------------------------------------------------------------


def test_tool_round_trip_request_matches_golden() -> None:
    body = encode_request(tool_round_trip(), "gemini-3-pro-preview", stream=False)
    assert body == load("request_tool_round_trip.json")


def test_tool_round_trip_request_details() -> None:
    body = encode_request(tool_round_trip(), "gemini-3-pro-preview", stream=True)
    contents = body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    calls = [p for p in contents[1]["parts"] if "functionCall" in p]
    # The signature the answer carried goes back verbatim on the first call only.
    assert calls[0]["thoughtSignature"] == SIGNATURE
    assert "thoughtSignature" not in calls[1]
    responses = [p["functionResponse"] for p in contents[2]["parts"] if "functionResponse" in p]
    # Both answers to the parallel call sit in one content, named after their calls.
    assert responses == [
        {"name": "get_weather", "response": {"output": "18C, sunny"}},
        {"name": "get_weather", "response": {"error": "station offline"}},
    ]
    assert body["systemInstruction"]["parts"][1] == {"text": "Answer in French."}
    assert "model" not in body and "stream" not in body
    serialized = orjson.dumps(body)
    for rejected in (b"additionalProperties", b"$schema", b"exclusiveMinimum", b"thinking"):
        assert rejected not in serialized


def test_foreign_history_gets_placeholder_signature_and_response_schema() -> None:
    body = encode_request(history_from_other_provider(), "gemini-3-pro-preview", stream=True)
    assert body == load("request_foreign_history.json")
    call = body["contents"][1]["parts"][0]
    assert call["thoughtSignature"] == "skip_thought_signature_validator"
    # A function without arguments is declared without ``parameters`` (empty OBJECT is a 400).
    assert body["tools"][0]["functionDeclarations"] == [{"name": "get_weather"}]


def test_count_tokens_request_wraps_the_whole_request() -> None:
    body = encode_count_tokens_request(history_from_other_provider(), "gemini-3-pro-preview")
    assert body == load("request_count_tokens.json")
    assert body["generateContentRequest"]["model"] == "models/gemini-3-pro-preview"


def test_embedding_request_matches_golden() -> None:
    req = EmbeddingRequest(model="alias", input=["hello", "world"], dimensions=4)
    assert encode_embedding_request(req, "gemini-embedding-001") == load("request_embed.json")
    with pytest.raises(InvalidRequest):
        encode_embedding_request(EmbeddingRequest(model="m", input=[[1, 2]]), "m")


def test_tool_choice_modes() -> None:
    base = history_from_other_provider()
    modes = {}
    for mode in ("auto", "none", "required"):
        from backend.ir.chat import ToolChoice

        base.tool_choice = ToolChoice(mode)  # type: ignore[arg-type]
        body = encode_request(base, "m", stream=False)
        modes[mode] = body["toolConfig"]["functionCallingConfig"]
        assert body["tools"], "tools stay declared so history calls remain valid"
    assert modes == {
        "auto": {"mode": "AUTO"},
        "none": {"mode": "NONE"},
        "required": {"mode": "ANY"},
    }


def test_json_object_response_format() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("hi")])],
        response_format={"type": "json_object"},
    )
    assert encode_request(req, "m", stream=False)["generationConfig"] == {
        "responseMimeType": "application/json"
    }


def test_tool_result_without_its_call_is_the_callers_error() -> None:
    req = ChatRequest(
        model="m", messages=[Message("user", [ToolResultPart("call_missing", [TextPart("x")])])]
    )
    with pytest.raises(InvalidRequest, match="call_missing"):
        encode_request(req, "m", stream=False)


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("assistant", [ToolCallPart("call_1", "f", arguments)])],
    )
    with pytest.raises(InvalidRequest):
        encode_request(req, "m", stream=False)


def test_empty_arguments_are_an_empty_object() -> None:
    req = ChatRequest(model="m", messages=[Message("assistant", [ToolCallPart("c", "f", "")])])
    part = encode_request(req, "m", stream=False)["contents"][0]["parts"][0]
    assert part["functionCall"] == {"name": "f", "args": {}}


# -- responses -----------------------------------------------------------------------------------


def test_text_response() -> None:
    resp = decode_response(load("response_text.json"))
    assert resp.id == "nM6XaKXjOoqNz7IP8LnNsAk"
    assert resp.model == "gemini-2.5-flash"
    assert resp.content == [TextPart("The capital of France is Paris.")]
    assert resp.finish_reason == "stop"
    # Thinking tokens are billed as output.
    assert resp.usage == Usage(input_tokens=8, output_tokens=38, reasoning_tokens=31)


def test_parallel_tool_calls_response() -> None:
    resp = decode_response(load("response_tool_calls.json"))
    assert resp.finish_reason == "tool_calls"
    rid = "4s2XaPuTHYzUz7IPqKP-uAg"
    assert resp.content == [
        ToolCallPart(
            make_tool_call_id(rid, 0, "get_weather", SIGNATURE),
            "get_weather",
            '{"city":"Paris","unit":"celsius"}',
        ),
        ToolCallPart(make_tool_call_id(rid, 1, "get_weather"), "get_weather", '{"city":"London"}'),
    ]
    first, second = resp.content
    assert isinstance(first, ToolCallPart) and isinstance(second, ToolCallPart)
    assert first.id != second.id
    assert signature_from_id(first.id) == SIGNATURE
    assert signature_from_id(second.id) is None
    assert resp.usage == Usage(input_tokens=71, output_tokens=117, reasoning_tokens=87)


def test_ids_are_safe_for_every_client_protocol() -> None:
    resp = decode_response(load("response_tool_calls.json"))
    for part in resp.content:
        assert isinstance(part, ToolCallPart)
        assert all(c.isalnum() or c in "_-" for c in part.id), part.id


def test_tool_call_answer_round_trips_into_next_request() -> None:
    """The ids a client echoes back bring the right name and the exact signature to Gemini."""
    resp = decode_response(load("response_tool_calls.json"))
    calls = [p for p in resp.content if isinstance(p, ToolCallPart)]
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("Weather?")]),
            Message("assistant", list(resp.content)),
            Message("user", [ToolResultPart(c.id, [TextPart("ok")]) for c in calls]),
        ],
    )
    body = encode_request(req, "m", stream=False)
    sent_calls = body["contents"][1]["parts"]
    original = load("response_tool_calls.json")["candidates"][0]["content"]["parts"]
    assert sent_calls == original
    assert [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]] == [
        "get_weather",
        "get_weather",
    ]


def test_thoughts_kept_and_cache_counted() -> None:
    resp = decode_response(load("response_thought_and_cache.json"))
    assert resp.content == [
        ThinkingPart("**Weighing the question**\n\nThe user asks for a sum."),
        TextPart("2 + 2 = 4"),
    ]
    assert resp.usage == Usage(
        input_tokens=2100, output_tokens=50, cached_tokens=2048, reasoning_tokens=44
    )


def test_max_tokens_spent_thinking_has_no_parts() -> None:
    resp = decode_response(load("response_max_tokens_no_parts.json"))
    assert resp.content == []
    assert resp.finish_reason == "length"
    assert resp.usage == Usage(input_tokens=12, output_tokens=49, reasoning_tokens=49)


def test_blocked_prompt_is_content_filter() -> None:
    resp = decode_response(load("response_prompt_blocked.json"))
    assert resp.content == [] and resp.finish_reason == "content_filter"
    assert resp.usage.input_tokens == 19


def test_safety_stop_is_content_filter() -> None:
    assert decode_response(load("response_safety.json")).finish_reason == "content_filter"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {"candidates": "x"},
        {"candidates": [{"content": {"parts": "x"}}]},
        {"usageMetadata": {}},
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]},
    ],
)
def test_malformed_200_body_is_upstream_error(body: Any) -> None:
    with pytest.raises(UpstreamError):
        decode_response(body)


def test_embeddings_and_count_tokens() -> None:
    resp = decode_embedding_response(load("embed_response.json"), "gemini-embedding-001")
    assert len(resp.vectors) == 2 and resp.vectors[0][3] == pytest.approx(-0.07285547)
    assert resp.model == "gemini-embedding-001"
    assert decode_count_tokens(load("count_tokens_response.json")) == 31
    assert decode_count_tokens({}) == 0  # proto3 JSON omits a zero count
    with pytest.raises(UpstreamError):
        decode_embedding_response({"embeddings": [{}]}, "m")


# -- streams -------------------------------------------------------------------------------------


def test_golden_streams_keep_crlf_framing() -> None:
    assert b"\r\n\r\n" in (GOLDEN / "stream_text.sse").read_bytes()


def test_text_stream() -> None:
    events = decode_stream((GOLDEN / "stream_text.sse").read_bytes())
    assert events == [
        StreamStart(id="8dGXaPK4AqWEz7IPzYKmsQk", model="gemini-2.5-flash"),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="The"),
        TextDelta(index=0, text=" capital of France"),
        TextDelta(index=0, text=" is Paris."),
        BlockStop(index=0),
        # Only the last chunk's usage is complete.
        StreamEnd(
            finish_reason="stop", usage=Usage(input_tokens=8, output_tokens=38, reasoning_tokens=31)
        ),
    ]


@pytest.mark.parametrize("step", [1, 7, 64])
def test_stream_decoding_does_not_depend_on_chunking(step: int) -> None:
    for name in ("stream_text.sse", "stream_tool_calls.sse"):
        raw = (GOLDEN / name).read_bytes()
        assert decode_stream(raw, step=step) == decode_stream(raw)


def test_tool_call_stream_matches_non_streamed_answer() -> None:
    events = decode_stream((GOLDEN / "stream_tool_calls.sse").read_bytes())
    assert events == [
        StreamStart(id=RID, model="gemini-3-pro-preview"),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Let me check."),
        BlockStop(index=0),
        BlockStart(index=1, kind="tool_call", tool_call_id=PARIS_ID, tool_name="get_weather"),
        ToolArgsDelta(index=1, partial_json='{"city":"Paris","unit":"celsius"}'),
        BlockStop(index=1),
        BlockStart(index=2, kind="tool_call", tool_call_id=LONDON_ID, tool_name="get_weather"),
        ToolArgsDelta(index=2, partial_json='{"city":"London"}'),
        BlockStop(index=2),
        StreamEnd(
            finish_reason="tool_calls",
            usage=Usage(input_tokens=71, output_tokens=117, reasoning_tokens=87),
        ),
    ]
    whole = decode_response(load("response_text_then_tools.json"))
    streamed_ids = [e.tool_call_id for e in events if isinstance(e, BlockStart) and e.tool_call_id]
    assert streamed_ids == [p.id for p in whole.content if isinstance(p, ToolCallPart)]


def test_truncated_stream_is_a_stream_error() -> None:
    events = decode_stream((GOLDEN / "stream_truncated.sse").read_bytes())
    assert events[-2] == BlockStop(index=0)
    last = events[-1]
    assert isinstance(last, StreamError) and isinstance(last.error, UpstreamError)
    assert "truncated" in last.error.message and last.error.retryable


def test_empty_stream_is_truncated() -> None:
    events = StreamDecoder().close()
    assert len(events) == 1 and isinstance(events[0], StreamError)


def test_error_inside_stream() -> None:
    events = decode_stream((GOLDEN / "stream_error_midway.sse").read_bytes())
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, UpstreamUnavailable)
    assert "overloaded" in events[-1].error.message
    # Nothing follows an error, not even from close().
    assert not any(isinstance(e, StreamEnd) for e in events)


def test_invalid_json_chunk_is_a_stream_error() -> None:
    parser, decoder = SSEParser(), StreamDecoder()
    out = [e for ev in parser.feed(b"data: {oops\r\n\r\n") for e in decoder.feed(ev)]
    assert len(out) == 1 and isinstance(out[0], StreamError)
    assert decoder.close() == []


def test_stream_without_model_version_uses_requested_model() -> None:
    decoder = StreamDecoder(model="gemini-2.5-flash")
    chunk = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}
    from backend.protocols.sse import SSEEvent

    first = decoder.feed(SSEEvent(None, orjson.dumps(chunk).decode()))[0]
    assert isinstance(first, StreamStart)
    assert first.model == "gemini-2.5-flash" and first.id.startswith("gemini-")


# -- errors --------------------------------------------------------------------------------------


def test_bad_key_is_a_provider_credential_failure() -> None:
    err = decode_error(400, (GOLDEN / "error_api_key_invalid.json").read_bytes())
    assert type(err) is UpstreamError
    assert err.status == 502 and err.retryable and err.code == "upstream_auth"


def test_missing_key_is_a_provider_credential_failure() -> None:
    err = decode_error(403, (GOLDEN / "error_permission_denied.json").read_bytes())
    assert type(err) is UpstreamError and err.status == 502 and err.retryable


def test_unsupported_location_is_the_providers_failure() -> None:
    err = decode_error(400, (GOLDEN / "error_location.json").read_bytes())
    assert type(err) is UpstreamError and err.retryable


def test_invalid_argument_is_the_callers_error() -> None:
    err = decode_error(400, (GOLDEN / "error_invalid_argument.json").read_bytes())
    assert type(err) is InvalidRequest and not err.retryable
    assert "contents is not specified" in err.message


def test_rate_limit_and_overload() -> None:
    assert isinstance(
        decode_error(429, (GOLDEN / "error_rate_limited.json").read_bytes()), RateLimited
    )
    err = decode_error(503, (GOLDEN / "error_overloaded.json").read_bytes())
    assert isinstance(err, UpstreamUnavailable) and err.retryable


def test_non_json_and_list_error_bodies() -> None:
    err = decode_error(404, b"<html>Not Found</html>")
    assert isinstance(err, NotFound) and "Not Found" in err.message
    wrapped = (
        b'[{"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}}]'
    )
    assert isinstance(decode_error(404, wrapped), NotFound)
    assert isinstance(decode_error(500, b""), UpstreamError)
