"""Fault injection for end-to-end tests: a misbehaving OpenAI upstream and a TCP proxy to cut.

``ChaosUpstream`` speaks just enough HTTP/1.1 (one request per connection, then close) to play an
OpenAI chat completions server (and, for ``slow_stream``, an Anthropic messages one) that hangs,
resets the connection, truncates or garbles its SSE stream, or answers 200 with a body that is
not a completion. It records every connection and when the *gateway* closed it, which is how a
test sees that an upstream request was cancelled.

``TcpProxy`` forwards a loopback port to a real service (PostgreSQL, Redis). ``cut()`` drops every
open connection and refuses new ones (the service is down); ``stall()`` keeps every connection
open but moves no byte (a network partition: only timeouts tell); ``restore()`` ends either.

Both run an asyncio loop in a daemon thread, so tests may block on synchronous clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.fakes.base import free_port
from tests.fakes.raw_http import LoopThread, RawHttpServer

#: Behaviours of ``ChaosUpstream``; ``mode`` applies to every request until it is changed.
MODES = (
    "ok",  # a proper answer (JSON, or SSE ending with [DONE])
    "hang",  # read the request, never answer
    "reset",  # read the request, then RST
    "hang_mid_stream",  # SSE headers and two chunks, then nothing
    "reset_mid_stream",  # SSE headers and two chunks, then RST
    "truncated_stream",  # SSE headers, two chunks, half a frame, then a clean close (FIN)
    "malformed_stream",  # SSE headers and a frame whose data is not JSON
    "malformed_mid_stream",  # two good chunks, then a frame whose data is not JSON
    "invalid_json",  # 200 application/json with a body that is not JSON
    "wrong_shape",  # 200 application/json, valid JSON but not a chat completion
    "slow_stream",  # a chunk every ``slow_interval`` seconds, ``slow_chunks`` of them
)


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class ChaosConn:
    mode: str
    path: str = ""
    body: Any = None
    opened_at: float = field(default_factory=time.monotonic)
    #: When the gateway closed its side (EOF seen while we were still answering or waiting).
    peer_closed_at: float | None = None
    chunks_sent: int = 0


class ChaosUpstream(RawHttpServer[ChaosConn]):
    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.slow_interval = 0.3
        self.slow_chunks = 100

    def start(self) -> ChaosUpstream:
        self._serve()
        return self

    def set(self, mode: str) -> None:
        assert mode in MODES, mode
        self.mode = mode
        self.conns.clear()

    # -- one connection (read and watched by RawHttpServer) -----------------------------------
    def new_conn(self) -> ChaosConn:
        return ChaosConn(self.mode)

    def waits_for_hang_up(self, conn: ChaosConn) -> bool:
        return conn.mode in ("hang", "hang_mid_stream")

    async def answer(self, conn: ChaosConn, writer: asyncio.StreamWriter) -> None:
        body = conn.body if isinstance(conn.body, dict) else {}
        stream = bool(body.get("stream"))
        mode = conn.mode
        if mode == "hang":
            return
        if mode == "reset":
            _rst(writer)
            return
        if mode == "invalid_json":
            await self._json(writer, b'{"id": "chatcmpl-x", "choices": [')
            return
        if mode == "wrong_shape":
            await self._json(writer, b'{"id": 5, "choices": "none", "usage": [1, 2]}')
            return
        if not stream:
            await self._json(writer, orjson.dumps(completion(body)))
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        text = "ok" if mode != "slow_stream" else "x" * self.slow_chunks
        if conn.path.endswith("/v1/messages"):
            frames = anthropic_stream_frames(body, text)
        else:
            frames = stream_frames(body, text)
        if mode == "malformed_stream":
            frames = [b'data: {"id": "chatcmpl-x", "object": \n\n', *frames]
        elif mode == "malformed_mid_stream":
            frames = [*frames[:2], b"data: {not json at all}\n\n", *frames[2:]]
        for i, frame in enumerate(frames):
            if i == 2 and mode == "hang_mid_stream":
                await writer.drain()
                return
            if i == 2 and mode == "reset_mid_stream":
                await writer.drain()
                await asyncio.sleep(0.1)
                _rst(writer)
                return
            if i == 2 and mode == "truncated_stream":
                writer.write(frame[: len(frame) // 2])
                await writer.drain()
                writer.close()
                return
            writer.write(frame)
            await writer.drain()
            conn.chunks_sent += 1
            if mode == "slow_stream":
                await asyncio.sleep(self.slow_interval)
        writer.close()

    @staticmethod
    async def _json(writer: asyncio.StreamWriter, payload: bytes) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
            + f"content-length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()


def completion(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-chaos",
        "object": "chat.completion",
        "created": 1767225600,
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def stream_frames(body: dict[str, Any], text: str) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        frame = {
            "id": "chatcmpl-chaos",
            "object": "chat.completion.chunk",
            "created": 1767225600,
            "model": body.get("model", ""),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(frame) + b"\n\n"

    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": c}) for c in text]
    frames.append(chunk({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 10, "completion_tokens": len(text), "total_tokens": 10}
        last = {
            "id": "chatcmpl-chaos",
            "object": "chat.completion.chunk",
            "created": 1767225600,
            "model": body.get("model", ""),
            "choices": [],
            "usage": usage,
        }
        frames.append(b"data: " + orjson.dumps(last) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


def anthropic_stream_frames(body: dict[str, Any], text: str) -> list[bytes]:
    """An Anthropic messages stream; ``message_start`` already counts the input tokens."""

    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: ".encode() + orjson.dumps({"type": name, **data}) + b"\n\n"

    message = {
        "id": "msg_chaos",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    frames = [
        event("message_start", {"message": message}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    frames += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": c}})
        for c in text
    ]
    frames += [
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(text)},
            },
        ),
        event("message_stop", {}),
    ]
    return frames


class TcpProxy:
    """127.0.0.1:<port> -> target; ``cut()`` / ``restore()`` make the target unreachable / back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = LoopThread()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.accepted = 0

    def start(self) -> TcpProxy:
        self._loop.call(self._listen())
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    def cut(self) -> None:
        """Refuse new connections and reset the open ones (the service 'went away')."""

        async def cut() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for w in list(self._writers):
                _rst(w)
            self._writers.clear()

        self._loop.call(cut())

    def stall(self) -> None:
        """Keep connections (and accepting), but hold every byte until ``restore()``."""

        async def stall() -> None:
            self._flowing.clear()

        self._loop.call(stall())

    def restore(self) -> None:
        async def restore() -> None:
            if self._server is None:
                await self._listen()
            self._flowing.set()

        self._loop.call(restore())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.cut()
        self._loop.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._server is None:
            # Accepted by the kernel or the loop just before cut() but handed over after it:
            # such a connection used to reach the target and serve "while it was down".
            _rst(writer)
            return
        # Registered before any await: a cut() while this connection is still being set up
        # resets it too.
        self._writers.add(writer)
        await self._flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _rst(writer)
            self._writers.discard(writer)
            return
        if self._server is None or writer not in self._writers:  # cut while connecting
            _rst(writer)
            _rst(up_writer)
            return
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    await self._flowing.wait()
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)
