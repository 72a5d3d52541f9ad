"""OllamaProvider against OllamaFake over real HTTP (both transports)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
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
from backend.providers.http import TransportName, Upstream, make_http_client, make_transport
from backend.providers.ollama import OllamaProvider, estimate_tokens
from tests.fakes.base import Reply, ToolCall, free_port
from tests.fakes.gemini_fake import fake_vector
from tests.fakes.ollama_fake import OllamaFake
from tests.providers.recording import RecordingTransport

MODEL = "llama3.2"
WEATHER = Tool(
    "get_weather",
    "Weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(scope="module")
def fake() -> Iterator[OllamaFake]:
    with OllamaFake() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _clean(fake: OllamaFake) -> None:
    fake.reset()
    fake.tool_call_ids = False


@pytest.fixture(scope="module", params=["reqwest", "aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest, fake: OllamaFake) -> AsyncIterator[Upstream]:
    transport: TransportName = request.param
    c = make_http_client(fake.base_url, transport=transport, timeout_s=5)
    yield c
    await c.aclose()


def config(base_url: str, **over: Any) -> ProviderConfig:
    fields: dict[str, Any] = {"name": "ollama", "kind": "ollama", "base_url": base_url}
    fields.update(over)
    return ProviderConfig(**fields)


@pytest.fixture
def provider(fake: OllamaFake, client: Upstream) -> OllamaProvider:
    return OllamaProvider(config(fake.base_url), client)


def request(text: str = "hi", **over: Any) -> ChatRequest:
    return ChatRequest(model="alias", messages=[Message("user", [TextPart(text)])], **over)


async def collect(gen: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [ev async for ev in gen]


# -- chat ----------------------------------------------------------------------------------------


async def test_chat_plain(provider: OllamaProvider, fake: OllamaFake) -> None:
    fake.replies.append(Reply(text="Hello there", input_tokens=26, output_tokens=3))
    resp = await provider.chat(request(max_tokens=50, temperature=0.1, stop=["\n\n"]), MODEL)
    assert resp.content == [TextPart("Hello there")]
    assert resp.finish_reason == "stop"
    assert resp.usage == Usage(input_tokens=26, output_tokens=3)
    assert resp.model == "llama3.2:latest" and resp.created > 0
    rec = fake.requests[0]
    assert rec.path == "/api/chat"
    assert rec.json == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "options": {"num_predict": 50, "temperature": 0.1, "stop": ["\n\n"]},
    }
    assert "authorization" not in rec.headers


async def test_api_key_and_extra_headers_when_configured(fake: OllamaFake) -> None:
    async with make_http_client(fake.base_url, transport="httpx") as c:
        p = OllamaProvider(
            config(fake.base_url + "/", api_key="olk", extra_headers={"x-a": "1"}), c
        )
        await p.chat(request(), MODEL)
    assert fake.requests[0].headers["authorization"] == "Bearer olk"
    assert fake.requests[0].headers["x-a"] == "1"


async def test_length(provider: OllamaProvider, fake: OllamaFake) -> None:
    fake.replies.append(Reply(text="cut", finish="length"))
    assert (await provider.chat(request(), MODEL)).finish_reason == "length"


@pytest.mark.parametrize("with_ids", [False, True])
async def test_tool_call_round_trip(
    provider: OllamaProvider, fake: OllamaFake, with_ids: bool
) -> None:
    fake.tool_call_ids = with_ids
    fake.replies.append(
        Reply(
            text=None,
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}, id="call_p"),
                ToolCall("get_weather", {"city": "Rome"}, id="call_r"),
            ],
        )
    )
    req = request("Weather in Paris and Rome?", tools=[WEATHER])
    first = await provider.chat(req, "qwen3:8b")
    assert first.finish_reason == "tool_calls"
    calls = [p for p in first.content if isinstance(p, ToolCallPart)]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert len({c.id for c in calls}) == 2
    if with_ids:
        assert [c.id for c in calls] == ["call_p", "call_r"]
    assert fake.requests[0].json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": WEATHER.parameters,
            },
        }
    ]

    follow_up = ChatRequest(
        model="alias",
        messages=[
            *req.messages,
            Message("assistant", list(first.content)),
            Message("user", [ToolResultPart(calls[1].id, [TextPart("25C")])]),
            Message("user", [ToolResultPart(calls[0].id, [TextPart("21C")])]),
        ],
        tools=[WEATHER],
    )
    fake.replies.append(Reply(text="Paris 21C, Rome 25C."))
    second = await provider.chat(follow_up, "qwen3:8b")
    assert second.content == [TextPart("Paris 21C, Rome 25C.")]
    messages = fake.requests[1].json["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}},
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "content": "25C", "tool_name": "get_weather"},
        {"role": "tool", "content": "21C", "tool_name": "get_weather"},
    ]


async def test_images_are_sent_inline(provider: OllamaProvider, fake: OllamaFake) -> None:
    req = ChatRequest(
        model="alias",
        messages=[
            Message(
                "user",
                [
                    TextPart("What is this?"),
                    ImagePart(data="aGVsbG8=", media_type="image/png"),
                    ImagePart(url="data:image/png;base64,d29ybGQ="),
                ],
            )
        ],
    )
    await provider.chat(req, MODEL)
    assert fake.requests[0].json["messages"][0]["images"] == ["aGVsbG8=", "d29ybGQ="]


@pytest.mark.parametrize(
    ("status", "exc", "retryable"),
    [
        (400, InvalidRequest, False),
        (404, NotFound, False),
        (500, UpstreamError, True),
        (503, UpstreamUnavailable, True),
    ],
)
async def test_error_statuses_are_mapped(
    provider: OllamaProvider,
    fake: OllamaFake,
    status: int,
    exc: type[GatewayError],
    retryable: bool,
) -> None:
    fake.replies.append(Reply(status=status, error_message="runner failed"))
    with pytest.raises(exc) as info:
        await provider.chat(request(), MODEL)
    assert info.value.retryable is retryable and "runner failed" in info.value.message


async def test_unpulled_model_is_not_found(provider: OllamaProvider) -> None:
    with pytest.raises(NotFound, match="try pulling it first"):
        await provider.chat(request(), "llama9")
    with pytest.raises(NotFound):
        await collect(provider.stream(request(), "llama9"))


async def test_malformed_200_is_an_upstream_error(
    provider: OllamaProvider, fake: OllamaFake
) -> None:
    fake.replies.append(Reply(raw=b"<html>proxy</html>"))
    with pytest.raises(UpstreamError):
        await provider.chat(request(), MODEL)


async def test_timeout_and_refused_connection(fake: OllamaFake) -> None:
    fake.replies.append(Reply(delay=1.0))
    async with make_http_client(fake.base_url, transport="httpx", timeout_s=0.2) as slow:
        with pytest.raises(UpstreamTimeout):
            await OllamaProvider(config(fake.base_url), slow).chat(request(), MODEL)
    dead_url = f"http://127.0.0.1:{free_port()}"
    async with make_http_client(dead_url, transport="httpx") as dead:
        with pytest.raises(UpstreamUnavailable):
            await OllamaProvider(config(dead_url), dead).list_models()
        with pytest.raises(UpstreamUnavailable):
            await collect(OllamaProvider(config(dead_url), dead).stream(request(), MODEL))


# -- stream --------------------------------------------------------------------------------------


async def test_stream_text(provider: OllamaProvider, fake: OllamaFake) -> None:
    fake.replies.append(Reply(text="abcdefgh", chunks=4, input_tokens=9, output_tokens=4))
    events = await collect(provider.stream(request(), MODEL))
    assert fake.requests[0].json["stream"] is True
    start = events[0]
    assert isinstance(start, StreamStart) and start.model == "llama3.2:latest"
    assert events[1:] == [
        BlockStart(0, "text"),
        TextDelta(0, "ab"),
        TextDelta(0, "cd"),
        TextDelta(0, "ef"),
        TextDelta(0, "gh"),
        BlockStop(0),
        StreamEnd("stop", Usage(input_tokens=9, output_tokens=4)),
    ]


async def test_stream_tool_calls(provider: OllamaProvider, fake: OllamaFake) -> None:
    fake.replies.append(
        Reply(text="Checking.", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})])
    )
    events = await collect(provider.stream(request(tools=[WEATHER]), "qwen3:8b"))
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert [(s.kind, s.tool_name) for s in starts] == [
        ("text", None),
        ("tool_call", "get_weather"),
    ]
    assert starts[1].tool_call_id and starts[1].tool_call_id.startswith("call_")
    assert [e.partial_json for e in events if isinstance(e, ToolArgsDelta)] == ['{"city":"Oslo"}']
    assert events[-1] == StreamEnd("tool_calls", Usage(input_tokens=10, output_tokens=5))


async def test_truncated_stream_yields_stream_error(
    provider: OllamaProvider, fake: OllamaFake
) -> None:
    fake.replies.append(Reply(text="abcdefgh", chunks=4, drop_after=2))
    events = await collect(provider.stream(request(), MODEL))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "abcd"
    assert events[-2] == BlockStop(0)
    last = events[-1]
    assert isinstance(last, StreamError) and last.error.retryable


async def test_drop_after_done_still_ends(provider: OllamaProvider, fake: OllamaFake) -> None:
    fake.replies.append(Reply(text="ab", chunks=1, drop_after=2))
    events = await collect(provider.stream(request(), MODEL))
    assert events[-1] == StreamEnd("stop", Usage(input_tokens=10, output_tokens=5))


@pytest.mark.parametrize(
    "raw",
    [
        # Clean close without the done line.
        b'{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant",'
        b'"content":"Hi"},"done":false}\n',
        # Cut in the middle of a line.
        b'{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant",'
        b'"content":"Hi"},"done":false}\n{"model":"m","mess',
    ],
)
async def test_clean_close_without_done_is_truncated(
    provider: OllamaProvider, fake: OllamaFake, raw: bytes
) -> None:
    fake.replies.append(Reply(raw=raw, raw_content_type="application/x-ndjson"))
    events = await collect(provider.stream(request(), MODEL))
    last = events[-1]
    assert isinstance(last, StreamError) and "truncated" in last.error.message


async def test_final_line_without_newline_counts(
    provider: OllamaProvider, fake: OllamaFake
) -> None:
    raw = (
        b'{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant",'
        b'"content":"Hi"},"done":false}\n{"model":"m","created_at":"2026-01-01T00:00:01Z",'
        b'"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop",'
        b'"prompt_eval_count":3,"eval_count":1}'
    )
    fake.replies.append(Reply(raw=raw, raw_content_type="application/x-ndjson"))
    events = await collect(provider.stream(request(), MODEL))
    assert events[-1] == StreamEnd("stop", Usage(input_tokens=3, output_tokens=1))


async def test_error_line_mid_stream(provider: OllamaProvider, fake: OllamaFake) -> None:
    raw = (
        b'{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant",'
        b'"content":"Hi"},"done":false}\n{"error":"llama runner process has terminated"}\n'
    )
    fake.replies.append(Reply(raw=raw, raw_content_type="application/x-ndjson"))
    events = await collect(provider.stream(request(), MODEL))
    last = events[-1]
    assert isinstance(last, StreamError) and "runner process" in last.error.message


async def test_error_line_first_raises(provider: OllamaProvider, fake: OllamaFake) -> None:
    fake.replies.append(Reply(raw=b'{"error":"out of memory"}\n'))
    with pytest.raises(UpstreamError, match="out of memory"):
        await collect(provider.stream(request(), MODEL))


async def test_consumer_closing_the_stream_closes_the_upstream_response(fake: OllamaFake) -> None:
    recorder = RecordingTransport(make_transport("httpx"))
    client = Upstream(fake.base_url, transport=recorder)
    seen = recorder.responses
    try:
        fake.replies.append(Reply(text="x" * 20))
        gen = OllamaProvider(config(fake.base_url), client).stream(request(), MODEL)
        assert isinstance(gen, AsyncGenerator)
        assert isinstance(await gen.__anext__(), StreamStart)
        assert len(seen) == 1 and not seen[0].is_closed
        await gen.aclose()
        assert seen[0].is_closed
    finally:
        await client.aclose()


# -- embeddings, tokens, models ------------------------------------------------------------------


async def test_embed(provider: OllamaProvider, fake: OllamaFake) -> None:
    fake.replies.append(Reply(input_tokens=6))
    resp = await provider.embed(
        EmbeddingRequest(model="alias", input=["hello", "world"], dimensions=4),
        "nomic-embed-text",
    )
    assert resp.vectors == [fake_vector("hello", 4), fake_vector("world", 4)]
    assert resp.usage.input_tokens == 6
    rec = fake.requests[0]
    assert rec.path == "/api/embed"
    assert rec.json == {"model": "nomic-embed-text", "input": ["hello", "world"], "dimensions": 4}


async def test_count_tokens_is_an_estimate(provider: OllamaProvider, fake: OllamaFake) -> None:
    req = request("x" * 400)
    assert await provider.count_tokens(req, MODEL) == 100 + 4
    assert estimate_tokens(request("x" * 400, tools=[WEATHER])) > 104
    with_image = ChatRequest(
        model="m", messages=[Message("user", [ImagePart(data="AAAA", media_type="image/png")])]
    )
    assert estimate_tokens(with_image) == 256 + 4
    assert fake.requests == [], "no upstream call"


async def test_list_models(provider: OllamaProvider, fake: OllamaFake) -> None:
    fake.models = ["llama3.2:latest", "mistral:7b"]
    try:
        assert await provider.list_models() == ["llama3.2:latest", "mistral:7b"]
    finally:
        fake.models = ["llama3.2:latest", "qwen3:8b", "nomic-embed-text:latest"]
