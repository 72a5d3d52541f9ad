"""Upstream HTTP: one pooled ``Upstream`` per provider, speaking httpx's types, transport swappable.

Providers build ``httpx.Request`` objects and get ``httpx.Response`` objects back, but skip
``httpx.AsyncClient``: its per-request machinery (URL merge and re-parse, header and cookie
objects, auth and redirect generators, timers) measured ~400 µs of CPU per call on these
machines, as much as the HTTP work itself, and a gateway needs none of it (no cookies, no
redirects, credentials set per provider). ``Upstream`` memoises the joined URLs, sets the timeout
once, and hands each request straight to the transport.

Transports (``SWITCHBOARD_TRANSPORT``): ``reqwest`` (default, ``reqwest_transport``: pyreqwest,
the HTTP work in Rust), ``aiohttp`` (``aio_transport.AioTransport``), ``httpx-aiohttp`` (the
``httpx-aiohttp`` package's adapter) and ``httpx`` (plain httpcore, an order of magnitude slower
under concurrency here); ``benchmarks/`` compares them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Literal, Protocol

import httpx

#: Request extension: the body will be read whole (``reqwest_transport`` reads it in one call).
READ_WHOLE = "switchboard.read_whole"

TransportName = Literal["reqwest", "aiohttp", "httpx-aiohttp", "httpx"]
#: What ``SWITCHBOARD_TRANSPORT`` defaults to (chosen by ``benchmarks/``).
DEFAULT_TRANSPORT: TransportName = "reqwest"

#: Sent on every upstream request unless the provider sets them; compressed answers are
#: decoded by ``httpx.Response``.
_DEFAULT_HEADERS = {
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
    "user-agent": "switchboard",
}
#: Distinct (path, query) pairs per provider are few; past this the memo starts over.
_URL_MEMO_LIMIT = 1024

Params = Mapping[str, str | int | float] | None

#: Awaited by a streamed upstream body before each read from the network: the proxy's streaming
#: response sets it to send what the previous read produced (``proxy/streaming.py``). Unset,
#: nothing happens. Per task, so concurrent streams never see each other's hook.
before_upstream_read: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "before_upstream_read", default=None
)
#: Trace-context headers (W3C ``traceparent``...) added to every upstream request built in
#: this context: set per provider attempt by ``observability.tracing``, empty when tracing is off.
upstream_trace_headers: ContextVar[tuple[tuple[bytes, bytes], ...]] = ContextVar(
    "upstream_trace_headers", default=()
)


class DirectSend(Protocol):
    """What a transport offers to skip httpx's request and response objects on the hot path.

    ``ReqwestTransport.send_direct`` implements it: ``Upstream`` hands over the method, the
    URL as text and the header pairs it prepared once per provider, and gets back an
    ``httpx.Response`` whose headers are parsed only if someone reads them. Building httpx's
    ``Request`` and ``Response`` (header normalisation, URL objects, byte streams) cost the
    gateway more CPU than the native client's whole HTTP exchange.
    """

    def __call__(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        content: bytes | None,
        *,
        read_whole: bool,
        connect_s: float,
        read_s: float,
    ) -> Awaitable[httpx.Response]: ...


class _FlushingBody(httpx.AsyncByteStream):
    """An upstream body that awaits the ``before_upstream_read`` hook before each read.

    The hook is looked up at each read, in the reader's context: a stream is opened while the
    request is decided, before the response that sets the hook exists.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._inner.__aiter__()
        while True:
            hook = before_upstream_read.get()
            if hook is not None:
                await hook()
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_transport(name: TransportName = DEFAULT_TRANSPORT) -> httpx.AsyncBaseTransport:
    if name == "reqwest":
        from backend.providers.reqwest_transport import ReqwestTransport

        return ReqwestTransport()
    if name == "httpx":
        return httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        )
    if name == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport(limits=httpx.Limits(max_connections=1000))
    from backend.providers.aio_transport import AioTransport

    return AioTransport()


