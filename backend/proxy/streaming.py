"""The streaming answer: SSE frames sent once per upstream read, not once per event.

One upstream read often holds many events (a token per event, a burst when the provider is
fast). Sending each frame on its own costs an ASGI send and a socket write apiece, which was
the largest single cost of a proxied stream. ``StreamResponse`` collects the frames produced
from one read and sends them together just before the upstream body is read again
(``providers.http.before_upstream_read`` is the hook ``Upstream.stream`` calls), so nothing
waits that the upstream has already delivered: time to first token is unchanged.

As with Starlette's ``StreamingResponse``, a client that hangs up cancels the stream (and so the
upstream request) through a task group that listens for ``http.disconnect``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from backend.providers.http import before_upstream_read


class StreamResponse(Response):
    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        headers: Mapping[str, str] | None = None,
        media_type: str = "text/event-stream",
    ) -> None:
        self.frames = frames
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream_then_stop() -> None:
                await self._stream(send)
                group.cancel_scope.cancel()

            group.start_soon(stream_then_stop)
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

    async def _stream(self, send: Send) -> None:
        pending: list[bytes] = []
        gone = False

        async def flush() -> None:
            # Servers on ASGI 2.4 raise OSError from send() once the client is gone: note it
            # here (this runs inside the provider's read loop, which must not see it as an
            # upstream failure) and stop at the next frame.
            nonlocal gone
            if pending and not gone:
                body = b"".join(pending)
                pending.clear()
                try:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                except OSError:
                    gone = True

        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        # Set inside this task: the frames' generators (and the provider under them) run here.
        token = before_upstream_read.set(flush)
        try:
            async for frame in self.frames:
                if gone:
                    break
                pending.append(frame)
        finally:
            before_upstream_read.reset(token)
            close = getattr(self.frames, "aclose", None)
            if close is not None:
                await close()  # at once: the pipeline settles and logs as the stream ends
        if not gone:
            with contextlib.suppress(OSError):
                await send(
                    {"type": "http.response.body", "body": b"".join(pending), "more_body": False}
                )
