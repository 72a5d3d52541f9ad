"""StreamEncoder / StreamDecoder edge cases the golden transcripts do not cover."""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.chat import Opaque, Usage
from backend.ir.errors import InvalidRequest, RateLimited, UpstreamError, UpstreamUnavailable
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
from backend.protocols.anthropic_messages import StreamDecoder, StreamEncoder
from backend.protocols.sse import SSEEvent, SSEParser

END = StreamEnd("stop", Usage(input_tokens=30, output_tokens=7, cached_tokens=20))


def encode(events: list[StreamEvent], model: str = "my-alias") -> bytes:
    enc = StreamEncoder(model)
    return b"".join(enc.encode(ev) for ev in events)


def wire(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    parser = SSEParser()
    return [(ev.event, orjson.loads(ev.data)) for ev in parser.feed(raw) + parser.close()]


def starts(raw: bytes) -> list[tuple[int, str]]:
    return [
        (d["index"], d["content_block"]["type"]) for e, d in wire(raw) if e == "content_block_start"
    ]


# -- encoder -----------------------------------------------------------------------------------
def test_every_frame_has_an_event_line_matching_its_type() -> None:
    raw = encode(
        [
            StreamStart("chatcmpl-1", "gpt-4o"),
            BlockStart(0, "text"),
            TextDelta(0, "hi"),
            BlockStop(0),
            END,
        ]
    )
    chunks = raw.split(b"\n\n")
    assert chunks[-1] == b""
    for chunk in chunks[:-1]:
        lines = chunk.split(b"\n")
        assert lines[0].startswith(b"event: ") and lines[1].startswith(b"data: ")
        assert orjson.loads(lines[1][6:])["type"] == lines[0][7:].decode()


def test_empty_text_blocks_never_reach_the_wire_and_indexes_stay_contiguous() -> None:
    raw = encode(
        [
            StreamStart("id", "m"),
            BlockStart(0, "text"),  # OpenAI-style: a text block opened, then only a tool call
            TextDelta(0, ""),
            BlockStop(0),
            BlockStart(1, "tool_call", "call_1", "lookup"),
            ToolArgsDelta(1, '{"q":'),
            ToolArgsDelta(1, '"x"}'),
            BlockStop(1),
            BlockStart(2, "text"),
            BlockStop(2),
            BlockStart(3, "text"),
            TextDelta(3, "done"),
            BlockStop(3),
            END,
        ]
    )
    assert starts(raw) == [(0, "tool_use"), (1, "text")]
    frames = wire(raw)
    indexes = [d["index"] for e, d in frames if e.startswith("content_block")]  # type: ignore[union-attr]
    assert indexes == [0, 0, 0, 0, 1, 1, 1]
    assert all(d["delta"].get("text") != "" for e, d in frames if e == "content_block_delta")


def test_tool_call_is_exactly_one_tool_use_block() -> None:
    raw = encode(
        [
            StreamStart("id", "m"),
            BlockStart(0, "tool_call", "call_1", "lookup"),
            ToolArgsDelta(0, '{"q"'),
            ToolArgsDelta(0, ': "x"}'),
            BlockStop(0),
            StreamEnd("tool_calls", Usage(5, 5)),
        ]
    )
    frames = wire(raw)
    (start,) = [d for e, d in frames if e == "content_block_start"]
    assert start["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "lookup",
        "input": {},
    }
    pieces = [d["delta"]["partial_json"] for e, d in frames if e == "content_block_delta"]
    assert orjson.loads("".join(pieces)) == {"q": "x"}
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_usage_input_in_start_and_final_usage_in_message_delta() -> None:
    frames = wire(encode([StreamStart("id", "m"), BlockStart(0, "text"), TextDelta(0, "x"), END]))
    start = frames[0][1]["message"]
    assert start["model"] == "my-alias" and start["id"] == "id"
    # Unknown at start: zero input, a provisional output of 1.
    assert start["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    # The open block is closed before message_delta, which has the final counts.
    assert [e for e, _ in frames[-3:]] == ["content_block_stop", "message_delta", "message_stop"]
    assert frames[-2][1]["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 20,
        "output_tokens": 7,
    }


def test_input_known_only_at_start_is_repeated_in_message_delta() -> None:
    frames = wire(
        encode(
            [
                StreamStart("id", "m", usage=Usage(input_tokens=50, cached_tokens=40)),
                StreamEnd("stop", Usage(output_tokens=3)),
            ]
        )
    )
    assert frames[0][1]["message"]["usage"]["input_tokens"] == 10
    assert frames[-2][1]["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 40,
        "output_tokens": 3,
    }


def test_thinking_block_with_signature_and_redacted_block() -> None:
    raw = encode(
        [
            StreamStart("id", "m"),
            BlockStart(0, "thinking"),
            ThinkingDelta(0, "hmm"),
            ThinkingDelta(0, signature="c2ln"),
            BlockStop(0),
            BlockStart(1, "redacted_thinking", data="b3BhcXVl"),
            BlockStop(1),
            BlockStart(2, "thinking"),  # nothing in it: not sent
            BlockStop(2),
            END,
        ]
    )
    assert starts(raw) == [(0, "thinking"), (1, "redacted_thinking")]
    frames = wire(raw)
    deltas = [d["delta"] for e, d in frames if e == "content_block_delta"]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "hmm"},
        {"type": "signature_delta", "signature": "c2ln"},
    ]
    redacted = [d for e, d in frames if e == "content_block_start"][1]["content_block"]
    assert redacted == {"type": "redacted_thinking", "data": "b3BhcXVl"}


