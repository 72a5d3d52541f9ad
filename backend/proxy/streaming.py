"""The streaming answer: SSE frames sent once per upstream read, not once per event.

One upstream read often holds many events (a token per event, a burst when the provider is
fast). Sending each frame on its own costs an ASGI send and a socket write apiece, which was
the largest single cost of a proxied stream. ``StreamResponse`` collects the frames produced
from one read and sends them together just before the upstream body is read again
(``providers.http.before_upstream_read`` is the hook ``Upstream.stream`` calls), so nothing
waits that the upstream has already delivered: time to first token is unchanged.

A client that hangs up must stop the upstream read at once. Cancellation alone does not do it:
anyio delivers a cancel only while the task waits on something not yet done, and a fast
upstream completes the read the stream task waits on every loop turn, so the cancel never lands
and the gateway would read the rest of a long answer for nobody. The hook therefore checks,
before every upstream read, whether the client is gone and raises ``ClientGone`` there; it
unwinds every generator of the stream (closing the upstream response) without passing for an
upstream failure. ``close`` (the pipeline's stream) is closed in every case, even when the
client left before the first frame was produced, so the request is always settled and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from backend.providers.http import before_upstream_read


class ClientGone(BaseException):
    """The client hung up: unwinds the stream from inside the upstream read loop.

    A ``BaseException`` so that no provider or relay error handler (``except Exception``)
    mistakes the client's departure for an upstream failure.
    """


class StreamResponse(Response):
    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        headers: Mapping[str, str] | None = None,
        media_type: str = "text/event-stream",
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.frames = frames
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        #: Closes what ``frames`` reads from; run even if ``frames`` never started.
        self._close = close
        self._gone = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The stream runs in the request's own task, inside a cancel scope that a watcher task
        # cancels when the client hangs up (shielded scopes below still settle and log). An
        # anyio task group did the same for 5-8 % more instructions per 20-chunk stream.
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        stream = anyio.CancelScope()
        try:
            try:
                with stream:
                    watcher = asyncio.get_running_loop().create_task(self._watch(receive, stream))
                    try:
                        await self._stream(send)
                    finally:
                        watcher.cancel()
            except asyncio.CancelledError:
                # The scope's own cancel, re-raised by the upstream read (pyreqwest) under a
                # message of its own, which anyio therefore does not swallow: swallow it as
                # anyio would, unless something else cancelled this task as well (shutdown).
                if not stream.cancel_called or task is None or task.cancelling() != cancelling:
                    raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_frames()

    async def _watch(self, receive: Receive, stream: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone = True
        stream.cancel()

    async def _close_frames(self) -> None:
        close = getattr(self.frames, "aclose", None)
        if close is not None:
            await close()
        if self._close is not None:
            await self._close()

    async def _stream(self, send: Send) -> None:
        pending: list[bytes] = []

        async def flush() -> None:
            # Runs before every upstream read, inside the provider's read loop.
            if self._gone:
                raise ClientGone
            if pending:
                body = b"".join(pending)
                pending.clear()
                try:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                except OSError:
                    # Servers on ASGI 2.4 raise OSError from send() once the client is gone.
                    self._gone = True
                    raise ClientGone from None

        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        # Set inside this task: the frames' generators (and the provider under them) run here.
        token = before_upstream_read.set(flush)
        try:
            async for frame in self.frames:
                if self._gone:
                    break
                pending.append(frame)
        except ClientGone:
            pass
        finally:
            before_upstream_read.reset(token)
            # At once: the pipeline settles and logs as the stream ends.
            with anyio.CancelScope(shield=True):
                await self._close_frames()
        if not self._gone:
            with contextlib.suppress(OSError):
                await send(
                    {"type": "http.response.body", "body": b"".join(pending), "more_body": False}
                )
