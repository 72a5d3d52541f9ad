"""Golden files: Ollama native wire shapes decoded to the IR; IR encoded to ``/api/chat`` and
``/api/embed`` bodies. Clients never speak Ollama, so only the outbound directions exist.
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
    ToolChoice,
    ToolResultPart,
    Usage,
)
from backend.ir.errors import InvalidRequest, NotFound, UpstreamError, UpstreamUnavailable
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
from backend.protocols.ollama import (
    StreamDecoder,
    decode_embedding_response,
    decode_error,
    decode_response,
    decode_tags,
    encode_embedding_request,
    encode_request,
)
from tests.protocols.ollama.ir_samples import tool_round_trip

GOLDEN = Path(__file__).parent / "golden"


def load(name: str) -> Any:
    return orjson.loads((GOLDEN / name).read_bytes())


def decode_stream(raw: bytes) -> list[StreamEvent]:
    decoder = StreamDecoder(model="fallback-model")
    out: list[StreamEvent] = []
    for line in raw.split(b"\n"):
        out += decoder.feed_line(line)
    return out + decoder.close()


# -- requests ------------------------------------------------------------------------------------


def test_tool_round_trip_request_matches_golden() -> None:
    assert encode_request(tool_round_trip(), "qwen3:8b", stream=True) == load(
        "request_tool_round_trip.json"
    )


def test_tool_round_trip_details() -> None:
    body = encode_request(tool_round_trip(), "qwen3:8b", stream=False)
    assert body["stream"] is False
    assistant = body["messages"][2]
    # Ollama wants an object, never the JSON text the IR carries.
    assert assistant["tool_calls"][1]["function"]["arguments"] == {"city": "London"}
    tools = [m for m in body["messages"] if m["role"] == "tool"]
    assert [(m["tool_name"], m["content"]) for m in tools] == [
        ("get_weather", "18C, sunny"),
        ("get_weather", "Error: station offline"),
    ]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    assert b"thinking" not in orjson.dumps(body) and b"anthropic-only" not in orjson.dumps(body)


def test_tool_choice_none_and_defaults() -> None:
    req = tool_round_trip()
    req.tool_choice = ToolChoice("none")
    assert "tools" not in encode_request(req, "m", stream=True)
    req.tool_choice = None
    tools = encode_request(req, "m", stream=True)["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather", "get_time"]
    # A function without a schema still gets an (empty) object schema.
    assert tools[1]["function"]["parameters"] == {"type": "object", "properties": {}}


def test_minimal_request_and_json_object_format() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("hi")])],
        response_format={"type": "json_object"},
    )
    assert encode_request(req, "llama3.2", stream=False) == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "format": "json",
    }


def test_tool_result_without_its_call_is_the_callers_error() -> None:
    req = ChatRequest(model="m", messages=[Message("user", [ToolResultPart("nope", [])])])
    with pytest.raises(InvalidRequest, match="nope"):
        encode_request(req, "m", stream=True)


def test_string_arguments_must_be_an_object() -> None:
    req = ChatRequest(model="m", messages=[Message("assistant", [ToolCallPart("c", "f", '"x"')])])
    with pytest.raises(InvalidRequest):
        encode_request(req, "m", stream=True)


def test_embedding_request() -> None:
    req = EmbeddingRequest(model="alias", input=["hello", "world"], dimensions=4)
    assert encode_embedding_request(req, "nomic-embed-text") == load("request_embed.json")
    with pytest.raises(InvalidRequest):
        encode_embedding_request(EmbeddingRequest(model="m", input=[[1, 2]]), "m")


# -- responses -----------------------------------------------------------------------------------


def test_text_response() -> None:
    resp = decode_response(load("response_text.json"))
    assert resp.content == [TextPart("The capital of France is Paris.")]
    assert resp.model == "llama3.2:latest"
    assert resp.finish_reason == "stop"
    assert resp.usage == Usage(input_tokens=31, output_tokens=8)
    assert resp.created == 1795986251  # 2026-11-29T21:04:11Z, nanoseconds dropped
    assert resp.id.startswith("ollama-")
    assert decode_response(load("response_text.json")).id == resp.id


def test_tool_calls_response() -> None:
    resp = decode_response(load("response_tool_calls.json"))
    assert resp.finish_reason == "tool_calls"  # Ollama itself says "stop"
    calls = [p for p in resp.content if isinstance(p, ToolCallPart)]
    thinking = "The user wants the weather in two cities, so I call the tool twice."
    # Thinking is kept; empty content adds no text part.
    assert resp.content == [ThinkingPart(thinking), *calls]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_weather", {"city": "London"}),
    ]
    rid = resp.id.removeprefix("ollama-")[:8]
    assert [c.id for c in calls] == [f"call_{rid}_0_get_weather", f"call_{rid}_1_get_weather"]
    other = decode_response({**load("response_tool_calls.json"), "created_at": "2026-11-30T00:00Z"})
    other_ids = [p.id for p in other.content if isinstance(p, ToolCallPart)]
    assert len(other_ids) == 2 and set(other_ids).isdisjoint(c.id for c in calls)


def test_tool_call_id_from_ollama_is_kept() -> None:
    resp = decode_response(load("response_tool_call_with_id.json"))
    assert [p.id for p in resp.content if isinstance(p, ToolCallPart)] == ["call_x1c4qk2n"]


def test_answer_round_trips_into_next_request() -> None:
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
    body = encode_request(req, "qwen3:8b", stream=True)
    original = load("response_tool_calls.json")["message"]["tool_calls"]
    assert [c["function"] for c in body["messages"][1]["tool_calls"]] == [
        {"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in original
    ]
    assert [m["tool_name"] for m in body["messages"][2:]] == ["get_weather", "get_weather"]


def test_length_response() -> None:
    resp = decode_response(load("response_length.json"))
    assert resp.finish_reason == "length"
    assert resp.content == [TextPart("Once upon a time, in a")]


@pytest.mark.parametrize(
    "body",
    [[], {"done": True}, {"message": "x"}, {"message": {"tool_calls": [{"function": {}}]}},
     {"error": "boom"}],
)  # fmt: skip
def test_malformed_200_body_is_upstream_error(body: Any) -> None:
    with pytest.raises(UpstreamError):
        decode_response(body)


def test_embeddings_and_tags() -> None:
    resp = decode_embedding_response(load("embed_response.json"), "nomic-embed-text")
    assert len(resp.vectors) == 2 and resp.vectors[1][1] == pytest.approx(0.060711657)
    assert resp.usage.input_tokens == 8
    assert decode_tags(load("tags.json")) == ["llama3.2:latest", "nomic-embed-text:latest"]
    with pytest.raises(UpstreamError):
        decode_tags({"nope": 1})


# -- streams -------------------------------------------------------------------------------------


def test_text_stream() -> None:
    events = decode_stream((GOLDEN / "stream_text.ndjson").read_bytes())
    start = events[0]
    assert isinstance(start, StreamStart) and start.model == "llama3.2:latest"
    assert start.created == 1795986300
    assert events[1:] == [
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="The"),
        TextDelta(index=0, text=" capital of France"),
        TextDelta(index=0, text=" is Paris."),
        BlockStop(index=0),
        StreamEnd(finish_reason="stop", usage=Usage(input_tokens=31, output_tokens=8)),
    ]


def test_tool_call_stream() -> None:
    events = decode_stream((GOLDEN / "stream_tool_calls.ndjson").read_bytes())
    start = events[0]
    assert isinstance(start, StreamStart)
    rid = start.id.removeprefix("ollama-")[:8]
    assert events[1:] == [
        BlockStart(index=0, kind="thinking"),
        ThinkingDelta(index=0, thinking="Two cities."),
        BlockStop(index=0),
        BlockStart(index=1, kind="text"),
        TextDelta(index=1, text="Let me check."),
        BlockStop(index=1),
        BlockStart(
            index=2, kind="tool_call", tool_call_id=f"call_{rid}_0_get_weather",
            tool_name="get_weather",
        ),
        ToolArgsDelta(index=2, partial_json='{"city":"Paris","unit":"celsius"}'),
        BlockStop(index=2),
        BlockStart(
            index=3, kind="tool_call", tool_call_id=f"call_{rid}_1_get_weather",
            tool_name="get_weather",
        ),
        ToolArgsDelta(index=3, partial_json='{"city":"London"}'),
        BlockStop(index=3),
        StreamEnd(finish_reason="tool_calls", usage=Usage(input_tokens=188, output_tokens=61)),
    ]  # fmt: skip


def test_truncated_stream_is_a_stream_error() -> None:
    events = decode_stream((GOLDEN / "stream_truncated.ndjson").read_bytes())
    assert events[-2] == BlockStop(index=0)
    last = events[-1]
    assert isinstance(last, StreamError) and "truncated" in last.error.message
    assert last.error.retryable


def test_error_line_in_stream() -> None:
    events = decode_stream((GOLDEN / "stream_error.ndjson").read_bytes())
    last = events[-1]
    assert isinstance(last, StreamError) and "unexpected EOF" in last.error.message
    assert not any(isinstance(e, StreamEnd) for e in events)


def test_garbage_line_is_a_stream_error_and_ends_the_stream() -> None:
    decoder = StreamDecoder()
    out = decoder.feed_line(b"{not json")
    assert len(out) == 1 and isinstance(out[0], StreamError)
    assert decoder.feed_line(b'{"done": true}') == [] and decoder.close() == []


# -- errors --------------------------------------------------------------------------------------


def test_errors() -> None:
    err = decode_error(404, (GOLDEN / "error_not_found.json").read_bytes())
    assert isinstance(err, NotFound) and "llama9" in err.message and not err.retryable
    assert isinstance(decode_error(400, b'{"error":"invalid format"}'), InvalidRequest)
    assert isinstance(decode_error(503, b"server busy"), UpstreamUnavailable)
    assert decode_error(500, b"").retryable
