"""The Provider contract: what the pipeline needs from an upstream, and nothing more.

A provider owns one wire format's outbound side (it encodes the IR with its codec, sends it with
the injected ``Upstream`` of ``providers/http.py`` and decodes the answer). All HTTP failures are
mapped to the ``GatewayError`` tree in one place per provider (``map_transport_error`` below for
transport errors, the codec's ``decode_error`` for error bodies).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from backend.ir.chat import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from backend.ir.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from backend.ir.stream import StreamEnd, StreamError, StreamEvent
from backend.protocols.sse import SSEEvent, SSEParser


@dataclass(slots=True)
class ProviderConfig:
    """Connection settings of one provider (from env now, from the encrypted store later)."""

    name: str  # "openai", "anthropic", "gemini", "ollama", "azure", or a custom compat name
    kind: str  # which adapter: "openai" | "azure" | "anthropic" | "gemini" | "ollama"
    base_url: str
    api_key: str | None = None
    organization: str | None = None
    project: str | None = None
    azure_deployment: str | None = None
    api_version: str | None = None
    enabled: bool = True
    timeout_s: float = 600.0
    extra_headers: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    config: ProviderConfig

    async def chat(self, req: ChatRequest, model: str) -> ChatResponse:
        """Send a non-streaming request for ``model`` (the provider's own model id)."""
        ...

    def stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        """Yield canonical stream events as upstream bytes arrive.

        Raises ``GatewayError`` before the first event if the upstream refuses; after the first
        event, failures are yielded as ``StreamError`` and the iterator ends.
        """
        ...

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse: ...

    async def count_tokens(self, req: ChatRequest, model: str) -> int: ...

    async def list_models(self) -> list[str]: ...


def map_transport_error(exc: Exception, provider: str) -> GatewayError:
    """The single place httpx transport failures become gateway errors (never with secrets)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, httpx.ConnectTimeout) and _refused(exc):
        # httpx-aiohttp reports a refused connection as ConnectTimeout: it is not a timeout.
        return UpstreamUnavailable(f"{provider}: upstream connection refused")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{provider}: upstream timed out")
    if isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
        return UpstreamUnavailable(f"{provider}: upstream connection failed ({type(exc).__name__})")
    if isinstance(exc, httpx.HTTPError):
        return UpstreamError(f"{provider}: upstream transport error ({type(exc).__name__})")
    return UpstreamError(f"{provider}: unexpected upstream failure ({type(exc).__name__})")


class SSEDecoder(Protocol):
    """A protocol's stream decoder over SSE frames (``StreamDecoder`` of each SSE protocol)."""

    def feed(self, ev: SSEEvent) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


class SSEEvents:
    """An upstream SSE body as events, chunk by chunk: ``feed`` and ``close`` for
    ``relay_stream``. The parser decodes UTF-8 incrementally, so a character split across two
    network chunks stays whole; ``close`` flushes the parser, then the decoder."""

    __slots__ = ("_decoder", "_parser")

    def __init__(self, decoder: SSEDecoder) -> None:
        self._parser = SSEParser()
        self._decoder = decoder

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return [ev for sse in self._parser.feed(chunk) for ev in self._decoder.feed(sse)]

    def close(self) -> list[StreamEvent]:
        tail = [ev for sse in self._parser.close() for ev in self._decoder.feed(sse)]
        return tail + self._decoder.close()


async def relay_stream(
    provider: str,
    chunks: AsyncIterator[bytes],
    feed: Callable[[bytes], Iterable[StreamEvent]],
    close: Callable[[], Iterable[StreamEvent]],
    *,
    after_failure: Callable[[GatewayError], Iterable[StreamEvent]] | None = None,
    stop_at_end: bool = False,
) -> AsyncGenerator[StreamEvent, None]:
    """The ``Provider.stream`` contract over an upstream body, shared by every adapter.

    ``feed`` decodes one network chunk into events and ``close`` flushes the decoder when the
    body ends. A failure before the first event is raised (nothing reached the client yet, so a
    fallback may still answer); after it, the failure travels in-band: ``after_failure`` turns
    it into the closing events (default: one ``StreamError``) and the stream ends. With
    ``stop_at_end`` the body is left unread once ``StreamEnd`` arrives.
    """
    started = False
    try:
        async for chunk in chunks:
            for ev in feed(chunk):
                if isinstance(ev, StreamError) and not started:
                    raise ev.error
                started = True
                yield ev
                if isinstance(ev, StreamError) or (stop_at_end and isinstance(ev, StreamEnd)):
                    return
        for ev in close():
            if isinstance(ev, StreamError) and not started:
                raise ev.error
            started = True
            yield ev
            if isinstance(ev, StreamError):
                return
    except Exception as exc:
        err = map_transport_error(exc, provider)
        if not started:
            if err is exc:
                raise
            raise err from exc
        for ev in after_failure(err) if after_failure is not None else (StreamError(err),):
            yield ev


def _refused(exc: BaseException) -> bool:
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or type(cause).__name__ in (
            "ClientConnectorError",
            "ServerDisconnectedError",
            "ClientOSError",
        ):
            return True
        cause = cause.__cause__
    return False


class UnsupportedOperation(GatewayError):
    status = 400
    kind = "invalid_request"