class Upstream:
    """The HTTP client of one provider: ``request``/``get``/``post``/``stream`` like httpx's."""

    def __init__(
        self,
        base_url: str = "",
        *,
        transport: httpx.AsyncBaseTransport,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        base = httpx.URL(base_url)
        if base_url and not base.raw_path.endswith(b"/"):
            base = base.copy_with(raw_path=base.raw_path + b"/")
        self.base_url = base
        self._transport = transport
        defaults = {**_DEFAULT_HEADERS, **{k.lower(): v for k, v in (headers or {}).items()}}
        self._default_raw = [(k.encode(), v.encode()) for k, v in defaults.items()]
        self._default_pairs = list(defaults.items())
        self._connect_s = connect_timeout_s
        self._read_s = timeout_s
        self._direct: DirectSend | None = getattr(transport, "send_direct", None)
        timeouts = {
            "connect": connect_timeout_s,
            "read": timeout_s,
            "write": timeout_s,
            "pool": timeout_s,
        }
        self._extensions = {"timeout": timeouts}
        # A hint for transports that can read a whole body in one call (reqwest_transport):
        # set when the caller is going to read the whole body anyway.
        self._whole_extensions = {"timeout": timeouts, READ_WHOLE: True}
        #: (path, query) -> the joined URL and its host header (netloc is computed per access).
        self._urls: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[httpx.URL, bytes]] = {}
        #: The same, as text, for ``send_direct``: (url, host).
        self._texts: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[str, str]] = {}
        self.is_closed = False

    # -- building ------------------------------------------------------------------------------
    def url(self, url: str, params: Params = None) -> httpx.URL:
        """``url`` (absolute, or relative to the base URL) with ``params``, memoised."""
        return self._target(url, params)[0]

    def _target(self, url: str, params: Params) -> tuple[httpx.URL, bytes]:
        key = (url, tuple(params.items()) if params else ())
        built = self._urls.get(key)
        if built is None:
            if len(self._urls) >= _URL_MEMO_LIMIT:
                self._urls.clear()
            joined = self._join(url, params)
            built = self._urls[key] = (joined, joined.netloc)
        return built

    def _text_target(self, url: str, params: Params) -> tuple[str, str]:
        key = (url, tuple(params.items()) if params else ())
        built = self._texts.get(key)
        if built is None:
            if len(self._texts) >= _URL_MEMO_LIMIT:
                self._texts.clear()
            target, host = self._target(url, params)
            built = self._texts[key] = (str(target), host.decode("ascii"))
        return built

    def _pairs(
        self, host: str, headers: Mapping[str, str] | None, content: bytes | None
    ) -> list[tuple[str, str]]:
        """The request's header pairs, as ``build_request`` would put them on the wire."""
        pairs = [("host", host)]
        if headers:
            names = {k.lower() for k in headers}
            pairs += [h for h in self._default_pairs if h[0] not in names]
            pairs += headers.items()
        else:
            pairs += self._default_pairs
        for name, value in upstream_trace_headers.get():
            pairs.append((name.decode("latin-1"), value.decode("latin-1")))
        if content is not None:
            pairs.append(("content-length", str(len(content))))
        return pairs

    async def _send_direct(
        self,
        direct: DirectSend,
        method: str,
        url: str,
        content: bytes | None,
        params: Params,
        headers: Mapping[str, str] | None,
        read_whole: bool,
    ) -> httpx.Response:
        target, host = self._text_target(url, params)
        return await direct(
            method,
            target,
            self._pairs(host, headers, content),
            content,
            read_whole=read_whole,
            connect_s=self._connect_s,
            read_s=self._read_s,
        )

    def _join(self, url: str, params: Params) -> httpx.URL:
        if url.startswith(("http://", "https://")):
            joined = httpx.URL(url)
        else:
            joined = self.base_url.copy_with(
                raw_path=self.base_url.raw_path + url.lstrip("/").encode("ascii")
            )
        if params:
            joined = joined.copy_merge_params(dict(params))
        return joined

    def build_request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        read_whole: bool = False,
    ) -> httpx.Request:
        target, host = self._target(url, params)
        raw = [(b"host", host)]
        if headers:
            names = {k.lower().encode() for k in headers}
            raw += [h for h in self._default_raw if h[0] not in names]
            raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        else:
            raw += self._default_raw
        raw += upstream_trace_headers.get()
        if content is not None:
            raw.append((b"content-length", str(len(content)).encode()))
        # stream= skips httpx's header auto-population (five times the cost of the rest);
        # host and content-length are set above instead.
        request = httpx.Request(
            method,
            target,
            headers=raw,
            stream=httpx.ByteStream(content or b""),
            extensions=self._whole_extensions if read_whole else self._extensions,
        )
        request.read()
        return request

    # -- sending -------------------------------------------------------------------------------
    async def send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """The response; unless ``stream``, its body is read and the connection released."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if self._direct is not None:
            return await self._send_direct(
                self._direct, method, url, content, params, headers, read_whole=True
            )
        request = self.build_request(
            method, url, content=content, params=params, headers=headers, read_whole=True
        )
        return await self.send(request)

    async def get(
        self, url: str, *, params: Params = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return await self.request("GET", url, params=params, headers=headers)

    async def post(
        self, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return await self.request("POST", url, content=content, headers=headers)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """The response with its body unread; leaving the block closes it."""
        if self._direct is not None:
            response = await self._send_direct(
                self._direct, method, url, content, params, headers, read_whole=False
            )
        else:
            request = self.build_request(
                method, url, content=content, params=params, headers=headers
            )
            response = await self.send(request, stream=True)
        response.stream = _FlushingBody(response.stream)
        try:
            yield response
        finally:
            await response.aclose()

    # -- lifecycle -----------------------------------------------------------------------------
    async def aclose(self) -> None:
        self.is_closed = True
        await self._transport.aclose()

    async def __aenter__(self) -> Upstream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def make_http_client(
    base_url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 600.0,
    connect_timeout_s: float = 10.0,
    transport: TransportName = DEFAULT_TRANSPORT,
) -> Upstream:
    return Upstream(
        base_url,
        transport=make_transport(transport),
        headers=headers,
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
    )
