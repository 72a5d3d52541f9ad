"""Server limits on what a client may make the gateway hold: request head size and read time.

Request head (``BoundedHttpToolsProtocol``). uvicorn's httptools protocol has no limit on the
request line and headers: httptools buffers a header value until it is complete, so an 8 MiB
header is served and six unfinished 16 MiB headers cost ~100 MB. An ASGI middleware cannot help
(it runs after the head was parsed), and h11's ``h11_max_incomplete_event_size`` would mean
trading httptools for a parser several times slower on every request. So the protocol itself
counts the bytes of each request head as they arrive: past ``max_head_bytes`` the client gets
431 and the connection is closed, holding at most the limit plus one socket read. A head that is
not complete ``head_timeout_s`` after the connection opened (or after its first byte, on a
kept-alive connection) gets 408 and is closed too.

Request body (``BodyDeadline``). Nothing bounds how long a client may take to send the body it
announced; a stalled body would hold its request open forever. This ASGI middleware gives the
whole body ``timeout_s`` from the start of the request: a ``receive()`` still waiting for body
bytes past that raises ``BodyTimeout``, a 408 ``GatewayError`` that the endpoints answer in the
client's own protocol (``/graphql`` in GraphQL's).

The 431/408 written by the protocol cannot know the client's protocol (the head is incomplete),
so its body is shaped to read well for both SDKs: ``{"type": "error", "error": {"type",
"message", "code"}}`` (Anthropic reads ``type``/``error.type``, OpenAI ``error.message``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backend.ir.errors import InvalidRequest
from backend.policies.context import new_request_id

STATUS_TEXT = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class BodyTimeout(InvalidRequest):
    status = 408


class _HeadTooLarge(Exception):
    pass


def refusal_bytes(status: int, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    error = {"type": "invalid_request_error", "code": code, "message": message}
    body = orjson.dumps({"type": "error", "error": error})
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, STATUS_TEXT[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-request-id: %s\r\n" % new_request_id().encode(),
            b"connection: close\r\n\r\n",
            body,
        )
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on the size and time of each request head.

    Give it to uvicorn as ``functools.partial(BoundedHttpToolsProtocol, max_head_bytes=...,
    head_timeout_s=...)`` (a partial pickles, so ``--workers`` works too).
    """

    def __init__(
        self, *args: Any, max_head_bytes: int, head_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._max_head_bytes = max_head_bytes
        self._head_timeout_s = head_timeout_s
        self._in_head = True
        #: Bytes received since the current head began (what the parser may be holding).
        self._head_received = 0
        #: Bytes of the URL and complete headers parsed so far (catches a large head that
        #: arrived in a single read together with its end).
        self._head_parsed = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own data_received, with head accounting and a 431 for an oversized head.
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_received += len(data)
            self._arm_head_timer()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse_head_too_large()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self._in_head and self._head_received > self._max_head_bytes:
            self._refuse_head_too_large()

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_parsed(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_received = self._head_parsed = 0
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next bytes on this connection start the next request's head.
        self._in_head = True

    def _count_parsed(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > self._max_head_bytes:
            # Raised inside a parser callback: httptools stops and raises HttpParserError.
            raise _HeadTooLarge

    def _refuse_head_too_large(self) -> None:
        self._refuse(
            431,
            "request_header_fields_too_large",
            f"Request line and headers exceed the limit of {self._max_head_bytes} bytes.",
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(
                408,
                "request_timeout",
                f"Request headers were not received within {self._head_timeout_s:g} seconds.",
            )

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(refusal_bytes(status, code, message))
            self.transport.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None


class BodyDeadline:
    """Pure ASGI middleware: the request body must arrive within ``timeout_s`` of the request."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        clock = BodyClock(receive, self.timeout_s)

        async def closing_send(message: Message) -> None:
            if clock.timed_out and message["type"] == "http.response.start":
                message = clock.closing(message)
            await send(message)

        await self.app(scope, clock.receive, closing_send)


class BodyClock:
    """One request's body deadline: ``receive`` raises ``BodyTimeout`` once it is past.

    Shared by ``BodyDeadline`` and the proxy's own dispatch (``proxy/dispatch.py``), which
    folds it into its single send wrapper instead of stacking a middleware.
    """

    __slots__ = (
        "_deadline",
        "_loop",
        "_ready",
        "_receive",
        "body_done",
        "timed_out",
        "timeout_s",
    )

    def __init__(self, receive: Receive, timeout_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + timeout_s
        self._receive = receive
        # uvicorn's receive() waits on this event and returns at once when it is set (the
        # body, or the disconnect, is already there): no deadline is needed for such a read.
        ready = getattr(getattr(receive, "__self__", None), "message_event", None)
        self._ready = ready if isinstance(ready, asyncio.Event) else None
        self.timeout_s = timeout_s
        self.body_done = False
        self.timed_out = False

    async def receive(self) -> Message:
        if self.body_done:
            # Past the body only a disconnect is left to wait for, for as long as it takes.
            return await self._receive()
        ready = self._ready
        if ready is not None and ready.is_set() and self._loop.time() < self._deadline:
            # Already received: nothing to wait for, so no timer (one per request otherwise).
            message = await self._receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                self.body_done = True
            return message
        try:
            async with asyncio.timeout(max(self._deadline - self._loop.time(), 0.0)):
                message = await self._receive()
        except TimeoutError:
            self.timed_out = True
            raise BodyTimeout(
                f"Request body was not received within {self.timeout_s:g} seconds."
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        return message

    @staticmethod
    def closing(start: Message) -> Message:
        """The answer's start with ``connection: close``: the rest of the body may still come,
        so the connection cannot carry another request; the server closes it after the answer."""
        return {**start, "headers": [*start.get("headers", ()), (b"connection", b"close")]}
