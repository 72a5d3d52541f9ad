"""The connection loop shared by the fakes that must see the wire itself (``EndlessUpstream``,
``tests/e2e/chaos.py``): raw asyncio streams in a daemon thread, one request per connection.

Why raw streams and not an HTTP framework: these fakes must control every byte (reset a
connection, truncate a frame, write as fast as the socket takes it) and see exactly when the
*gateway* closed its side. ``RawHttpServer`` reads one request (head, then a JSON body of
``content-length`` bytes), watches the read side for the gateway's EOF while a subclass answers,
and records when the peer went away on the connection object the subclass made.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine
from typing import Any, Generic, Protocol, TypeVar

import orjson

from tests.fakes.base import free_port

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread, so tests may block on synchronous clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


class RawConn(Protocol):
    """What the loop fills in on a subclass's connection record."""

    path: str
    body: Any
    #: When the gateway closed its side (EOF or a reset seen while answering or waiting).
    peer_closed_at: float | None


C = TypeVar("C", bound=RawConn)


class RawHttpServer(Generic[C]):
    """One request per connection on 127.0.0.1; subclasses make the record and the answer."""

    def __init__(self) -> None:
        self.port = free_port()
        self.conns: list[C] = []
        self._loop = LoopThread()
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sdk_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def _serve(self) -> None:
        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._loop.call(serve())

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        with contextlib.suppress(Exception):
            self._loop.call(close())
        self._loop.stop()

    # -- for subclasses ------------------------------------------------------------------------
    def new_conn(self) -> C:
        raise NotImplementedError

    async def answer(self, conn: C, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def waits_for_hang_up(self, conn: C) -> bool:
        """After ``answer``, keep the connection until the gateway closes it (a hanging
        upstream) instead of closing it at once."""
        return False

    # -- one connection ------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self.new_conn()
        self.conns.append(conn)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            conn.path = lines[0].split(" ")[1]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            raw = await reader.readexactly(length) if length else b""
            conn.body = orjson.loads(raw) if raw else None
            # From here on, EOF on the read side means the gateway hung up.
            watcher = asyncio.create_task(_watch(reader, conn))
            try:
                await self.answer(conn, writer)
            finally:
                if not self.waits_for_hang_up(conn):
                    watcher.cancel()
            if self.waits_for_hang_up(conn):
                await watcher
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            conn.peer_closed_at = conn.peer_closed_at or time.monotonic()
        finally:
            if not writer.transport.is_closing():
                writer.close()


async def _watch(reader: asyncio.StreamReader, conn: RawConn) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(65536):
            pass
    conn.peer_closed_at = conn.peer_closed_at or time.monotonic()
