"""The official ``anthropic`` SDK as the judge.

1. Pointed at ``AnthropicFake``, it parses the fake's plain and streamed answers, errors, token
   counts and model list: the fake is faithful, so provider tests against it mean something.
2. Served the gateway's own renditions (``encode_response`` / ``StreamEncoder`` output), it
   reconstructs the same message as from the upstream transcript.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import orjson
import pytest
from anthropic.types import Message, MessageParam, RawMessageStreamEvent
from pydantic import TypeAdapter

from backend.ir.chat import Usage
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolArgsDelta,
)
from backend.protocols.anthropic_messages import StreamEncoder
from tests.fakes.anthropic_fake import AnthropicFake, AnthropicReply
from tests.fakes.base import Reply, ToolCall

GOLDEN = Path(__file__).parent / "golden"
EVENTS = TypeAdapter(RawMessageStreamEvent)
HI: list[MessageParam] = [{"role": "user", "content": "hi"}]
#: Usage fields only the upstream knows (see test_anthropic_golden).
UPSTREAM_ONLY = {"cache_creation", "service_tier"}


@pytest.fixture(scope="module")
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def sdk(fake: AnthropicFake) -> AsyncIterator[anthropic.AsyncAnthropic]:
    fake.reset()
    client = anthropic.AsyncAnthropic(
        base_url=fake.sdk_base_url, api_key="sk-ant-test", max_retries=0
    )
    yield client
    await client.close()


async def final_message(sdk: anthropic.AsyncAnthropic, **kw: Any) -> tuple[Message, list[Any]]:
    events = []
    async with sdk.messages.stream(
        model="claude-haiku-5-5", max_tokens=100, messages=HI, **kw
    ) as stream:
        async for ev in stream:
            events.append(ev)
        return await stream.get_final_message(), events


# -- 1. the fake, judged by the SDK ------------------------------------------------------------
async def test_plain_answer(sdk: anthropic.AsyncAnthropic, fake: AnthropicFake) -> None:
    fake.replies.append(
        AnthropicReply(
            text="Bonjour",
            thinking="French, then.",
            input_tokens=120,
            cached_tokens=100,
            cache_write_tokens=15,
            output_tokens=9,
        )
    )
    msg = await sdk.messages.create(model="claude-sonnet-5-5", max_tokens=50, messages=HI)
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[1].text == "Bonjour"  # type: ignore[union-attr]
    assert msg.content[0].signature  # type: ignore[union-attr]
    assert (msg.stop_reason, msg.model) == ("end_turn", "claude-sonnet-5-5")
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens) == (5, 100)
    assert (msg.usage.cache_creation_input_tokens, msg.usage.output_tokens) == (15, 9)
    # Strict validation too: the SDK itself only "constructs" responses.
    raw = fake.requests[-1]
    assert raw.headers["authorization"] == "Bearer sk-ant-test"
    assert raw.headers["anthropic-version"]
    assert raw.json["model"] == "claude-sonnet-5-5"


async def test_plain_answer_validates_strictly(fake: AnthropicFake) -> None:
    fake.reset()
    fake.replies.append(Reply(text="x", tool_calls=[ToolCall("f", {"a": 1}, id="toolu_1")]))
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        resp = await client.post(
            "/v1/messages",
            json={"model": "m", "max_tokens": 5, "messages": HI},
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        )
    msg = Message.model_validate(resp.json())
    assert msg.stop_reason == "tool_use" and msg.content[1].input == {"a": 1}  # type: ignore[union-attr]


async def test_streamed_answer(sdk: anthropic.AsyncAnthropic, fake: AnthropicFake) -> None:
    fake.replies.append(
        AnthropicReply(
            text="Let me check.",
            thinking="Need the weather tool.",
            tool_calls=[ToolCall("get_weather", {"city": "Paris", "days": [1, 2]}, id="toolu_9")],
            input_tokens=40,
            cached_tokens=30,
            output_tokens=25,
        )
    )
    msg, events = await final_message(sdk)
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    assert msg.content[0].thinking == "Need the weather tool."  # type: ignore[union-attr]
    assert msg.content[0].signature  # type: ignore[union-attr]
    assert msg.content[1].text == "Let me check."  # type: ignore[union-attr]
    assert msg.content[2].input == {"city": "Paris", "days": [1, 2]}  # type: ignore[union-attr]
    assert msg.stop_reason == "tool_use"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens) == (10, 30)
    assert msg.usage.output_tokens == 25
    kinds = {e.type for e in events}
    assert {"message_start", "content_block_start", "content_block_stop", "message_stop"} <= kinds
    assert fake.requests[-1].json["stream"] is True


async def test_fake_stream_frames_validate_strictly(fake: AnthropicFake) -> None:
    fake.reset()
    fake.replies.append(AnthropicReply(text="abc", thinking="t", redacted_thinking="opaque"))
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        resp = await client.post(
            "/v1/messages",
            json={"model": "m", "max_tokens": 5, "messages": HI, "stream": True},
            headers={"authorization": "Bearer k", "anthropic-version": "2023-06-01"},
        )
    assert resp.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in resp.content.split(b"\n\n") if f]
    names = []
    for frame in frames:
        event_line, data_line = frame.split(b"\n")
        name = event_line.removeprefix(b"event: ").decode()
        names.append(name)
        data = orjson.loads(data_line.removeprefix(b"data: "))
        assert data["type"] == name
        if name != "ping":
            EVENTS.validate_python(data)
    assert names[:4] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert names[-2:] == ["message_delta", "message_stop"]


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (529, anthropic.OverloadedError),
        (429, anthropic.RateLimitError),
        (400, anthropic.BadRequestError),
        (500, anthropic.InternalServerError),
    ],
)
async def test_errors(
    sdk: anthropic.AsyncAnthropic, fake: AnthropicFake, status: int, exc: type[Exception]
) -> None:
    fake.replies.append(Reply(status=status, error_message="nope"))
    with pytest.raises(exc) as info:
        await sdk.messages.create(model="m", max_tokens=5, messages=HI)
    assert "nope" in str(info.value)


async def test_unauthenticated_and_unversioned_requests_are_refused(fake: AnthropicFake) -> None:
    fake.reset()
    body = {"model": "m", "max_tokens": 5, "messages": HI}
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        no_key = await client.post("/v1/messages", json=body, headers={"anthropic-version": "x"})
        no_version = await client.post("/v1/messages", json=body, headers={"x-api-key": "k"})
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error"
    assert no_version.status_code == 400


async def test_error_event_mid_stream(sdk: anthropic.AsyncAnthropic, fake: AnthropicFake) -> None:
    fake.replies.append(
        AnthropicReply(
            text="abcdef", drop_after=4, stream_error="overloaded_error", error_message="Overloaded"
        )
    )
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        await final_message(sdk)


async def test_dropped_connection(sdk: anthropic.AsyncAnthropic, fake: AnthropicFake) -> None:
    fake.replies.append(Reply(text="abcdef", drop_after=4))
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        await final_message(sdk)


async def test_count_tokens_and_models(sdk: anthropic.AsyncAnthropic, fake: AnthropicFake) -> None:
    fake.replies.append(Reply(input_tokens=321))
    count = await sdk.messages.count_tokens(model="m", messages=HI)
    assert count.input_tokens == 321
    models = [m async for m in sdk.models.list()]
    assert [m.id for m in models] == fake.models
    assert all(m.type == "model" and m.display_name for m in models)


# -- 2. the gateway's renditions, judged by the SDK --------------------------------------------
def _core(msg: Message) -> dict[str, Any]:
    data = msg.model_dump(exclude_none=True)
    for key in UPSTREAM_ONLY:
        data["usage"].pop(key, None)
    return data


@pytest.mark.parametrize("name", ["stream_text", "stream_tool_use", "stream_thinking"])
async def test_sdk_rebuilds_the_same_message_from_our_transcript(
    sdk: anthropic.AsyncAnthropic, fake: AnthropicFake, name: str
) -> None:
    for suffix in (".sse", ".client.sse"):
        raw = (GOLDEN / f"{name}{suffix}").read_bytes()
        fake.replies.append(Reply(raw=raw, raw_content_type="text/event-stream"))
    upstream, _ = await final_message(sdk)
    ours, _ = await final_message(sdk)
    assert _core(ours) == _core(upstream)


@pytest.mark.parametrize("name", ["response_text", "response_tool_use", "response_thinking"])
def test_our_plain_answers_validate_strictly(name: str) -> None:
    ours = Message.model_validate_json((GOLDEN / f"{name}.client.json").read_bytes())
    upstream = Message.model_validate_json((GOLDEN / f"{name}.json").read_bytes())
    assert _core(ours) == _core(upstream)


async def test_sdk_reads_a_stream_translated_from_another_provider(
    sdk: anthropic.AsyncAnthropic, fake: AnthropicFake
) -> None:
    """What an OpenAI upstream's decoded stream looks like: no usage until the end, an empty
    text block before a tool call."""
    enc = StreamEncoder("my-alias")
    events: list[StreamEvent] = [
        StreamStart("chatcmpl-abc", "gpt-4o"),
        BlockStart(0, "text"),
        BlockStop(0),
        BlockStart(1, "tool_call", "call_Xyz", "lookup"),
        ToolArgsDelta(1, ""),
        ToolArgsDelta(1, '{"q": "ca'),
        ToolArgsDelta(1, 't"}'),
        BlockStop(1),
        BlockStart(2, "text"),
        TextDelta(2, "Looking it up."),
        BlockStop(2),
        StreamEnd("tool_calls", Usage(input_tokens=300, output_tokens=18, cached_tokens=256)),
    ]
    raw = b"".join(enc.encode(ev) for ev in events)
    fake.replies.append(Reply(raw=raw, raw_content_type="text/event-stream"))
    msg, _ = await final_message(sdk)
    assert msg.model == "my-alias" and msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["tool_use", "text"]
    assert msg.content[0].input == {"q": "cat"}  # type: ignore[union-attr]
    assert msg.usage.input_tokens == 44 and msg.usage.cache_read_input_tokens == 256
    assert msg.usage.output_tokens == 18
