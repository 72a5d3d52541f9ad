"""AnthropicProvider against AnthropicFake over real HTTP (the production client factory)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    Usage,
)
from backend.ir.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
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
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.protocols.anthropic_messages import decode_request
from backend.providers.anthropic import AnthropicProvider
from backend.providers.base import ProviderConfig, UnsupportedOperation
from backend.providers.http import Upstream, make_http_client
from tests.fakes.anthropic_fake import AnthropicFake, AnthropicReply
from tests.fakes.base import Reply, ToolCall, free_port

GOLDEN = Path(__file__).parents[1] / "protocols" / "anthropic_messages" / "golden"
MODEL = "claude-sonnet-5-5"


def request(text: str = "hi", **kw: object) -> ChatRequest:
    return ChatRequest(model="my-alias", messages=[Message("user", [TextPart(text)])], **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def client() -> AsyncIterator[Upstream]:
    http = make_http_client("http://unused.invalid", timeout_s=5)
    yield http
    await http.aclose()


def provider_for(base_url: str, http: Upstream, **kw: Any) -> AnthropicProvider:
    config = ProviderConfig(
        name="anthropic", kind="anthropic", base_url=base_url, api_key="sk-ant-real", **kw
    )
    return AnthropicProvider(config, http)


@pytest.fixture
def provider(fake: AnthropicFake, client: Upstream) -> AnthropicProvider:
    fake.reset()
    return provider_for(fake.base_url + "/", client)


async def collect(it: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [ev async for ev in it]


# -- chat --------------------------------------------------------------------------------------
async def test_chat(provider: AnthropicProvider, fake: AnthropicFake) -> None:
    fake.replies.append(
        AnthropicReply(
            text="Hello!",
            thinking="Greet back.",
            input_tokens=1200,
            cached_tokens=1000,
            cache_write_tokens=150,
            output_tokens=7,
        )
    )
    resp = await provider.chat(request(max_tokens=50), MODEL)
    thinking, text = resp.content
    assert isinstance(thinking, ThinkingPart) and thinking.signature
    assert text == TextPart("Hello!")
    assert resp.finish_reason == "stop" and resp.model == MODEL
    assert resp.usage == Usage(1200, 7, cached_tokens=1000, cache_write_tokens=150)

    sent = fake.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == "sk-ant-real"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in sent.headers
    assert sent.json == {
        "model": MODEL,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    }


async def test_client_headers_are_forwarded(
    provider: AnthropicProvider, fake: AnthropicFake
) -> None:
    req = decode_request(
        {"model": "a", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        {
            "anthropic-version": "2026-10-21",
            "anthropic-beta": "context-management-2025-06-27",
            "authorization": "Bearer client-key-must-not-leak",
        },
    )
    await provider.chat(req, MODEL)
    sent = fake.requests[-1].headers
    assert sent["anthropic-version"] == "2026-10-21"
    assert sent["anthropic-beta"] == "context-management-2025-06-27"
    assert sent["x-api-key"] == "sk-ant-real"
    assert "authorization" not in sent


async def test_extra_headers_from_config(fake: AnthropicFake, client: Upstream) -> None:
    fake.reset()
    p = provider_for(fake.base_url, client, extra_headers={"x-team": "blue"})
    await p.chat(request(), MODEL)
    assert fake.requests[-1].headers["x-team"] == "blue"


async def test_tool_call_answer(provider: AnthropicProvider, fake: AnthropicFake) -> None:
    fake.replies.append(
        Reply(text=None, tool_calls=[ToolCall("lookup", {"q": "cat"}, id="toolu_1")])
    )
    req = request(tools=[Tool("lookup", None, {"type": "object"})])
    resp = await provider.chat(req, MODEL)
    assert resp.content == [ToolCallPart("toolu_1", "lookup", '{"q":"cat"}')]
    assert resp.finish_reason == "tool_calls"
    assert fake.requests[-1].json["tools"] == [
        {"name": "lookup", "input_schema": {"type": "object"}}
    ]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (529, UpstreamUnavailable),
        (400, InvalidRequest),
        (429, RateLimited),
        (500, UpstreamError),
        (401, UpstreamError),
    ],
)
async def test_chat_errors(
    provider: AnthropicProvider, fake: AnthropicFake, status: int, cls: type[GatewayError]
) -> None:
    fake.replies.append(Reply(status=status, error_message="upstream says no"))
    with pytest.raises(cls) as info:
        await provider.chat(request(), MODEL)
    assert info.value.message == "anthropic: upstream says no"


@pytest.mark.parametrize("raw", [b"<html>oops</html>", b'{"type":"message"}'])
async def test_chat_malformed_success_body(
    provider: AnthropicProvider, fake: AnthropicFake, raw: bytes
) -> None:
    fake.replies.append(Reply(raw=raw))
    with pytest.raises(UpstreamError):
        await provider.chat(request(), MODEL)


async def test_connection_refused(client: Upstream) -> None:
    p = provider_for(f"http://127.0.0.1:{free_port()}", client)
    # httpx-aiohttp reports a refused connection as ConnectTimeout, hence not only Unavailable.
    with pytest.raises(UpstreamError) as info:
        await p.chat(request(), MODEL)
    assert info.value.retryable and info.value.status in (503, 504)
    with pytest.raises(UpstreamError) as info:
        await collect(p.stream(request(), MODEL))
    assert info.value.retryable and info.value.status in (503, 504)


async def test_timeout(fake: AnthropicFake) -> None:
    fake.reset()
    fake.replies.append(Reply(delay=1.0))
    http = make_http_client("http://unused.invalid", timeout_s=0.2)
    try:
        with pytest.raises(UpstreamTimeout):
            await provider_for(fake.base_url, http).chat(request(), MODEL)
    finally:
        await http.aclose()


# -- stream ------------------------------------------------------------------------------------
async def test_stream(provider: AnthropicProvider, fake: AnthropicFake) -> None:
    fake.replies.append(
        AnthropicReply(
            text="Looking.",
            thinking="Use the tool.",
            tool_calls=[ToolCall("lookup", {"q": "cat"}, id="toolu_7")],
            input_tokens=500,
            cached_tokens=400,
            output_tokens=30,
        )
    )
    events = await collect(provider.stream(request(), MODEL))
    assert isinstance(events[0], StreamStart)
    assert events[0].usage == Usage(500, 1, cached_tokens=400)  # provisional output
    kinds = [e.kind for e in events if isinstance(e, BlockStart)]
    assert kinds == ["thinking", "text", "tool_call"]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    thinking = "".join(e.thinking for e in events if isinstance(e, ThinkingDelta))
    args = "".join(e.partial_json for e in events if isinstance(e, ToolArgsDelta))
    assert (text, thinking, orjson.loads(args)) == ("Looking.", "Use the tool.", {"q": "cat"})
    assert any(isinstance(e, ThinkingDelta) and e.signature for e in events)
    assert events[-1] == StreamEnd("tool_calls", Usage(500, 30, cached_tokens=400))
    assert sum(isinstance(e, BlockStop) for e in events) == 3
    sent = fake.requests[-1]
    assert sent.json["stream"] is True and sent.headers["accept"] == "text/event-stream"


async def test_stream_refused_raises_before_first_event(
    provider: AnthropicProvider, fake: AnthropicFake
) -> None:
    fake.replies.append(Reply(status=429, error_message="slow down"))
    it = provider.stream(request(), MODEL)
    with pytest.raises(RateLimited, match="slow down"):
        await anext(it)


async def test_stream_error_event_before_content_raises(
    provider: AnthropicProvider, fake: AnthropicFake
) -> None:
    # An overloaded_error as the very first event: nothing sent yet, so fallback is possible.
    fake.replies.append(AnthropicReply(drop_after=0, stream_error="overloaded_error"))
    with pytest.raises(UpstreamUnavailable):
        await collect(provider.stream(request(), MODEL))


async def test_stream_error_event_mid_stream(
    provider: AnthropicProvider, fake: AnthropicFake
) -> None:
    fake.replies.append(
        AnthropicReply(text="abcdef", drop_after=5, stream_error="overloaded_error")
    )
    events = await collect(provider.stream(request(), MODEL))
    assert isinstance(events[0], StreamStart) and TextDelta(0, "a") in events
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, UpstreamUnavailable)


@pytest.mark.parametrize("drop_after", [3, 6])
async def test_dropped_connection_mid_stream(
    provider: AnthropicProvider, fake: AnthropicFake, drop_after: int
) -> None:
    fake.replies.append(Reply(text="abcdefgh", drop_after=drop_after))
    events = await collect(provider.stream(request(), MODEL))
    assert isinstance(events[0], StreamStart)
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, UpstreamError) and events[-1].error.retryable
    assert not any(isinstance(e, StreamEnd) for e in events)


async def test_dropped_connection_before_first_event_raises(
    provider: AnthropicProvider, fake: AnthropicFake
) -> None:
    fake.replies.append(Reply(text="abc", drop_after=0))
    with pytest.raises(UpstreamError):
        await collect(provider.stream(request(), MODEL))


async def test_truncated_stream_body(provider: AnthropicProvider, fake: AnthropicFake) -> None:
    full = (GOLDEN / "stream_text.sse").read_bytes()
    cut = full[: full.index(b"event: message_delta")]
    fake.replies.append(Reply(raw=cut, raw_content_type="text/event-stream"))
    events = await collect(provider.stream(request(), MODEL))
    assert TextDelta(0, " you today?") in events
    assert isinstance(events[-1], StreamError) and "message_stop" in events[-1].error.message


# -- byte-level behaviour, with a scripted transport -------------------------------------------
class Body(httpx.AsyncByteStream):
    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.chunk, self.closed, self.sent = data, chunk, False, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), self.chunk):
            self.sent += 1
            yield self.data[i : i + self.chunk]

    async def aclose(self) -> None:
        self.closed = True


def scripted(body: Body) -> Upstream:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    return Upstream(transport=httpx.MockTransport(handler))


async def test_multibyte_characters_split_across_chunks() -> None:
    body = Body((GOLDEN / "stream_thinking.sse").read_bytes(), chunk=1)
    async with scripted(body) as http:
        events = await collect(provider_for("http://anthropic.test", http).stream(request(), MODEL))
    thinking = "".join(e.thinking for e in events if isinstance(e, ThinkingDelta))
    assert "1071 = 2 × 462 + 147" in thinking and "\ufffd" not in thinking
    assert isinstance(events[-1], StreamEnd)


async def test_reading_stops_at_an_error_event() -> None:
    transcript = (GOLDEN / "stream_error.sse").read_bytes() + (
        GOLDEN / "stream_text.sse"
    ).read_bytes()
    body = Body(transcript, chunk=64)
    async with scripted(body) as http:
        events = await collect(provider_for("http://anthropic.test", http).stream(request(), MODEL))
    assert isinstance(events[-1], StreamError)
    assert body.closed and body.sent < len(transcript) // 64


async def test_closing_the_iterator_early_closes_the_upstream_response() -> None:
    body = Body((GOLDEN / "stream_tool_use.sse").read_bytes(), chunk=16)
    async with scripted(body) as http:
        it = provider_for("http://anthropic.test", http).stream(request(), MODEL)
        first = await anext(it)
        assert isinstance(first, StreamStart) and not body.closed
        await it.aclose()  # type: ignore[attr-defined]
    assert body.closed
    assert body.sent < len(body.data) // body.chunk  # it stopped reading


# -- count_tokens, models, embeddings ----------------------------------------------------------
async def test_count_tokens(provider: AnthropicProvider, fake: AnthropicFake) -> None:
    fake.replies.append(Reply(input_tokens=1234))
    assert await provider.count_tokens(request(max_tokens=9, stream=True), MODEL) == 1234
    sent = fake.requests[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


async def test_count_tokens_error(provider: AnthropicProvider, fake: AnthropicFake) -> None:
    fake.replies.append(Reply(status=404, error_message="model: not found"))
    with pytest.raises(NotFound, match="model: not found"):
        await provider.count_tokens(request(), "claude-nope")


async def test_list_models_follows_pages(fake: AnthropicFake, client: Upstream) -> None:
    fake.reset()
    fake.page_size = 2
    try:
        models = await provider_for(fake.base_url, client).list_models()
    finally:
        fake.page_size = 1000
    assert models == list(fake.models)
    pages = [r for r in fake.requests if r.path == "/v1/models"]
    assert len(pages) == 2 and "after_id=" in pages[1].query
    assert pages[0].headers["x-api-key"] == "sk-ant-real"


async def test_embed_is_unsupported(provider: AnthropicProvider) -> None:
    with pytest.raises(UnsupportedOperation, match="no embeddings"):
        await provider.embed(EmbeddingRequest(model="x", input=["a"]), "x")
