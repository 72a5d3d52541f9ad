"""OpenAI streams: the encoder against the official SDK's accumulator, the decoder's edge cases."""

from __future__ import annotations

from typing import Any

import orjson
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from backend.ir.chat import Usage
from backend.ir.errors import RateLimited, UpstreamError
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
from backend.protocols.openai_chat import StreamDecoder, StreamEncoder
from backend.protocols.sse import SSEEvent, SSEParser

# Anthropic-shaped: thinking first, then text, then two tool calls (block indexes 0..3).
MIXED: list[StreamEvent] = [
    StreamStart(id="msg_01", model="claude-x", created=1767225600),
    BlockStart(0, "thinking"),
    ThinkingDelta(0, "let me think"),
    ThinkingDelta(0, "", signature="sig"),
    BlockStop(0),
    BlockStart(1, "text"),
    TextDelta(1, "Checking "),
    TextDelta(1, "both."),
    BlockStop(1),
    BlockStart(2, "tool_call", tool_call_id="toolu_a", tool_name="weather"),
    ToolArgsDelta(2, '{"city":'),
    ToolArgsDelta(2, '"Nice"}'),
    BlockStop(2),
    BlockStart(3, "tool_call", tool_call_id="toolu_b", tool_name="weather"),
    ToolArgsDelta(3, '{"city":"Rome"}'),
    BlockStop(3),
    StreamEnd("tool_calls", Usage(input_tokens=50, output_tokens=20, cached_tokens=10)),
]


def frames(data: bytes) -> list[str]:
    parser = SSEParser()
    return [ev.data for ev in parser.feed(data) + parser.close()]


def encode_all(events: list[StreamEvent], include_usage: bool = True) -> bytes:
    enc = StreamEncoder("my-alias", include_usage)
    return b"".join(enc.encode(ev) for ev in events)


# -- encoder ---------------------------------------------------------------------------------------
def test_sdk_accumulates_encoder_output_into_the_right_message() -> None:
    out = encode_all(MIXED)
    data = frames(out)
    assert data[-1] == "[DONE]"
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    chunks = [ChatCompletionChunk.model_validate(orjson.loads(f)) for f in data[:-1]]
    for chunk in chunks:
        state.handle_chunk(chunk)
    final = state.get_final_completion()
    message = final.choices[0].message
    # The 3.x SDK concatenates repeated strings: role / id / name must appear once.
    assert message.role == "assistant"
    assert message.content == "Checking both."
    # The SDK's accumulator keeps the reasoning fields, so the message can be echoed back.
    assert message.model_extra == {
        "reasoning_content": "let me think",
        "thinking_blocks": [
            {"index": 0, "type": "thinking", "thinking": "let me think", "signature": "sig"}
        ],
    }
    calls = message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("toolu_a", "weather", '{"city":"Nice"}'),
        ("toolu_b", "weather", '{"city":"Rome"}'),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.model == "my-alias" and final.id == "msg_01"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (50, 20, 70)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 10
    # Every earlier chunk says usage: null, as OpenAI does with include_usage.
    assert all(orjson.loads(f)["usage"] is None for f in data[:-2])


def test_tool_call_indexes_count_calls_and_thinking_is_carried() -> None:
    data = [orjson.loads(f) for f in frames(encode_all(MIXED))[:-1]]
    deltas = [d["choices"][0]["delta"] for d in data if d["choices"]]
    # Thinking text as reasoning_content pieces, the signed block once when it ends.
    assert [d["reasoning_content"] for d in deltas if "reasoning_content" in d] == ["let me think"]
    assert [d["thinking_blocks"] for d in deltas if "thinking_blocks" in d] == [
        [{"index": 0, "type": "thinking", "thinking": "let me think", "signature": "sig"}]
    ]
    indexes = [tc["index"] for d in deltas for tc in d.get("tool_calls", [])]
    assert indexes == [0, 0, 0, 1, 1]
    with_role = [d for d in deltas if "role" in d]
    assert len(with_role) == 1 and deltas[0] is with_role[0]


def test_role_goes_with_a_leading_tool_call() -> None:
    events: list[StreamEvent] = [
        StreamStart(id="x", model="m"),
        BlockStart(0, "tool_call", tool_call_id="call_1", tool_name="f"),
        ToolArgsDelta(0, "{}"),
        BlockStop(0),
        StreamEnd("tool_calls", Usage()),
    ]
    first = orjson.loads(frames(encode_all(events, include_usage=False))[0])
    assert first["choices"][0]["delta"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": ""},
            }
        ],
        "refusal": None,
    }
    assert "usage" not in first