def test_error_mid_stream_is_an_error_event_and_ends_the_stream() -> None:
    enc = StreamEncoder("m")
    enc.encode(StreamStart("id", "m"))
    enc.encode(BlockStart(0, "text"))
    enc.encode(TextDelta(0, "partial"))
    raw = enc.encode(StreamError(RateLimited("anthropic: slow down")))
    assert wire(raw) == [
        (
            "error",
            {
                "type": "error",
                "error": {"type": "rate_limit_error", "message": "anthropic: slow down"},
            },
        )
    ]
    assert enc.encode(TextDelta(0, "more")) == b"" and enc.encode(END) == b""


def test_malformed_ir_is_repaired_rather_than_lost() -> None:
    raw = encode(
        [
            BlockStart(0, "text"),  # no StreamStart
            TextDelta(0, "a"),
            BlockStart(1, "text"),  # previous block never stopped
            TextDelta(1, "b"),
            TextDelta(5, "c"),  # delta without a BlockStart
            ToolArgsDelta(9, "{}"),  # arguments without a call: nothing to attach them to
            END,
        ]
    )
    frames = wire(raw)
    assert frames[0][0] == "message_start"
    assert starts(raw) == [(0, "text"), (1, "text"), (2, "text")]
    opened: list[int] = []
    for event, data in frames:
        if event == "content_block_start":
            opened.append(data["index"])
        elif event == "content_block_stop":
            opened.remove(data["index"])
        assert len(opened) <= 1
    assert "{}" not in raw.decode()


# -- decoder -----------------------------------------------------------------------------------
def ev(data: dict[str, Any], event: str | None = "auto") -> SSEEvent:
    return SSEEvent(data["type"] if event == "auto" else event, orjson.dumps(data).decode())


MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "model": "claude-x",
        "usage": {"input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 1},
    },
}


def feed(*events: SSEEvent) -> tuple[StreamDecoder, list[StreamEvent]]:
    dec = StreamDecoder()
    out: list[StreamEvent] = []
    for e in events:
        out.extend(dec.feed(e))
    return dec, out


def test_truncated_stream_is_an_error_on_close() -> None:
    dec, out = feed(
        ev(MESSAGE_START),
        ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        ev({"type": "ping"}),
    )
    assert out == [
        StreamStart("msg_1", "claude-x", Usage(105, 1, 100, 0)),
        BlockStart(0, "text"),
    ]
    (err,) = dec.close()
    assert isinstance(err, StreamError) and isinstance(err.error, UpstreamError)
    assert "message_stop" in err.error.message and err.error.retryable


def test_close_after_message_stop_is_quiet_and_later_events_are_ignored() -> None:
    dec, out = feed(ev(MESSAGE_START), ev({"type": "message_stop"}))
    assert isinstance(out[-1], StreamEnd)
    assert out[-1].usage == Usage(105, 1, 100, 0)  # no message_delta: start usage stands
    assert dec.close() == []
    assert dec.feed(ev({"type": "message_stop"})) == []


def test_error_events_map_by_type() -> None:
    for kind, cls in [
        ("overloaded_error", UpstreamUnavailable),
        ("rate_limit_error", RateLimited),
        ("api_error", UpstreamError),
        ("invalid_request_error", InvalidRequest),
    ]:
        _, out = feed(
            ev(MESSAGE_START), ev({"type": "error", "error": {"type": kind, "message": "m"}})
        )
        assert isinstance(out[-1], StreamError) and type(out[-1].error) is cls, kind


