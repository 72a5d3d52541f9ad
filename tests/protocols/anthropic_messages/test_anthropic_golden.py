"""Golden round trips through the IR, compared byte for byte.

``golden/`` holds wire data in the shapes the current Messages API produces: client requests,
upstream answers (``*.json``) and SSE transcripts (``*.sse``), and, for answers, what the gateway
must send a client (``*.client.json`` / ``*.client.sse``). The gateway's rendition differs from
the upstream's only where the protocol allows: no ``ping`` frames, ``message`` keys in the
order of the API reference, usage without the ``cache_creation`` breakdown and
``service_tier``, and complete usage in ``message_delta`` (the SDK reads input tokens there).
``test_client_rendition_is_the_upstream_minus_allowed_differences`` checks exactly that.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from backend.ir.errors import UpstreamUnavailable
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
from backend.protocols.anthropic_messages import (
    StreamDecoder,
    StreamEncoder,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from backend.protocols.anthropic_messages.vocab import USAGE_FIELDS
from backend.protocols.sse import SSEParser

GOLDEN = Path(__file__).parent / "golden"
RESPONSES = ["response_text", "response_tool_use", "response_thinking"]
STREAMS = ["stream_text", "stream_tool_use", "stream_thinking", "stream_error"]
#: Usage keys the API sends that the gateway does not reproduce: none since the passthrough
#: (issue 14): usage details travel as extras to an Anthropic client.
UNREPRODUCED_USAGE: set[str] = set()


def read(name: str) -> bytes:
    return (GOLDEN / name).read_bytes()


def pretty(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n"


def decode_sse(raw: bytes, chunk: int = 0) -> list[StreamEvent]:
    """Decode a transcript, optionally fed in ``chunk``-byte slices (as a socket delivers it)."""
    parser, decoder = SSEParser(), StreamDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    pieces = [raw] if not chunk else [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    events: list[StreamEvent] = []
    for piece in pieces:
        for sse in parser.feed(utf8.decode(piece)):
            events.extend(decoder.feed(sse))
    for sse in parser.close():
        events.extend(decoder.feed(sse))
    return events + decoder.close()


def comparable(events: list[StreamEvent]) -> list[Any]:
    """Events with errors as (class, message): exceptions do not compare by value."""
    return [(type(e.error), e.error.message) if isinstance(e, StreamError) else e for e in events]


def encode_sse(events: list[StreamEvent], model: str) -> bytes:
    encoder = StreamEncoder(model)
    return b"".join(encoder.encode(ev) for ev in events)


def frames(raw: bytes) -> list[tuple[str | None, Any]]:
    parser = SSEParser()
    return [(ev.event, orjson.loads(ev.data)) for ev in parser.feed(raw) + parser.close()]


# -- requests ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["request_agent.json", "request_vision.json"])
def test_request_round_trip_is_byte_identical(name: str) -> None:
    raw = read(name)
    body = orjson.loads(raw)
    req = decode_request(body, {"anthropic-version": "2023-06-01"})
    assert pretty(encode_request(req, body["model"], stream=req.stream)) == raw


def test_request_canonical_form() -> None:
    """Equivalent spellings converge: merged same-role turns, strings for lone text blocks,
    ``null`` keys and ``stream: false`` omitted; an unknown field passes through verbatim."""
    req = decode_request(orjson.loads(read("request_canonical.in.json")))
    out = encode_request(req, "claude-opus-4-1-20250805", stream=False)
    assert pretty(out) == read("request_canonical.out.json")


def test_agent_request_ir() -> None:
    req = decode_request(
        orjson.loads(read("request_agent.json")),
        {"Anthropic-Beta": "interleaved-thinking-2025-05-14", "x-api-key": "sk-secret"},
    )
    assert req.stream is True and req.max_tokens == 32000
    assert [p.text for p in req.system][1].startswith("Working directory")
    assert req.tool_choice == ToolChoice("auto") and req.parallel_tool_calls is False
    assert req.thinking == {"type": "enabled", "budget_tokens": 10000}
    assert req.metadata == {"user_id": "user_7f3a9c_account_2b1e_session_91d4"}
    assert req.extra["service_tier"] == "auto" and "context_management" in req.extra
    assert req.forward_headers == {"anthropic-beta": "interleaved-thinking-2025-05-14"}
    assistant = req.messages[1].parts
    assert isinstance(assistant[0], ThinkingPart) and assistant[0].signature
    assert assistant[2] == ToolCallPart(
        "toolu_01A09q90qw90lq917835lq9",
        "Bash",
        '{"command":"pytest tests/test_checkout.py -x","timeout":120000}',
    )
    first_result = req.messages[2].parts[0]
    assert isinstance(first_result, ToolResultPart) and first_result.is_error
    assert req.messages[3].parts[0] == ThinkingPart(redacted_data=assistant_redacted(req))
    result = req.messages[4].parts[0]
    assert isinstance(result, ToolResultPart)
    text, image = result.content
    assert isinstance(text, TextPart) and text.text.startswith("def rate")
    assert isinstance(image, ImagePart) and image.media_type == "image/png"
    assert image.data and image.data.startswith("iVBORw0KGgo") and image.url is None
    assert req.tools[1].parameters["required"] == ["file_path"]


def assistant_redacted(req: Any) -> str:
    part = req.messages[3].parts[0]
    assert isinstance(part, ThinkingPart) and part.redacted_data
    return str(part.redacted_data)


def test_vision_request_ir() -> None:
    req = decode_request(orjson.loads(read("request_vision.json")))
    parts = req.messages[0].parts
    assert parts[0] == ImagePart(
        url="https://upload.wikimedia.org/wikipedia/commons/3/3a/Cat03.jpg"
    )
    assert isinstance(parts[1], ImagePart) and parts[1].media_type == "image/jpeg"
    assert req.tool_choice == ToolChoice("tool", "classify")
    assert req.stop == ["\n\nHuman:", "</answer>"]
    assert (req.temperature, req.top_p, req.extra["top_k"]) == (0.2, 0.9, 40)
    assert req.system == [TextPart("Answer in one word.")]


# -- responses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", RESPONSES)
def test_response_round_trip(name: str) -> None:
    upstream = orjson.loads(read(f"{name}.json"))
    client_raw = read(f"{name}.client.json")
    resp = decode_response(upstream)
    assert orjson.dumps(encode_response(resp, upstream["model"])) + b"\n" == client_raw
    # The client rendition decodes to the same IR: nothing was lost or invented.
    assert decode_response(client_raw) == resp


@pytest.mark.parametrize("name", RESPONSES)
def test_client_response_is_the_upstream_minus_allowed_differences(name: str) -> None:
    upstream = orjson.loads(read(f"{name}.json"))
    client = orjson.loads(read(f"{name}.client.json"))
    for key in UNREPRODUCED_USAGE:
        upstream["usage"].pop(key, None)
    assert client == upstream


def test_response_ir_usage_includes_cache() -> None:
    resp = decode_response(read("response_text.json"))
    assert resp.usage == Usage(
        input_tokens=12 + 1024 + 2048, output_tokens=12, cached_tokens=2048, cache_write_tokens=1024
    )


def test_thinking_response_ir() -> None:
    resp = decode_response(read("response_thinking.json"))
    assert resp.finish_reason == "stop_sequence" and resp.stop_sequence == "</answer>"
    thinking, redacted, text = resp.content
    assert isinstance(thinking, ThinkingPart) and thinking.signature
    assert isinstance(redacted, ThinkingPart) and redacted.redacted_data
    assert text == TextPart("<answer>12231")


def test_tool_use_response_ir() -> None:
    resp = decode_response(read("response_tool_use.json"))
    assert resp.finish_reason == "tool_calls"
    calls = [p for p in resp.content if isinstance(p, ToolCallPart)]
    assert [c.arguments for c in calls] == [
        '{"location":"San Francisco, CA","unit":"celsius"}',
        '{"location":"Paris, France","unit":"celsius"}',
    ]


# -- streams -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", STREAMS)
def test_stream_round_trip_reproduces_transcript(name: str) -> None:
    events = decode_sse(read(f"{name}.sse"))
    assert isinstance(events[0], StreamStart)
    assert encode_sse(events, events[0].model) == read(f"{name}.client.sse")


@pytest.mark.parametrize("name", STREAMS)
def test_client_transcript_is_a_fixed_point(name: str) -> None:
    client = read(f"{name}.client.sse")
    events = decode_sse(client)
    upstream = decode_sse(read(f"{name}.sse"))
    if isinstance(upstream[-1], StreamError):
        # The gateway names the provider in error messages; a second hop names it again.
        assert isinstance(events[-1], StreamError)
        assert events[-1].error.message == "anthropic: " + upstream[-1].error.message
        events[-1] = upstream[-1]
    else:
        assert isinstance(events[0], StreamStart)
        assert encode_sse(events, events[0].model) == client
    # The same IR as the upstream transcript, provisional usage included.
    assert comparable(events) == comparable(upstream)


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_stream_decoding_is_independent_of_chunking(name: str, chunk: int) -> None:
    raw = read(f"{name}.sse")
    assert comparable(decode_sse(raw, chunk)) == comparable(decode_sse(raw))


@pytest.mark.parametrize("name", STREAMS)
def test_client_transcript_is_the_upstream_minus_allowed_differences(name: str) -> None:
    upstream = [f for f in frames(read(f"{name}.sse")) if f[0] != "ping"]
    client = frames(read(f"{name}.client.sse"))
    assert [e for e, _ in client] == [e for e, _ in upstream]
    start_usage: dict[str, Any] = {}
    for (event, mine), (_, theirs) in zip(client, upstream, strict=True):
        if event == "message_start":
            for key in UNREPRODUCED_USAGE:
                theirs["message"]["usage"].pop(key, None)
            start_usage = theirs["message"]["usage"]
        elif event == "message_delta":
            # Upstream may omit unchanged counts; the client always gets the full final counts
            # (the start's other usage details are not repeated, as upstream does not).
            counts = {k: v for k, v in start_usage.items() if k in USAGE_FIELDS}
            theirs["usage"] = {**counts, **theirs["usage"]}
        elif event == "error":
            theirs.pop("request_id", None)
            theirs["error"]["message"] = "anthropic: " + theirs["error"]["message"]
        assert mine == theirs, event


def test_tool_stream_ir() -> None:
    events = decode_sse(read("stream_tool_use.sse"))
    start = events[5]
    assert start == BlockStart(1, "tool_call", "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    args = "".join(e.partial_json for e in events if isinstance(e, ToolArgsDelta))
    assert orjson.loads(args) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "tool_calls"
    # message_delta carried only output_tokens: the input from message_start stands.
    assert end.usage == Usage(input_tokens=472, output_tokens=89)


def test_thinking_stream_ir() -> None:
    events = decode_sse(read("stream_thinking.sse"))
    assert events[1] == BlockStart(0, "thinking")
    deltas = [e for e in events if isinstance(e, ThinkingDelta)]
    assert deltas[-1].signature and deltas[-1].signature.startswith("EqQBCkgI")
    assert "So GCD is 21." in "".join(d.thinking for d in deltas)
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert BlockStop(0) in events and [t.index for t in texts] == [1]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    # Provisional output (3) is replaced, not added; cache writes count as input.
    assert end.usage == Usage(
        input_tokens=2198, output_tokens=264, cached_tokens=0, cache_write_tokens=2188
    )


def test_error_stream_ir() -> None:
    events = decode_sse(read("stream_error.sse"))
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, UpstreamUnavailable)
    assert "Overloaded" in events[-1].error.message
