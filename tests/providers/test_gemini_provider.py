"""GeminiProvider against GeminiFake over real HTTP (both transports)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    Message,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
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
    ToolArgsDelta,
)
from backend.providers.base import ProviderConfig
from backend.providers.gemini import GeminiProvider
from backend.providers.http import TransportName, Upstream, make_http_client, make_transport
from tests.fakes.base import Reply, ToolCall, free_port
from tests.fakes.gemini_fake import GeminiFake, fake_vector
from tests.providers.recording import RecordingTransport

MODEL = "gemini-2.5-flash"
KEY = "AIza-upstream-secret"
WEATHER = Tool(
    "get_weather",
    "Weather",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
#: One text chunk without finishReason, as Gemini frames it.
HI_CHUNK = (
    b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}]}\r\n\r\n'
)


@pytest.fixture(scope="module")
def fake() -> Iterator[GeminiFake]:
    with GeminiFake() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _clean(fake: GeminiFake) -> None:
    fake.reset()
    fake.thought_signature = None
    fake.require_signatures = False
    fake.models_page_size = None


@pytest.fixture(scope="module", params=["reqwest", "aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest, fake: GeminiFake) -> AsyncIterator[Upstream]:
    transport: TransportName = request.param
    c = make_http_client(fake.base_url, transport=transport, timeout_s=5)
    yield c
    await c.aclose()


def config(base_url: str, **over: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "name": "gemini",
        "kind": "gemini",
        "base_url": base_url,
        "api_key": KEY,
    }
    fields.update(over)
    return ProviderConfig(**fields)


@pytest.fixture
def provider(fake: GeminiFake, client: Upstream) -> GeminiProvider:
    return GeminiProvider(config(fake.base_url, extra_headers={"x-team": "a"}), client)


def request(text: str = "hi", **over: Any) -> ChatRequest:
    return ChatRequest(model="alias", messages=[Message("user", [TextPart(text)])], **over)


async def collect(gen: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [ev async for ev in gen]


# -- chat ----------------------------------------------------------------------------------------


async def test_chat_plain(provider: GeminiProvider, fake: GeminiFake) -> None:
    fake.replies.append(
        Reply(text="Hello there", input_tokens=12, output_tokens=3, cached_tokens=4)
    )
    resp = await provider.chat(request(max_tokens=50, temperature=0.1), MODEL)
    assert resp.content == [TextPart("Hello there")]
    assert resp.finish_reason == "stop"
    assert resp.usage == Usage(input_tokens=12, output_tokens=3, cached_tokens=4)
    assert resp.model == MODEL and resp.created > 0 and resp.id
    rec = fake.requests[0]
    assert rec.path == f"/v1beta/models/{MODEL}:generateContent"
    assert rec.headers["x-goog-api-key"] == KEY and rec.headers["x-team"] == "a"
    assert KEY not in rec.query, "the key never goes in the URL"
    assert rec.json["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.1}


async def test_version_suffix_in_base_url_is_tolerated(fake: GeminiFake) -> None:
    async with make_http_client(fake.base_url, transport="httpx") as c:
        p = GeminiProvider(config(fake.base_url + "/v1beta/"), c)
        assert (await p.chat(request(), f"models/{MODEL}")).content == [TextPart("ok")]
    assert fake.requests[0].path == f"/v1beta/models/{MODEL}:generateContent"


async def test_max_tokens_is_length(provider: GeminiProvider, fake: GeminiFake) -> None:
    fake.replies.append(Reply(text="cut", finish="length"))
    assert (await provider.chat(request(), MODEL)).finish_reason == "length"


async def test_tool_call_round_trip(provider: GeminiProvider, fake: GeminiFake) -> None:
    """Gemini 3 behaviour: the call's signature must come back, with the function's name."""
    fake.thought_signature = "c2lnbmF0dXJlLWJ5dGVz"
    fake.require_signatures = True
    fake.replies.append(
        Reply(
            text=None,
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}),
                ToolCall("get_weather", {"city": "Rome"}),
            ],
            finish="tool_calls",
        )
    )
    req = request("Weather in Paris and Rome?", tools=[WEATHER])
    first = await provider.chat(req, MODEL)
    assert first.finish_reason == "tool_calls"
    calls = [p for p in first.content if isinstance(p, ToolCallPart)]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert len({c.id for c in calls}) == 2
    sent_tools = fake.requests[0].json["tools"][0]["functionDeclarations"][0]
    assert "additionalProperties" not in orjson.dumps(sent_tools).decode()

    # What an OpenAI client sends back: the assistant turn, then one tool message per call.
    follow_up = ChatRequest(
        model="alias",
        messages=[
            *req.messages,
            Message("assistant", list(first.content)),
            Message("user", [ToolResultPart(calls[0].id, [TextPart("21C")])]),
            Message("user", [ToolResultPart(calls[1].id, [TextPart("25C")])]),
        ],
        tools=[WEATHER],
    )
    fake.replies.append(Reply(text="Paris 21C, Rome 25C."))
    second = await provider.chat(follow_up, MODEL)
    assert second.content == [TextPart("Paris 21C, Rome 25C.")]
    contents = fake.requests[1].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    model_parts = contents[1]["parts"]
    assert model_parts[0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": "c2lnbmF0dXJlLWJ5dGVz",
    }
    assert model_parts[1] == {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": "21C"}}},
        {"functionResponse": {"name": "get_weather", "response": {"output": "25C"}}},
    ]


async def test_signature_check_in_fake_really_refuses(fake: GeminiFake) -> None:
    """The round trip above proves something only if an unsigned history is refused."""
    fake.require_signatures = True
    body_without_signature = {
        "contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}]
    }
    async with httpx.AsyncClient() as raw:
        resp = await raw.post(
            f"{fake.base_url}/v1beta/models/{MODEL}:generateContent",
            json=body_without_signature,
            headers={"x-goog-api-key": KEY},
        )
    assert resp.status_code == 400 and "thought_signature" in resp.text


@pytest.mark.parametrize(
    ("status", "exc", "retryable"),
    [
        (400, InvalidRequest, False),
        (404, NotFound, False),
        (429, RateLimited, True),
        (500, UpstreamError, True),
        (503, UpstreamUnavailable, True),
    ],
)
async def test_error_statuses_are_mapped(
    provider: GeminiProvider,
    fake: GeminiFake,
    status: int,
    exc: type[GatewayError],
    retryable: bool,
) -> None:
    fake.replies.append(Reply(status=status, error_message="nope from google"))
    with pytest.raises(exc) as info:
        await provider.chat(request(), MODEL)
    assert info.value.retryable is retryable
    assert "nope from google" in info.value.message


@pytest.mark.parametrize(("key", "upstream_status"), [("bad", 400), (None, 403)])
async def test_bad_or_missing_key_is_the_providers_failure(
    fake: GeminiFake, client: Upstream, key: str | None, upstream_status: int
) -> None:
    p = GeminiProvider(config(fake.base_url, api_key=key), client)
    for call in (p.chat(request(), MODEL), collect(p.stream(request(), MODEL))):
        with pytest.raises(UpstreamError) as info:
            await call
        assert type(info.value) is UpstreamError
        assert info.value.status == 502 and info.value.retryable
        assert info.value.detail["upstream_status"] == upstream_status
    assert fake.requests[0].path.endswith(":generateContent")


async def test_malformed_200_is_an_upstream_error(
    provider: GeminiProvider, fake: GeminiFake
) -> None:
    fake.replies.append(Reply(raw=b"<html>proxy</html>"))
    with pytest.raises(UpstreamError):
        await provider.chat(request(), MODEL)
    fake.replies.append(Reply(raw=b'{"candidates": "oops"}'))
    with pytest.raises(UpstreamError):
        await provider.chat(request(), MODEL)


async def test_timeout_and_refused_connection(fake: GeminiFake) -> None:
    fake.replies.append(Reply(delay=1.0))
    async with make_http_client(fake.base_url, transport="httpx", timeout_s=0.2) as slow:
        with pytest.raises(UpstreamTimeout):
            await GeminiProvider(config(fake.base_url), slow).chat(request(), MODEL)
    dead_url = f"http://127.0.0.1:{free_port()}"
    async with make_http_client(dead_url, transport="httpx") as dead:
        with pytest.raises(UpstreamUnavailable):
            await GeminiProvider(config(dead_url), dead).chat(request(), MODEL)
        with pytest.raises(UpstreamUnavailable):
            await collect(GeminiProvider(config(dead_url), dead).stream(request(), MODEL))


# -- stream --------------------------------------------------------------------------------------


async def test_stream_text(provider: GeminiProvider, fake: GeminiFake) -> None:
    fake.replies.append(Reply(text="abcdefgh", chunks=4, input_tokens=9, output_tokens=4))
    events = await collect(provider.stream(request(), MODEL))
    assert fake.requests[0].path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert fake.requests[0].query == "alt=sse"
    start = events[0]
    assert isinstance(start, StreamStart) and start.model == MODEL and start.created > 0
    assert events[1:] == [
        BlockStart(0, "text"),
        TextDelta(0, "ab"),
        TextDelta(0, "cd"),
        TextDelta(0, "ef"),
        TextDelta(0, "gh"),
        BlockStop(0),
        StreamEnd("stop", Usage(input_tokens=9, output_tokens=4)),
    ]


async def test_stream_tool_calls_match_non_streamed_ids(
    provider: GeminiProvider, fake: GeminiFake
) -> None:
    reply = Reply(
        text="Checking.",
        tool_calls=[ToolCall("get_weather", {"city": "Oslo"})],
        finish="tool_calls",
    )
    fake.replies.append(reply)
    events = await collect(provider.stream(request(tools=[WEATHER]), MODEL))
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert [s.kind for s in starts] == ["text", "tool_call"]
    assert starts[1].tool_name == "get_weather"
    assert [e.partial_json for e in events if isinstance(e, ToolArgsDelta)] == ['{"city":"Oslo"}']
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "tool_calls"
    # The fake numbers answers by request, so the non-streamed twin gets the same response id.
    fake.reset()
    fake.replies.append(reply)
    whole = await provider.chat(request(tools=[WEATHER]), MODEL)
    assert [p.id for p in whole.content if isinstance(p, ToolCallPart)] == [starts[1].tool_call_id]


async def test_truncated_stream_yields_stream_error(
    provider: GeminiProvider, fake: GeminiFake
) -> None:
    fake.replies.append(Reply(text="abcdefgh", chunks=4, drop_after=2))
    events = await collect(provider.stream(request(), MODEL))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "abcd"
    assert events[-2] == BlockStop(0)
    last = events[-1]
    assert isinstance(last, StreamError) and last.error.retryable
    assert not any(isinstance(e, StreamEnd) for e in events)


async def test_drop_after_final_chunk_still_ends(
    provider: GeminiProvider, fake: GeminiFake
) -> None:
    fake.replies.append(Reply(text="ab", chunks=1, drop_after=1))
    events = await collect(provider.stream(request(), MODEL))
    assert events[-1] == StreamEnd("stop", Usage(input_tokens=10, output_tokens=5))


async def test_clean_close_without_finish_is_truncated(
    provider: GeminiProvider, fake: GeminiFake
) -> None:
    raw = HI_CHUNK
    fake.replies.append(Reply(raw=raw, raw_content_type="text/event-stream"))
    events = await collect(provider.stream(request(), MODEL))
    last = events[-1]
    assert isinstance(last, StreamError) and "truncated" in last.error.message


async def test_error_event_mid_stream(provider: GeminiProvider, fake: GeminiFake) -> None:
    raw = (
        HI_CHUNK + b'data: {"error":{"code":500,"message":"An internal error has occurred.",'
        b'"status":"INTERNAL"}}\r\n\r\n'
    )
    fake.replies.append(Reply(raw=raw, raw_content_type="text/event-stream"))
    events = await collect(provider.stream(request(), MODEL))
    last = events[-1]
    assert isinstance(last, StreamError) and "internal error" in last.error.message


async def test_stream_error_status_and_empty_body_raise_before_first_event(
    provider: GeminiProvider, fake: GeminiFake
) -> None:
    fake.replies.append(Reply(status=429, error_message="Resource has been exhausted"))
    with pytest.raises(RateLimited):
        await collect(provider.stream(request(), MODEL))
    fake.replies.append(Reply(raw=b"", raw_content_type="text/event-stream"))
    with pytest.raises(UpstreamError, match="truncated"):
        await collect(provider.stream(request(), MODEL))


async def test_consumer_closing_the_stream_closes_the_upstream_response(fake: GeminiFake) -> None:
    recorder = RecordingTransport(make_transport("httpx"))
    client = Upstream(fake.base_url, transport=recorder)
    seen = recorder.responses
    try:
        fake.replies.append(Reply(text="x" * 20))
        gen = GeminiProvider(config(fake.base_url), client).stream(request(), MODEL)
        assert isinstance(gen, AsyncGenerator)
        assert isinstance(await gen.__anext__(), StreamStart)
        assert len(seen) == 1 and not seen[0].is_closed
        await gen.aclose()
        assert seen[0].is_closed
    finally:
        await client.aclose()


# -- embeddings, tokens, models ------------------------------------------------------------------


async def test_embed(provider: GeminiProvider, fake: GeminiFake) -> None:
    resp = await provider.embed(
        EmbeddingRequest(model="alias", input=["hello", "world!"], dimensions=4),
        "gemini-embedding-001",
    )
    assert resp.vectors == [fake_vector("hello", 4), fake_vector("world!", 4)]
    assert resp.model == "gemini-embedding-001"
    assert resp.usage.input_tokens == 3  # estimated: Gemini reports none (11 chars / 4)
    rec = fake.requests[0]
    assert rec.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert rec.json["requests"][1] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "world!"}]},
        "outputDimensionality": 4,
    }


async def test_count_tokens(provider: GeminiProvider, fake: GeminiFake) -> None:
    fake.replies.append(Reply(input_tokens=123))
    assert await provider.count_tokens(request(tools=[WEATHER]), MODEL) == 123
    rec = fake.requests[0]
    assert rec.path == f"/v1beta/models/{MODEL}:countTokens"
    assert (
        rec.json["generateContentRequest"]["tools"][0]["functionDeclarations"][0]["name"]
        == "get_weather"
    )


async def test_list_models_follows_pages(provider: GeminiProvider, fake: GeminiFake) -> None:
    fake.models_page_size = 2
    assert await provider.list_models() == fake.models
    assert len(fake.requests) == 2 and "pageToken=2" in fake.requests[1].query
