"""An httpx transport on an aiohttp ``ClientSession``, lean enough for the hot path.

``httpx-aiohttp``'s transport converts each request the general way (URL to string and back,
a ``ClientTimeout`` and proxy settings per call, an exception-mapping context per chunk). This
one keeps httpx's request and response types but does only what the gateway needs: parsed
URLs are memoised per transport, timeouts are built once per distinct value, no cookie jar, and
aiohttp's exceptions become httpx's so ``map_transport_error`` sees one family.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import yarl

#: Distinct upstream URLs are few (providers x endpoints); past this the memo starts over.
_URL_MEMO_LIMIT = 1024


def _mapped(exc: Exception) -> Exception:
    """The httpx exception matching an aiohttp one (the original is kept as its cause)."""
    if isinstance(exc, httpx.HTTPError):
        return exc
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, (aiohttp.SocketTimeoutError, TimeoutError)):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.TimeoutException(message)
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, (aiohttp.ClientConnectionError, ConnectionError, OSError)):
        return httpx.ReadError(message)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.TransportError(message)
    return exc


class _Body(httpx.AsyncByteStream):
    """The upstream body, streamed as aiohttp hands it over; closing releases the connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            raise _mapped(exc) from exc

    async def aclose(self) -> None:
        self._response.release()


class AioTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, limit: int = 1000, keepalive_s: float = 30.0) -> None:
        self._limit = limit
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created on first use: a ClientSession binds the running event loop.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit, keepalive_timeout=self._keepalive_s
                ),
                auto_decompress=False,
                # No skip_auto_headers: it sends every request down aiohttp's slow header path
                # (a sorted CIMultiDict copy per request); Upstream sets user-agent, accept and
                # accept-encoding itself, so aiohttp adds nothing anyway.
                # Upstream APIs authenticate by header; a cookie jar is per-request work
                # (filtering, then storing what the answer sets) and shared state between callers.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _url(self, url: httpx.URL) -> yarl.URL:
        key = str(url)
        parsed = self._urls.get(key)
        if parsed is None:
            if len(self._urls) >= _URL_MEMO_LIMIT:
                self._urls.clear()
            parsed = self._urls[key] = yarl.URL(key, encoded=True)
        return parsed

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout") or {}
        key = (spec.get("connect"), spec.get("read"), spec.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                sock_connect=key[0], sock_read=key[1], connect=key[2]
            )
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._client()._request(
                request.method,
                self._url(request.url),
                # Raw pairs: httpx's Headers.items() re-detects the encoding on every call.
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ],
                data=request.content or None,
                allow_redirects=False,
                compress=False,
                timeout=self._timeout(request),
            )
        except Exception as exc:
            raise _mapped(exc) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