def test_malformed_event_data_is_an_upstream_error() -> None:
    dec = StreamDecoder()
    (err,) = dec.feed(SSEEvent("message_start", "{not json"))
    assert isinstance(err, StreamError) and isinstance(err.error, UpstreamError)
    assert dec.close() == []


def test_server_tool_blocks_and_citations_pass_through_to_an_anthropic_client() -> None:
    def start(i: int, block: dict[str, Any]) -> SSEEvent:
        return ev({"type": "content_block_start", "index": i, "content_block": block})

    def delta(i: int, d: dict[str, Any]) -> SSEEvent:
        return ev({"type": "content_block_delta", "index": i, "delta": d})

    def stop(i: int) -> SSEEvent:
        return ev({"type": "content_block_stop", "index": i})

    use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    query = {"type": "input_json_delta", "partial_json": '{"query":"x"}'}
    citation = {"type": "citations_delta", "citation": {"type": "web_search_result_location"}}
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "pause_turn", "stop_sequence": None},
        "usage": {"output_tokens": 9, "server_tool_use": {"web_search_requests": 1}},
    }
    upstream = [
        ev(MESSAGE_START),
        start(0, use),
        delta(0, query),
        stop(0),
        start(1, result),
        stop(1),
        start(2, {"type": "text", "text": "", "citations": []}),
        delta(2, citation),
        delta(2, {"type": "text_delta", "text": "Found it"}),
        stop(2),
        start(3, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        delta(3, {"type": "input_json_delta", "partial_json": '{"a":1}'}),
        stop(3),
        ev(message_delta),
        ev({"type": "message_stop"}),
    ]
    _, out = feed(*upstream)
    assert out[1:-1] == [
        BlockStart(0, "opaque", opaque=Opaque("anthropic", use)),
        OpaqueEvent(0, Opaque("anthropic", query)),
        BlockStop(0),
        BlockStart(1, "opaque", opaque=Opaque("anthropic", result)),
        BlockStop(1),
        BlockStart(2, "text", opaque=Opaque("anthropic", {"citations": []})),
        OpaqueEvent(2, Opaque("anthropic", citation)),
        TextDelta(2, "Found it"),
        BlockStop(2),
        BlockStart(3, "tool_call", "toolu_1", "f"),
        ToolArgsDelta(3, '{"a":1}'),
        BlockStop(3),
    ]
    end = out[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
    assert end.usage.web_search_requests == 1  # billed per search (pricing.book)
    # The Anthropic client gets every frame back as the upstream sent it (usage counts aside).
    frames = wire(encode(out, "claude-x"))
    theirs = [(e.event, orjson.loads(e.data)) for e in upstream]
    assert [f for f in frames if f[0] not in ("message_start", "message_delta")] == [
        f for f in theirs if f[0] not in ("message_start", "message_delta")
    ]
    (_, delta_frame) = next(f for f in frames if f[0] == "message_delta")
    assert delta_frame["delta"]["stop_reason"] == "pause_turn"
    assert delta_frame["usage"]["server_tool_use"] == {"web_search_requests": 1}
    # An OpenAI client never sees another protocol's blocks.
    from backend.protocols.openai_chat import StreamEncoder as OpenAIEncoder

    openai = OpenAIEncoder("m", include_usage=False)
    text = b"".join(openai.encode(e) for e in out)
    assert b"srvtoolu_1" not in text and b"citations" not in text and b"Found it" in text


def test_message_delta_usage_overrides_only_what_it_carries() -> None:
    _, out = feed(
        ev(MESSAGE_START),
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                "usage": {"input_tokens": 6, "output_tokens": 40},
            }
        ),
        ev({"type": "message_stop"}),
    )
    assert out[-1] == StreamEnd("length", Usage(106, 40, 100, 0))


def test_events_without_event_line_use_the_data_type() -> None:
    _, out = feed(ev(MESSAGE_START, event=None), ev({"type": "message_stop"}, event=None))
    assert isinstance(out[0], StreamStart) and isinstance(out[-1], StreamEnd)


def test_stop_sequence_and_refusal() -> None:
    def end(reason: str, seq: str | None) -> StreamEvent:
        _, out = feed(
            ev(MESSAGE_START),
            ev(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": seq},
                    "usage": {"output_tokens": 2},
                }
            ),
            ev({"type": "message_stop"}),
        )
        return out[-1]

    assert end("stop_sequence", "###") == StreamEnd("stop_sequence", Usage(105, 2, 100), "###")
    assert end("refusal", None) == StreamEnd("content_filter", Usage(105, 2, 100))
