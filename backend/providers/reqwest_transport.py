"""An httpx transport on ``pyreqwest`` (Rust reqwest, hyper, tokio): the default upstream client.

Why: the HTTP work itself (pool, request head, response parse, chunked decoding) runs in Rust,
outside the GIL, where aiohttp runs it in Python. At 32 concurrent calls against nginx it costs
the gateway's core well under half of what aiohttp costs per call (``benchmarks/README.md``,
"Upstream client"), which makes it the largest single lever on throughput.

What it keeps from the aiohttp transport (``aio_transport.py``), so every provider and test sees
the same behaviour:

- **Pools**: one pyreqwest ``Client`` per transport, and ``make_http_client`` makes one
  transport per provider, so each provider has its own keep-alive pool (idle connections kept
  ``keepalive_s``), as before.
- **HTTP/2 where offered**: over TLS the protocol is negotiated by ALPN; a provider that offers
  h2 gets it, everyone else HTTP/1.1. Plain-HTTP upstreams (local servers, Ollama) stay on 1.1.
- **Timeouts**: connect and per-read timeouts (reqwest's read timeout restarts with every read,
  like aiohttp's ``sock_read``); one client per distinct pair, which is one per provider.
- **Streaming**: the body is handed over chunk by chunk as the socket delivers it
  (``read_chunk``, with pyreqwest's read-ahead buffer cut to one chunk: by default it holds the
  response back until 64 KiB arrived); nothing is buffered whole.
- **Cancellation**: closing the response (or cancelling the task reading it) drops the Rust
  response, and hyper closes a connection whose body was not read to the end: the upstream
  sees the request abandoned at once (``tests/e2e/test_faults.py`` hangs up a client mid-stream
  and checks the upstream connection closes).
- **Same headers on the wire**: reqwest would add ``accept``, ``user-agent`` and title-case
  header names; ``Upstream`` always sets those itself, lower-case names are kept as given
  (``http1_lower_case_headers``) and nothing is decompressed or redirected behind our back
  (``tests/providers/test_transport_wire.py`` compares what a fake receives across transports).
- Errors become httpx's exception family, so ``map_transport_error`` sees one family.

A non-streamed call (``Upstream.send`` without ``stream``) asks for the whole body in one go
(``read_whole`` extension): reqwest reads it in Rust and Python gets it with one await, instead
of one await per network chunk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pyreqwest import exceptions as rq
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.response import Response

from backend.providers.http import READ_WHOLE

_ERRORS: tuple[tuple[type[Exception], type[httpx.RequestError]], ...] = (
    (rq.ConnectTimeoutError, httpx.ConnectTimeout),
    (rq.ReadTimeoutError, httpx.ReadTimeout),
    (rq.WriteTimeoutError, httpx.WriteTimeout),
    (rq.PoolTimeoutError, httpx.PoolTimeout),
    (rq.RequestTimeoutError, httpx.ReadTimeout),
    (rq.ConnectError, httpx.ConnectError),
    (rq.ReadError, httpx.ReadError),
    (rq.WriteError, httpx.WriteError),
    (rq.NetworkError, httpx.ReadError),
    (rq.DecodeError, httpx.DecodingError),
    (rq.BuilderError, httpx.UnsupportedProtocol),
    (rq.RequestError, httpx.RemoteProtocolError),
)


def _mapped(exc: Exception) -> Exception:
    """The httpx exception matching a pyreqwest one (the original is kept as its cause)."""
    for theirs, ours in _ERRORS:
        if isinstance(exc, theirs):
            # reqwest's message names the URL's host and the cause, never a header value.
            return ours(f"{type(exc).__name__}: {exc}")
    return exc


def _honour_lost_cancel(task: asyncio.Task[Any] | None) -> None:
    """Raise the cancel a pyreqwest await swallowed. A cancel that reaches pyreqwest's future
    as it finishes is lost: the await returns its result and no CancelledError follows, so a
    reader of an endless stream whose client hung up would read forever. Called after every
    await on pyreqwest but the stream's opening (its body loop checks at the first chunk)."""
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class _Body(httpx.AsyncByteStream):
    """A streamed upstream body; closing it leaves the request's context (drops the response)."""

    def __init__(self, context: Any, response: Response) -> None:
        self._context = context
        self._reader = response.body_reader
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self._reader.read_chunk
        task = asyncio.current_task()
        try:
            while (chunk := await read()) is not None:
                _honour_lost_cancel(task)
                yield bytes(chunk)
        except rq.PyreqwestError as exc:
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._context.__aexit__(None, None, None)


