"""Fallback fake provider when nginx cannot be installed: a raw asyncio static HTTP/1.1 server.

``python static_server.py PORT CHAT_JSON_FILE SSE_FILE`` answers every POST under ``/sse/`` with
the SSE file (``text/event-stream``) and any other request with the JSON file; keep-alive, no
parsing beyond the header block and Content-Length. Cheaper than any Python web framework, but
still Python: the table says when it was used.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


def _response(body: bytes, ctype: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + ctype
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: keep-alive\r\n\r\n"
        + body
    )


class Static(asyncio.Protocol):
    def __init__(self, chat: bytes, sse: bytes) -> None:
        self.chat, self.sse = chat, sse
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            length = 0
            pos = head.find(b"content-length:")
            if pos >= 0:
                eol = head.find(b"\r\n", pos)
                length = int(head[pos + 15 : eol if eol > 0 else len(head)])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            path = head.split(b" ", 2)[1] if b" " in head else b"/"
            self.buf = self.buf[total:]
            assert self.transport is not None
            self.transport.write(self.sse if path.startswith(b"/sse/") else self.chat)


def main() -> None:
    port, chat_file, sse_file = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    chat = _response(chat_file.read_bytes(), b"application/json")
    sse = _response(sse_file.read_bytes(), b"text/event-stream")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Static(chat, sse), "127.0.0.1", port, backlog=1024
        )
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
