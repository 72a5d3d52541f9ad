"""Streamed and non-streamed asks share a cache entry only where nothing is lost.

A non-streamed answer replays as a stream when its extras have a live stream's home (OpenAI's
envelope and usage object, Anthropic's usage details and folded stop reason) or belong to another
protocol than the client's; otherwise (``n > 1`` choices, log probabilities, citations...) a
streamed ask misses and its stream is recorded apart, as the events it was, and replayed exactly.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from backend.cache.replay import stream_envelope
from backend.cache.response_cache import CachedStream, ResponseCache, stream_key
from backend.cache.serialize import event_from_dict, event_to_dict
from backend.ir.chat import ChatRequest, ChatResponse, Message, Opaque, TextPart, Usage
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    OpaqueEvent,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.policies import response_cache as policy
from backend.protocols.openai_chat.vocab import CHOICES_KEY, LOGPROBS_KEY, USAGE_KEY

USAGE = Usage(input_tokens=9, output_tokens=2, web_search_requests=1)
OPENAI_USAGE = {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"x": 1}}


def answer(protocol: str, extra: dict[str, Any], *parts: Any) -> ChatResponse:
    content = list(parts) or [TextPart("Paris.")]
    return ChatResponse("id-1", "m", content, "stop", USAGE, extra=extra, protocol=protocol)


def ask(protocol: str, *, stream: bool) -> ChatRequest:
    return ChatRequest(
        "m", [Message("user", [TextPart("Capital?")])], stream=stream, protocol=protocol
    )


# -- what a replay can carry -------------------------------------------------------------------


def test_openai_envelope_and_usage_ride_where_a_live_stream_has_them() -> None:
    resp = answer("openai", {"system_fingerprint": "fp_1", USAGE_KEY: OPENAI_USAGE, "_x": 1})
    start, end = stream_envelope(resp, "openai") or (None, None)
    assert start == Opaque("openai", {"system_fingerprint": "fp_1"})
    assert end == Opaque("openai", {"usage": OPENAI_USAGE})
    # Choices of n > 1 and log probabilities have no such home: no replay.
    for key in (CHOICES_KEY, LOGPROBS_KEY):
        assert stream_envelope(answer("openai", {key: [{}]}), "openai") is None
    # Another protocol's client never sees them: the plain replay is exact for it.
    assert stream_envelope(answer("openai", {CHOICES_KEY: [{}]}), "anthropic") == (None, None)


def test_anthropic_usage_details_and_pause_turn_ride_on_start_and_end() -> None:
    details = {"service_tier": "standard", "server_tool_use": {"web_search_requests": 1}}
    resp = answer("anthropic", {"container": {"id": "c"}, "usage": details, "stop_reason": "p"})
    start, end = stream_envelope(resp, "anthropic") or (None, None)
    assert start == Opaque("anthropic", {"container": {"id": "c"}, "usage": details})
    assert end == Opaque(
        "anthropic",
        {"usage": {"server_tool_use": details["server_tool_use"]}, "delta": {"stop_reason": "p"}},
    )
    cited = TextPart("Paris.", extra={"citations": [{"type": "char_location"}]})
    assert stream_envelope(answer("anthropic", {}, cited), "anthropic") is None
    assert stream_envelope(answer("gemini", {"usageMetadata": {}}), "gemini") is None
    assert stream_envelope(answer("gemini", {}), "gemini") == (None, None)


def test_every_stream_event_survives_serialization() -> None:
    events: list[StreamEvent] = [
        StreamStart("s", "m", Usage(input_tokens=3), 7, opaque=Opaque("openai", {"a": 1})),
        BlockStart(0, "opaque", opaque=Opaque("anthropic", {"type": "server_tool_use"})),
        OpaqueEvent(0, Opaque("anthropic", {"type": "input_json_delta", "partial_json": "{"})),
        BlockStop(0),
        BlockStart(1, "tool_call", "call_1", "f"),
        ToolArgsDelta(1, "{}"),
        BlockStart(2, "thinking"),
        ThinkingDelta(2, "hm", "sig"),
        BlockStart(3, "redacted_thinking", data="xyz"),
        TextDelta(4, "hi"),
        OpaqueEvent(None, Opaque("openai", {"choices": [{"index": 1}]})),
        StreamEnd("length", USAGE, "END", opaque=Opaque("anthropic", {"delta": {}})),
    ]
    back = [event_from_dict(event_to_dict(ev)) for ev in events]
    assert back == events
    # ``opaque`` is not part of start/end equality: compare it too.
    assert [getattr(e, "opaque", None) for e in back] == [
        getattr(e, "opaque", None) for e in events
    ]
    raw = CachedStream(events, 1.0, "openai").to_bytes()
    decoded = CachedStream.from_bytes(raw)
    assert decoded is not None and decoded.events == events and decoded.provider == "openai"


# -- the policy: lookups and what a stream leaves behind -------------------------------------


def gateway() -> Any:
    cache = ResponseCache.create()
    settings = SimpleNamespace(response_cache_ttl_s=60)
    return SimpleNamespace(response_cache=cache, store=SimpleNamespace(settings=settings))


def record(req: ChatRequest, events: list[StreamEvent], *, apart: bool = False) -> Any:
    recorder = policy.StreamRecorder(req, apart=apart)
    for ev in events:
        recorder.feed(ev)
    return recorder


N2_STREAM: list[StreamEvent] = [
    StreamStart("s", "m"),
    BlockStart(0, "text"),
    TextDelta(0, "Par"),
    OpaqueEvent(None, Opaque("openai", {"choices": [{"index": 1, "delta": {"content": "Lyon"}}]})),
    TextDelta(0, "is."),
    BlockStop(0),
    StreamEnd("stop", USAGE),
]


async def test_a_non_streamed_answer_with_extras_is_not_replayed_lossily() -> None:
    gw = gateway()
    key = "k1"
    n2 = answer("openai", {CHOICES_KEY: [{"index": 1, "message": {"content": "Lyon"}}]})
    await policy.store(gw, key, n2, "openai")
    # The non-streamed repeat gets it whole; a streamed one misses and records apart.
    hit = await policy.lookup(gw, key, ask("openai", stream=False))
    assert hit.response is not None and hit.response.extra == n2.extra
    miss = await policy.lookup(gw, key, ask("openai", stream=True))
    assert not miss.hit and miss.apart
    recorder = record(ask("openai", stream=True), N2_STREAM, apart=miss.apart)
    assert recorder.response is None  # an n > 1 stream has no lossless ChatResponse form
    await policy.store_stream(gw, key, recorder, "openai")
    # The shared entry kept the non-streamed answer; the stream replays exactly as recorded.
    again = await policy.lookup(gw, key, ask("openai", stream=False))
    assert again.response is not None and again.response.extra == n2.extra
    replayed = await policy.lookup(gw, key, ask("openai", stream=True))
    assert replayed.events is not None
    assert replayed.events == [
        StreamStart("s", "m"),
        BlockStart(0, "text"),
        TextDelta(0, "Par"),
        N2_STREAM[3],
        TextDelta(0, "is."),
        BlockStop(0),
        StreamEnd("stop", USAGE),
    ]
    assert await gw.response_cache.get_stream(stream_key(key)) is not None


async def test_a_plain_stream_is_shared_and_an_extra_bearing_one_kept_apart() -> None:
    gw = gateway()
    plain = [StreamStart("s", "m"), BlockStart(0, "text"), TextDelta(0, "Pa"), TextDelta(0, "ris.")]
    plain += [BlockStop(0), StreamEnd("stop", USAGE)]
    await policy.store_stream(gw, "k2", record(ask("openai", stream=True), plain), "openai")
    hit = await policy.lookup(gw, "k2", ask("openai", stream=False))
    assert hit.response is not None and hit.response.content == [TextPart("Paris.")]
    assert hit.response.usage == USAGE  # web searches and all
    # An Anthropic stream's envelope is an OpenAI client's no-op, but an Anthropic client's due.
    enveloped = [
        StreamStart("s", "m", opaque=Opaque("anthropic", {"usage": {"service_tier": "x"}})),
        *plain[1:],
    ]
    shared = record(ask("openai", stream=True), enveloped)
    assert shared.response is not None
    kept = record(ask("anthropic", stream=True), enveloped)
    assert kept.response is None and kept.events is not None
    await policy.store_stream(gw, "k3", kept, "anthropic")
    assert (await policy.lookup(gw, "k3", ask("anthropic", stream=False))).response is None
    replay = await policy.lookup(gw, "k3", ask("anthropic", stream=True))
    assert replay.events is not None and replay.events[0].opaque == enveloped[0].opaque  # type: ignore[union-attr]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_an_envelope_only_answer_replays_for_streams(protocol: str) -> None:
    gw = gateway()
    extra = (
        {USAGE_KEY: OPENAI_USAGE, "service_tier": "default"}
        if protocol == "openai"
        else {"usage": {"service_tier": "standard"}}
    )
    await policy.store(gw, "k4", answer(protocol, extra), protocol)
    found = await policy.lookup(gw, "k4", ask(protocol, stream=True))
    assert found.events is not None
    start, end = found.events[0], found.events[-1]
    assert isinstance(start, StreamStart) and isinstance(end, StreamEnd)
    assert (start.opaque, end.opaque) == stream_envelope(answer(protocol, extra), protocol)
