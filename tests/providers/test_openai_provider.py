"""OpenAIProvider / AzureOpenAIProvider against OpenAIFake over real HTTP (both transports)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    TextPart,
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
    ToolArgsDelta,
)
from backend.protocols.openai_chat import decode_request
from backend.providers.base import ProviderConfig
from backend.providers.http import TransportName, Upstream, make_http_client, make_transport
from backend.providers.openai import (
    AZURE_DEFAULT_API_VERSION,
    AzureOpenAIProvider,
    OpenAIProvider,
    make_openai_provider,
)
from tests.fakes.base import Reply, ToolCall, free_port
from tests.fakes.openai_fake import OpenAIFake, fake_vector
from tests.providers.recording import RecordingTransport


@pytest.fixture(scope="module")
def fake() -> Iterator[OpenAIFake]:
    with OpenAIFake() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(fake: OpenAIFake) -> None:
    fake.reset()


@pytest.fixture(params=["reqwest", "aiohttp", "httpx-aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest, fake: OpenAIFake) -> AsyncIterator[Upstream]:
    transport: TransportName = request.param
    c = make_http_client(fake.sdk_base_url, transport=transport, timeout_s=5)
    yield c
    await c.aclose()


def config(base_url: str, **over: Any) -> ProviderConfig:
    fields: dict[str, Any] = {
        "name": "openai",
        "kind": "openai",
        "base_url": base_url,
        "api_key": "sk-upstream-secret",
    }
    fields.update(over)
    return ProviderConfig(**fields)


@pytest.fixture
def provider(fake: OpenAIFake, client: Upstream) -> OpenAIProvider:
    return OpenAIProvider(
        config(
            fake.sdk_base_url, organization="org-1", project="proj-1", extra_headers={"x-team": "a"}
        ),
        client,
    )


def request(text: str = "hi", **over: Any) -> ChatRequest:
    return decode_request(
        {"model": "alias", "messages": [{"role": "user", "content": text}], **over}
    )


async def collect(it: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [ev async for ev in it]


# -- chat ------------------------------------------------------------------------------------------
async def test_chat_plain(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    fake.replies.append(Reply(text="Hello!", input_tokens=7, output_tokens=2, cached_tokens=3))
    resp = await provider.chat(request(temperature=0.5), "gpt-4o-mini")
    assert resp.content == [TextPart("Hello!")]
    assert resp.finish_reason == "stop"
    assert resp.usage == Usage(input_tokens=7, output_tokens=2, cached_tokens=3)
    rec = fake.requests[0]
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer sk-upstream-secret"
    assert rec.headers["openai-organization"] == "org-1"
    assert rec.headers["openai-project"] == "proj-1"
    assert rec.headers["x-team"] == "a"
    assert rec.json == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5,
    }


async def test_chat_tool_call(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    fake.replies.append(Reply(text=None, tool_calls=[ToolCall("lookup", {"q": "x"}, id="call_9")]))
    resp = await provider.chat(request(), "gpt-4o-mini")
    assert resp.content == [ToolCallPart("call_9", "lookup", '{"q":"x"}')]
    assert resp.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("status", "cls", "client_status"),
    [
        (400, InvalidRequest, 400),
        (401, UpstreamError, 502),
        (403, UpstreamError, 502),
        (404, NotFound, 404),
        (429, RateLimited, 429),
        (500, UpstreamError, 502),
        (503, UpstreamUnavailable, 503),
    ],
)
async def test_error_statuses_are_mapped(
    provider: OpenAIProvider, fake: OpenAIFake, status: int, cls: type, client_status: int
) -> None:
    for call in ("chat", "stream"):
        fake.replies.append(Reply(status=status, error_message=f"nope {status}"))
        with pytest.raises(GatewayError) as info:
            if call == "chat":
                await provider.chat(request(), "gpt-4o-mini")
            else:
                await collect(provider.stream(request(), "gpt-4o-mini"))
        assert type(info.value) is cls, call
        assert info.value.status == client_status
        assert f"nope {status}" in info.value.message


async def test_malformed_200_is_an_upstream_error(
    provider: OpenAIProvider, fake: OpenAIFake
) -> None:
    fake.replies.append(Reply(raw=b"not json"))
    with pytest.raises(UpstreamError, match="invalid JSON"):
        await provider.chat(request(), "gpt-4o-mini")
    fake.replies.append(Reply(raw=b'{"object": "chat.completion", "choices": []}'))
    with pytest.raises(UpstreamError, match="no choices"):
        await provider.chat(request(), "gpt-4o-mini")


async def test_timeout_and_refused_connection(fake: OpenAIFake) -> None:
    slow = make_http_client(fake.sdk_base_url, transport="httpx", timeout_s=0.2)
    try:
        fake.replies.append(Reply(delay=1.0))
        with pytest.raises(UpstreamTimeout):
            await OpenAIProvider(config(fake.sdk_base_url), slow).chat(request(), "m")
    finally:
        await slow.aclose()
    dead_url = f"http://127.0.0.1:{free_port()}/v1"
    dead = make_http_client(dead_url, transport="httpx", timeout_s=2)
    try:
        p = OpenAIProvider(config(dead_url), dead)
        with pytest.raises(UpstreamUnavailable):
            await p.chat(request(), "m")
        with pytest.raises(UpstreamUnavailable):
            await collect(p.stream(request(), "m"))
    finally:
        await dead.aclose()


# -- stream ----------------------------------------------------------------------------------------
async def test_stream_text(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    fake.replies.append(Reply(text="Hello world", chunks=3, input_tokens=9, output_tokens=2))
    events = await collect(provider.stream(request(), "gpt-4o-mini"))
    assert isinstance(events[0], StreamStart) and events[0].model == "gpt-4o-mini"
    assert events[1] == BlockStart(0, "text")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello world"
    assert events[-1] == StreamEnd("stop", Usage(input_tokens=9, output_tokens=2))
    body = fake.requests[0].json
    # Usage is always requested upstream, even though the client did not ask for it.
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_stream_tool_calls(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    fake.replies.append(
        Reply(
            text=None,
            tool_calls=[ToolCall("a", {"x": 1}, id="c1"), ToolCall("b", {"y": [2]}, id="c2")],
        )
    )
    events = await collect(provider.stream(request(), "gpt-4o-mini"))
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert starts == [
        BlockStart(0, "tool_call", tool_call_id="c1", tool_name="a"),
        BlockStart(1, "tool_call", tool_call_id="c2", tool_name="b"),
    ]
    args = [
        "".join(e.partial_json for e in events if isinstance(e, ToolArgsDelta) and e.index == i)
        for i in (0, 1)
    ]
    assert args == ['{"x":1}', '{"y":[2]}']
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "tool_calls"


async def test_drop_mid_stream_yields_stream_error(
    provider: OpenAIProvider, fake: OpenAIFake
) -> None:
    fake.replies.append(Reply(text="abcdefgh", drop_after=3))
    events = await collect(provider.stream(request(), "gpt-4o-mini"))
    assert isinstance(events[0], StreamStart)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "ab"
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, UpstreamError)
    assert not any(isinstance(e, StreamEnd) for e in events)


async def test_drop_after_finish_before_done_still_ends(
    provider: OpenAIProvider, fake: OpenAIFake
) -> None:
    # role, "ab", finish, usage chunk: all 4 frames arrive, then the connection drops.
    fake.replies.append(Reply(text="ab", chunks=1, drop_after=4))
    events = await collect(provider.stream(request(), "gpt-4o-mini"))
    # The transport error arrives after the finish and usage: the answer is complete.
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "ab"
    assert events[-1] == StreamEnd("stop", Usage(input_tokens=10, output_tokens=5))
    assert not any(isinstance(e, StreamError) for e in events)


async def test_error_frame_mid_stream(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    raw = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
        b'[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n'
        b'data: {"error":{"message":"The server had an error","type":"server_error",'
        b'"param":null,"code":null}}\n\n'
    )
    fake.replies.append(Reply(raw=raw, raw_content_type="text/event-stream"))
    events = await collect(provider.stream(request(), "m"))
    assert isinstance(events[-1], StreamError)
    assert "The server had an error" in events[-1].error.message


async def test_error_frame_before_any_event_raises(
    provider: OpenAIProvider, fake: OpenAIFake
) -> None:
    raw = b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'
    fake.replies.append(Reply(raw=raw, raw_content_type="text/event-stream"))
    with pytest.raises(UpstreamError, match="overloaded"):
        await collect(provider.stream(request(), "m"))


@pytest.mark.parametrize("transport", ["reqwest", "aiohttp", "httpx"])
async def test_consumer_closing_the_stream_closes_the_upstream_response(
    fake: OpenAIFake, transport: TransportName
) -> None:
    recorder = RecordingTransport(make_transport(transport))
    client = Upstream(fake.sdk_base_url, transport=recorder)
    seen = recorder.responses
    try:
        fake.replies.append(Reply(text="x" * 20))
        gen = OpenAIProvider(config(fake.sdk_base_url), client).stream(request(), "m")
        assert isinstance(gen, AsyncGenerator)
        first = await gen.__anext__()
        assert isinstance(first, StreamStart)
        assert len(seen) == 1 and not seen[0].is_closed
        await gen.aclose()  # what the proxy does when the client goes away
        assert seen[0].is_closed
    finally:
        await client.aclose()


# -- Azure -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["", "/openai"])
async def test_azure_paths_and_api_key(fake: OpenAIFake, suffix: str) -> None:
    base = fake.base_url + suffix
    client = make_http_client(base, transport="httpx")
    try:
        cfg = config(base, kind="azure", name="azure", api_key="az-key", api_version="2025-01-01")
        provider = make_openai_provider(cfg, client)
        assert isinstance(provider, AzureOpenAIProvider)
        resp = await provider.chat(request(), "gpt-4o")
        assert resp.content == [TextPart("ok")]
        fake.replies.append(Reply(text="streamed"))
        events = await collect(provider.stream(request(), "gpt-4o"))
        assert isinstance(events[-1], StreamEnd)
        for rec in fake.requests:
            assert rec.path == "/openai/deployments/gpt-4o/chat/completions"
            assert rec.query == "api-version=2025-01-01"
            assert rec.headers["api-key"] == "az-key"
            assert "authorization" not in rec.headers
        fixed = AzureOpenAIProvider(
            config(base, kind="azure", api_key="k", azure_deployment="prod-deploy"), client
        )
        vectors = await fixed.embed(
            EmbeddingRequest(model="e", input=["q"]), "text-embedding-3-small"
        )
        assert vectors.vectors == [fake_vector("q", 8)]
        assert fake.requests[-1].path == "/openai/deployments/prod-deploy/embeddings"
        assert fake.requests[-1].query == f"api-version={AZURE_DEFAULT_API_VERSION}"
        assert await fixed.list_models() == ["prod-deploy"]
    finally:
        await client.aclose()


# -- the rest of the Provider protocol -------------------------------------------------------------
async def test_embed_float_and_base64(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    plain = await provider.embed(
        EmbeddingRequest(model="alias", input=["a", "b"], dimensions=4), "te-3"
    )
    assert plain.vectors == [fake_vector("a", 4), fake_vector("b", 4)]
    assert plain.usage.input_tokens == 10
    assert fake.requests[0].json == {"model": "te-3", "input": ["a", "b"], "dimensions": 4}
    packed = await provider.embed(
        EmbeddingRequest(model="alias", input=["a"], encoding_format="base64"), "te-3"
    )
    assert packed.vectors == [fake_vector("a", 8)]


async def test_list_models_and_count_tokens(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    assert await provider.list_models() == list(OpenAIFake.model_ids)
    assert fake.requests[0].path == "/v1/models"
    short = await provider.count_tokens(request("hi"), "gpt-4o-mini")
    long = await provider.count_tokens(request("hello " * 100), "gpt-4o-mini")
    assert 0 < short < long
    assert 140 <= long <= 170  # 600 characters at ~4 per token, plus framing


# -- quirks of compatible servers (scripted with httpx.MockTransport) -----------------------------
def mock_provider(handler: Any) -> tuple[OpenAIProvider, Upstream]:
    client = Upstream("http://compat.local/v1", transport=httpx.MockTransport(handler))
    return OpenAIProvider(config("http://compat.local/v1", name="compat"), client), client


async def test_retry_after_from_upstream_429_is_kept() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, headers={"retry-after": "7"}, json={"error": {"message": "busy"}}
        )

    provider, client = mock_provider(handler)
    async with client:
        with pytest.raises(RateLimited) as info:
            await provider.chat(request(), "m")
    assert info.value.headers == {"retry-after": "7"}
    assert info.value.message == "compat: busy"


async def test_server_ignoring_stream_is_replayed_as_events() -> None:
    answer = {
        "id": "x1",
        "object": "chat.completion",
        "created": 3,
        "model": "local-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "tool_calls": [
                        {
                            "id": "t",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    provider, client = mock_provider(handler)
    async with client:
        events = await collect(provider.stream(request(), "local-model"))
    assert events == [
        StreamStart(id="x1", model="local-model", created=3),
        BlockStart(0, "text"),
        TextDelta(0, "hi"),
        BlockStop(0),
        BlockStart(1, "tool_call", tool_call_id="t", tool_name="f"),
        ToolArgsDelta(1, "{}"),
        BlockStop(1),
        StreamEnd("tool_calls", Usage(input_tokens=4, output_tokens=2)),
    ]


async def test_azure_lists_models_without_a_fixed_deployment(fake: OpenAIFake) -> None:
    client = make_http_client(fake.base_url, transport="httpx")
    try:
        provider = AzureOpenAIProvider(config(fake.base_url, kind="azure", api_key="k"), client)
        assert await provider.list_models() == list(OpenAIFake.model_ids)
        assert fake.requests[0].path == "/openai/models"
        assert fake.requests[0].query == f"api-version={AZURE_DEFAULT_API_VERSION}"
    finally:
        await client.aclose()


async def test_azure_refuses_dot_segment_deployments() -> None:
    """A model id of '..' must not climb out of /openai/deployments/ (URL parsers resolve it)."""
    from backend.ir.chat import ChatRequest, Message, TextPart
    from backend.ir.errors import InvalidRequest
    from backend.providers.base import ProviderConfig
    from backend.providers.http import make_http_client
    from backend.providers.openai import AzureOpenAIProvider

    config = ProviderConfig(name="azure", kind="azure", base_url="http://127.0.0.1:9", api_key="k")
    client = make_http_client(config.base_url)
    try:
        provider = AzureOpenAIProvider(config, client)
        req = ChatRequest(model="x", messages=[Message("user", [TextPart("hi")])])
        for bad in ("..", "../../v1/models", "a/../b"):
            with pytest.raises(InvalidRequest):
                await provider.chat(req, bad)
    finally:
        await client.aclose()


async def test_upstream_request_headers_are_ours_alone(
    provider: OpenAIProvider, fake: OpenAIFake
) -> None:
    """Every transport sends the same request: our user agent, one host, the exact body length."""
    fake.reset()
    await provider.chat(request("hello"), "gpt-4o-mini")
    sent = fake.requests[-1]
    assert sent.headers["user-agent"] == "switchboard"
    assert sent.headers["host"] == fake.sdk_base_url.split("//")[1].split("/")[0]
    assert int(sent.headers["content-length"]) == len(sent.body)
    assert sent.headers["authorization"] == "Bearer sk-upstream-secret"
    assert sent.headers["x-team"] == "a" and sent.headers["openai-project"] == "proj-1"