def test_no_usage_chunk_without_include_usage_and_finish_mapping() -> None:
    for reason, wire in [
        ("stop", "stop"),
        ("stop_sequence", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
    ]:
        events: list[StreamEvent] = [StreamStart(id="x", model="m"), StreamEnd(reason, Usage(1, 1))]  # type: ignore[arg-type]
        data = frames(encode_all(events, include_usage=False))
        chunks = [orjson.loads(f) for f in data[:-1]]
        assert data[-1] == "[DONE]"
        # An empty answer still opens with the role, then the finish chunk; no usage chunk.
        assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, wire]
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


def test_stream_error_is_an_error_frame_without_done() -> None:
    enc = StreamEncoder("m", True)
    out = enc.encode(StreamStart(id="x", model="m"))
    out += enc.encode(BlockStart(0, "text")) + enc.encode(TextDelta(0, "par"))
    out += enc.encode(StreamError(RateLimited("slow down")))
    data = frames(out)
    assert "[DONE]" not in data
    assert orjson.loads(data[-1]) == {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    # Nothing after a terminal event.
    assert enc.encode(StreamEnd("stop", Usage())) == b""


# -- decoder ---------------------------------------------------------------------------------------
def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> SSEEvent:
    obj: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "m",
    }
    obj["choices"] = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    )
    obj.update(top)
    return SSEEvent(None, orjson.dumps(obj).decode())


def decode(events: list[SSEEvent]) -> list[StreamEvent]:
    dec = StreamDecoder()
    out: list[StreamEvent] = []
    for ev in events:
        out.extend(dec.feed(ev))
    return out + dec.close()


DONE = SSEEvent(None, "[DONE]")


def test_truncated_stream_is_an_error() -> None:
    out = decode([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"})])
    assert isinstance(out[-1], StreamError)
    assert "truncated" in out[-1].error.message
    assert isinstance(out[-1].error, UpstreamError)
    assert not any(isinstance(e, StreamEnd) for e in out)


def test_finish_without_done_still_ends_cleanly() -> None:
    out = decode([chunk({"content": "Hi"}), chunk({}, "length")])
    assert out[-1] == StreamEnd("length", Usage())
    assert out[-2] == BlockStop(0)


def test_error_frame_and_invalid_json_become_stream_errors() -> None:
    err = decode(
        [
            chunk({"content": "a"}),
            SSEEvent(None, '{"error": {"message": "overloaded", "type": "server_error"}}'),
        ]
    )
    assert isinstance(err[-1], StreamError) and "overloaded" in err[-1].error.message
    bad = decode([chunk({"content": "a"}), SSEEvent(None, '{"id": ')])
    assert isinstance(bad[-1], StreamError) and "invalid JSON" in bad[-1].error.message
    # Exactly one terminal event: close() after a failure adds nothing.
    assert sum(isinstance(e, (StreamError, StreamEnd)) for e in bad) == 1


def test_azure_prompt_filter_chunk_and_usage_in_finish_chunk() -> None:
    azure_first = SSEEvent(
        None,
        '{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}',
    )
    out = decode(
        [
            azure_first,
            chunk({"role": "assistant", "content": "ok"}),
            chunk(
                {}, "stop", usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
            ),
            DONE,
        ]
    )
    assert out[0] == StreamStart(id="c1", model="m", created=5)
    end = out[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
    assert end.usage == Usage(input_tokens=3, output_tokens=1)


def test_compatible_server_quirks() -> None:
    # Whole tool call in one delta, no index, finish "stop", then [DONE].
    out = decode(
        [
            chunk(
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": {"a": 1}}}],
                }
            ),
            chunk({}, "stop"),
            DONE,
        ]
    )
    assert out[1] == BlockStart(0, "tool_call", tool_call_id="t1", tool_name="f")
    assert out[2] == ToolArgsDelta(0, '{"a":1}')
    assert out[-1] == StreamEnd("tool_calls", Usage())


def test_text_after_tool_call_opens_a_new_block_and_done_alone_ends() -> None:
    out = decode(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "t", "function": {"name": "f", "arguments": ""}}
                    ]
                }
            ),
            chunk({"content": "note"}),
            DONE,
            chunk({"content": "ignored after DONE"}),
        ]
    )
    assert [type(e).__name__ for e in out] == [
        "StreamStart",
        "BlockStart",
        "BlockStop",
        "BlockStart",
        "TextDelta",
        "BlockStop",
        "StreamEnd",
    ]
    assert out[3] == BlockStart(1, "text")