class DirectResponse(httpx.Response):
    """An ``httpx.Response`` made without ``httpx.Response.__init__``: headers parsed lazily.

    Providers read the status and the body, and the headers only on errors (``retry-after``)
    or to tell a JSON answer from a stream; normalising every header of every answer up front
    was most of what the response object cost. Everything else behaves as httpx's own: the
    body methods (``content``, ``json``, ``aread``, ``aiter_bytes``, ``aclose``) are httpx's.
    """

    def __init__(  # deliberately not calling super().__init__
        self,
        status: int,
        header_map: Any,
        *,
        content: bytes | None = None,
        stream: httpx.AsyncByteStream | None = None,
    ) -> None:
        self.status_code = status
        self._header_map = header_map
        self._parsed: httpx.Headers | None = None
        self._request = None
        self.next_request = None
        self.extensions = {}
        self.history = []
        self.default_encoding = "utf-8"
        self._num_bytes_downloaded = 0
        if content is not None:
            self.stream = httpx.ByteStream(content)
            self._content = content
            self.is_closed = True
            self.is_stream_consumed = True
        else:
            assert stream is not None
            self.stream = stream
            self.is_closed = False
            self.is_stream_consumed = False

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive. reqwest has already decoded gzip/deflate (and
        dropped ``content-encoding``), so httpx's decoder and re-chunker would only copy: they
        cost a stream a few per cent of its CPU. Anything else goes the httpx way."""
        if chunk_size is not None or hasattr(self, "_content") or self._encoded():
            async for part in super().aiter_bytes(chunk_size):
                yield part
            return
        if self.is_stream_consumed:
            raise httpx.StreamConsumed()
        if self.is_closed:
            raise httpx.StreamClosed()
        self.is_stream_consumed = True
        stream = self.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        try:
            async for chunk in stream:
                self._num_bytes_downloaded += len(chunk)
                yield chunk
        finally:
            await self.aclose()

    def _encoded(self) -> bool:
        encoding = self._header_map.get("content-encoding")
        return bool(encoding) and encoding.strip().lower() != "identity"

    @property  # type: ignore[override]
    def headers(self) -> httpx.Headers:
        if self._parsed is None:
            self._parsed = httpx.Headers(list(self._header_map.items()))
        return self._parsed

    @headers.setter
    def headers(self, value: Any) -> None:
        self._parsed = httpx.Headers(value)


class ReqwestTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, limit: int = 1000, keepalive_s: float = 30.0) -> None:
        self._limit = limit
        self._keepalive_s = keepalive_s
        #: (connect, read) timeouts -> client; one entry per provider in practice.
        self._clients: dict[tuple[float | None, float | None], Client] = {}

    def _client(self, request: httpx.Request) -> Client:
        spec = request.extensions.get("timeout") or {}
        return self._client_for(spec.get("connect"), spec.get("read"))

    def _client_for(self, connect_s: float | None, read_s: float | None) -> Client:
        key = (connect_s, read_s)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._build(*key)
        return client

    def _build(self, connect_s: float | None, read_s: float | None) -> Client:
        builder = (
            ClientBuilder()
            .max_connections(self._limit)
            .pool_idle_timeout(dt.timedelta(seconds=self._keepalive_s))
            # Upstream asks for gzip and deflate (accept-encoding, sent as given: reqwest adds
            # its own only when none is set); reqwest decodes those in Rust and drops the
            # content-encoding header, so httpx never decodes twice. Nothing else is asked for.
            .gzip(True)
            .deflate(True)
            .brotli(False)
            .zstd(False)
            .follow_redirects(False)
            .referer(False)
            .http1_lower_case_headers()
            .http2(True)
        )
        if connect_s is not None:
            builder = builder.connect_timeout(dt.timedelta(seconds=connect_s))
        if read_s is not None:
            builder = builder.read_timeout(dt.timedelta(seconds=read_s))
        return builder.build()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        builder = (
            self._client(request)
            .request(request.method, str(request.url))
            .headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw])
        )
        content = request.content
        if content:
            builder = builder.body_bytes(content)
        try:
            if request.extensions.get(READ_WHOLE):
                task = asyncio.current_task()
                response = await builder.build().send()
                _honour_lost_cancel(task)
                body = bytes(await response.bytes())
                _honour_lost_cancel(task)
                whole = httpx.Response(
                    status_code=response.status,
                    headers=list(response.headers.items()),
                    # A stream, not content=: that would add a content-length header.
                    stream=httpx.ByteStream(body),
                    request=request,
                )
                whole.read()  # decodes a compressed body, as aread() would
                return whole
            # pyreqwest reads ahead up to this many bytes before handing the response over
            # (64 KiB by default): a stream would reach the client only once 64 KiB or the
            # whole answer arrived. One byte = hand over each chunk as soon as it is read.
            context = builder.streamed_read_buffer_limit(1).build_streamed()
            response = await context.__aenter__()
        except rq.PyreqwestError as exc:
            raise _mapped(exc) from exc
        return httpx.Response(
            status_code=response.status,
            headers=list(response.headers.items()),
            stream=_Body(context, response),
            request=request,
        )

    async def send_direct(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        content: bytes | None,
        *,
        read_whole: bool,
        connect_s: float,
        read_s: float,
    ) -> httpx.Response:
        """``Upstream``'s hot path (``providers.http.DirectSend``): no httpx request object."""
        builder = self._client_for(connect_s, read_s).request(method, url).headers(headers)
        if content:
            builder = builder.body_bytes(content)
        try:
            if read_whole:
                task = asyncio.current_task()
                response = await builder.build().send()
                _honour_lost_cancel(task)
                body = bytes(await response.bytes())
                _honour_lost_cancel(task)
                return DirectResponse(response.status, response.headers, content=body)
            context = builder.streamed_read_buffer_limit(1).build_streamed()
            response = await context.__aenter__()
        except rq.PyreqwestError as exc:
            raise _mapped(exc) from exc
        return DirectResponse(response.status, response.headers, stream=_Body(context, response))

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.close()
