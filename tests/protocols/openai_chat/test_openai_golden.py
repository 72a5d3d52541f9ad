"""Golden files: recorded OpenAI wire shapes decoded to the IR and encoded back.

Requests round-trip byte for byte (after canonical key order). Answers round-trip except for the
fields the IR does not carry, listed in ``LOSSY`` (they describe OpenAI's serving, not the
answer). Stream transcripts go StreamDecoder -> StreamEncoder and must reproduce every frame.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ImagePart,
    Message,
    Opaque,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolArgsDelta,
)
from backend.protocols.openai_chat import (
    FLAGS_KEY,
    StreamDecoder,
    StreamEncoder,
    decode_embedding_request,
    decode_embedding_response,
    decode_request,
    decode_response,
    encode_embedding_request,
    encode_embedding_response,
    encode_request,
    encode_response,
)
from backend.protocols.sse import SSEParser

GOLDEN = Path(__file__).parent / "golden"

#: What an OpenAI client does not get back verbatim: ``obfuscation`` is random padding of each
#: upstream chunk against length side channels, meaningless once the gateway re-chunks.
#: Everything else passes through (issue 14): service_tier, system_fingerprint, usage details.
LOSSY_TOP = ("obfuscation",)


def load(name: str) -> Any:
    return orjson.loads((GOLDEN / name).read_bytes())


def canonical(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def strip_lossy(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for key in LOSSY_TOP:
        out.pop(key, None)
    return out


def sse_events(raw: bytes, chunk_size: int = 0) -> list[Any]:
    parser = SSEParser()
    if not chunk_size:
        return parser.feed(raw) + parser.close()
    events = []
    for i in range(0, len(raw), chunk_size):
        events.extend(parser.feed(raw[i : i + chunk_size]))
    return events + parser.close()


def decode_transcript(raw: bytes, chunk_size: int = 0) -> list[StreamEvent]:
    decoder = StreamDecoder()
    out: list[StreamEvent] = []
    for ev in sse_events(raw, chunk_size):
        out.extend(decoder.feed(ev))
    return out + decoder.close()


# -- requests --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["request_chat.json", "request_tools_stream.json"])
def test_request_round_trips_byte_for_byte(name: str) -> None:
    body = load(name)
    req = decode_request(body)
    again = encode_request(req, body["model"], stream=bool(body.get("stream")))
    assert canonical(again) == canonical(body)


def test_request_chat_decodes_to_expected_ir() -> None:
    req = decode_request(load("request_chat.json"))
    assert req.model == "gpt-4o-mini"
    assert req.system == [TextPart("You are a terse assistant.")]
    assert req.messages == [
        Message("user", [TextPart("What is the capital of France?")], name="alice"),
        Message("assistant", [TextPart("Paris.")]),
        Message("user", [TextPart("And of Italy?")]),
    ]
    assert (req.temperature, req.top_p, req.max_tokens) == (0.2, 0.9, 256)
    assert req.stop == ["\n\n", "END"]
    assert req.user == "user-1234"
    assert req.metadata == {"team": "search"}
    assert not req.stream and not req.include_usage
    assert {k: v for k, v in req.extra.items() if k != FLAGS_KEY} == {
        "seed": 42,
        "presence_penalty": 0.5,
        "logprobs": True,
        "top_logprobs": 2,
    }


def test_request_tools_decodes_to_expected_ir() -> None:
    req = decode_request(load("request_tools_stream.json"))
    assert req.system == [TextPart("Use the tools when they help. Answer in JSON.")]
    user, assistant, results, answer, follow_up = req.messages
    assert user.role == "user"
    assert user.parts[1] == ImagePart(
        data="/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U",
        media_type="image/jpeg",
        detail="low",
    )
    assert user.parts[2] == ImagePart(url="https://example.com/photos/coast.png")
    assert assistant.parts == [
        ToolCallPart("call_Vb3yP0kQx1", "get_weather", '{"city":"Nice","unit":"c"}'),
        ToolCallPart("call_Qm8sT2aLw9", "get_weather", '{"city":"Rome","unit":"c"}'),
    ]
    # Consecutive tool messages become one user message holding both results.
    assert results == Message(
        "user",
        [
            ToolResultPart("call_Vb3yP0kQx1", [TextPart('{"temp":21,"sky":"clear"}')]),
            ToolResultPart("call_Qm8sT2aLw9", [TextPart('{"temp":25,"sky":"cloudy"}')]),
        ],
    )
    assert answer.role == "assistant" and follow_up.role == "user"
    assert [t.name for t in req.tools] == ["get_weather", "book_table"]
    assert req.tools[1] == Tool(
        "book_table",
        None,
        {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "people": {"type": "integer"},
                "time": {"type": "string"},
            },
            "required": ["city", "people", "time"],
        },
    )
    assert req.tool_choice == ToolChoice("tool", "book_table")
    assert req.parallel_tool_calls is False
    assert req.max_tokens == 1024
    assert req.stream and req.include_usage
    assert req.extra[FLAGS_KEY] == {
        "system_role": "developer",
        "max_tokens_field": "max_completion_tokens",
        "strict_tools": {"get_weather": True},
    }


# -- answers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["response_text.json", "response_tool_calls.json"])
def test_response_round_trips(name: str) -> None:
    body = load(name)
    resp = decode_response(body)
    again = encode_response(resp, body["model"])
    assert canonical(again) == canonical(strip_lossy(body))
    # Same key order as OpenAI, too.
    assert orjson.dumps(again) == orjson.dumps(strip_lossy(body))


def test_response_decodes_usage_and_tool_calls() -> None:
    text = decode_response(load("response_text.json"))
    assert text.usage == Usage(input_tokens=1214, output_tokens=8, cached_tokens=1024)
    assert text.content == [TextPart("Rome is the capital of Italy.")]
    assert text.finish_reason == "stop"
    assert text.created == 1767225600
    calls = decode_response(load("response_tool_calls.json"))
    assert calls.finish_reason == "tool_calls"
    assert [p.id for p in calls.content if isinstance(p, ToolCallPart)] == [
        "call_Vb3yP0kQx1",
        "call_Qm8sT2aLw9",
    ]


# -- streams ---------------------------------------------------------------------------------------
TRANSCRIPTS = ["stream_text.sse", "stream_tool_calls.sse", "stream_text_then_tool_no_usage.sse"]


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_stream_transcript_round_trips(name: str) -> None:
    raw = (GOLDEN / name).read_bytes()
    frames = [ev.data for ev in sse_events(raw)]
    assert frames[-1] == "[DONE]"
    golden = [orjson.loads(f) for f in frames[:-1]]
    include_usage = "usage" in golden[0]

    encoder = StreamEncoder(golden[0]["model"], include_usage)
    out = b"".join(encoder.encode(ev) for ev in decode_transcript(raw))

    expected = b"".join(b"data: " + canonical(strip_lossy(g)) + b"\n\n" for g in golden)
    expected += b"data: [DONE]\n\n"
    produced = [ev.data for ev in sse_events(out)]
    assert produced[-1] == "[DONE]"
    resorted = b"".join(b"data: " + canonical(orjson.loads(f)) + b"\n\n" for f in produced[:-1])
    assert resorted + b"data: [DONE]\n\n" == expected
    # Stronger: the very bytes, in OpenAI's own key order, minus the lossy serving fields.
    exact = b"".join(b"data: " + orjson.dumps(strip_lossy(g)) + b"\n\n" for g in golden)
    assert out == exact + b"data: [DONE]\n\n"


def test_stream_text_decodes_to_expected_events() -> None:
    events = decode_transcript((GOLDEN / "stream_text.sse").read_bytes())
    assert events[0] == StreamStart(
        id="chatcmpl-CYf5Gh1IjKlMnOpQrStUvWxYz0AbC",
        model="gpt-4o-mini-2024-07-18",
        created=1767225630,
        opaque=Opaque("openai", {"service_tier": "default", "system_fingerprint": "fp_560af6e559"}),
    )
    assert events[1] == BlockStart(0, "text")
    text = "".join(ev.text for ev in events if isinstance(ev, TextDelta))
    assert text == "Rome is the capital of Italy.\n\nCiao! 🇮🇹"
    assert events[-2] == BlockStop(0)
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
    assert end.usage == Usage(input_tokens=1214, output_tokens=13, cached_tokens=1024)
    # The usage object verbatim, for an OpenAI client (its details beyond the IR's counts).
    assert end.opaque is not None and end.opaque.data["usage"]["prompt_tokens"] == 1214


def test_stream_tool_calls_decode_to_one_block_per_call() -> None:
    # Fed in 7-byte pieces: frames split anywhere must decode the same.
    events = decode_transcript((GOLDEN / "stream_tool_calls.sse").read_bytes(), chunk_size=7)
    starts = [ev for ev in events if isinstance(ev, BlockStart)]
    assert starts == [
        BlockStart(0, "tool_call", tool_call_id="call_Vb3yP0kQx1", tool_name="get_weather"),
        BlockStart(1, "tool_call", tool_call_id="call_Qm8sT2aLw9", tool_name="get_weather"),
    ]
    args = {0: "", 1: ""}
    for ev in events:
        if isinstance(ev, ToolArgsDelta):
            args[ev.index] += ev.partial_json
    assert args == {0: '{"city":"Nice","unit":"c"}', 1: '{"city":"Rome","unit":"c"}'}
    # Block 0 stops before block 1 starts: at most one block open at a time.
    kinds = [type(ev).__name__ for ev in events if isinstance(ev, (BlockStart, BlockStop))]
    assert kinds == ["BlockStart", "BlockStop", "BlockStart", "BlockStop"]
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].finish_reason == "tool_calls"
    assert events[-1].usage == Usage(input_tokens=142, output_tokens=52)


# -- embeddings ------------------------------------------------------------------------------------
def test_embedding_request_round_trips() -> None:
    body = load("embeddings_request.json")
    req = decode_embedding_request(body)
    assert req.input == ["The food was delicious", "The waiter was friendly"]
    assert canonical(encode_embedding_request(req, body["model"])) == canonical(body)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("embeddings_response_base64.json", "base64"), ("embeddings_response_float.json", None)],
)
def test_embedding_response_round_trips(name: str, fmt: str | None) -> None:
    body = load(name)
    resp = decode_embedding_response(body)
    assert len(resp.vectors) == 2 and all(len(v) == 4 for v in resp.vectors)
    assert resp.usage.input_tokens == 9
    again = encode_embedding_response(resp, body["model"], encoding_format=fmt)
    assert canonical(again) == canonical(body)


def test_base64_embedding_decodes_to_float32_values() -> None:
    resp = decode_embedding_response(load("embeddings_response_base64.json"))
    expected = [[-0.0127, 0.4783, -0.20512, 0.8517], [0.0311, -0.7425, 0.1102, 0.66094]]
    for got, want in zip(resp.vectors, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
