"""A fake upstream whose streamed answer never ends (or ends only after ``total_frames``).

It plays OpenAI chat completions (``POST /v1/chat/completions``) and Anthropic messages
(``POST /v1/messages``) over raw asyncio streams, so it can see exactly when the *gateway* stops
reading: each connection records how many frames were written and when the peer closed its side
(EOF or a reset while writing). Frames are written as fast as the socket takes them; a gateway
that keeps reading after its client left shows up as ``frames_sent`` still growing.

A non-streamed request gets a plain completion with ``long_output_tokens`` output tokens, so
``EndlessUpstream`` can also play a model that always writes as much as it is allowed to: the
output it reports is the request's ``max_tokens``/``max_completion_tokens`` when given, else
``long_output_tokens``. Streams report the same in their final usage when ``total_frames`` ends
them. Likewise it searches as much as it may: an Anthropic answer to a request with a web search
server tool reports the tools' ``max_uses`` as its searches (``long_searches`` for a tool
without one) in ``usage.server_tool_use``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.fakes.raw_http import RawHttpServer


@dataclass
class EndlessConn:
    path: str = ""
    body: Any = None
    opened_at: float = field(default_factory=time.monotonic)
    frames_sent: int = 0
    bytes_sent: int = 0
    #: When the gateway closed its side of the connection.
    peer_closed_at: float | None = None
    finished: bool = False


def searches_allowed(body: dict[str, Any], unlimited: int) -> int:
    """The web searches an Anthropic request lets the model run (0: it has no search tool)."""
    total = 0
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search_"):
            uses = tool.get("max_uses")
            total += uses if isinstance(uses, int) else unlimited
    return total


def limit_of(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int):
            return value
    return None


class EndlessUpstream(RawHttpServer[EndlessConn]):
    def __init__(
        self,
        *,
        piece: str = "lorem ipsum ",
        long_output_tokens: int = 200_000,
        long_searches: int = 100,
    ) -> None:
        super().__init__()
        self.piece = piece
        #: What the "model" writes when no limit is given.
        self.long_output_tokens = long_output_tokens
        #: How often it searches with a web search tool that has no ``max_uses``.
        self.long_searches = long_searches
        #: Stream this many text frames then end properly (usage included); None = never end.
        self.total_frames: int | None = None
        #: Input tokens every answer reports.
        self.input_tokens = 20

    def start(self) -> EndlessUpstream:
        self._serve()
        return self

    def reset(self) -> None:
        self.conns.clear()
        self.total_frames = None

    # -- one connection (read and watched by RawHttpServer) -----------------------------------
    def new_conn(self) -> EndlessConn:
        return EndlessConn()

    def _output_tokens(self, body: dict[str, Any]) -> int:
        limit = limit_of(body)
        return limit if limit is not None else self.long_output_tokens

    async def answer(self, conn: EndlessConn, writer: asyncio.StreamWriter) -> None:
        body = conn.body if isinstance(conn.body, dict) else {}
        anthropic = conn.path.endswith("/v1/messages")
        if not body.get("stream"):
            payload = orjson.dumps(
                _anthropic_message(body, self) if anthropic else _completion(body, self)
            )
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                + f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            conn.finished = True
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        frames = _AnthropicFrames(body, self) if anthropic else _OpenAIFrames(body, self)
        for frame in frames.head():
            writer.write(frame)
        await writer.drain()
        while self.total_frames is None or conn.frames_sent < self.total_frames:
            if conn.peer_closed_at is not None:
                return
            frame = frames.text(self.piece)
            writer.write(frame)
            conn.frames_sent += 1
            conn.bytes_sent += len(frame)
            # drain() yields only when the socket is full: yield anyway so the watcher runs.
            await writer.drain()
            if conn.frames_sent % 64 == 0:
                await asyncio.sleep(0)
        for frame in frames.tail(self._output_tokens(body)):
            writer.write(frame)
        await writer.drain()
        conn.finished = True


def _sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(obj) + b"\n\n"


class _OpenAIFrames:
    def __init__(self, body: dict[str, Any], up: EndlessUpstream) -> None:
        self.model = body.get("model", "")
        self.usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.up = up

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(
            {
                "id": "chatcmpl-endless",
                "object": "chat.completion.chunk",
                "created": 1767225600,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    def head(self) -> list[bytes]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def text(self, piece: str) -> bytes:
        return self._chunk({"content": piece})

    def tail(self, output_tokens: int) -> list[bytes]:
        out = [self._chunk({}, "length")]
        if self.usage:
            usage = {
                "prompt_tokens": self.up.input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": self.up.input_tokens + output_tokens,
            }
            out.append(
                _sse(
                    {
                        "id": "chatcmpl-endless",
                        "object": "chat.completion.chunk",
                        "created": 1767225600,
                        "model": self.model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        return [*out, b"data: [DONE]\n\n"]


class _AnthropicFrames:
    def __init__(self, body: dict[str, Any], up: EndlessUpstream) -> None:
        self.model = body.get("model", "")
        self.up = up

    def head(self) -> list[bytes]:
        message = {
            "id": "msg_endless",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.up.input_tokens, "output_tokens": 1},
        }
        return [
            _sse({"type": "message_start", "message": message}, "message_start"),
            _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
        ]

    def text(self, piece: str) -> bytes:
        return _sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
            "content_block_delta",
        )

    def tail(self, output_tokens: int) -> list[bytes]:
        return [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]


def _completion(body: dict[str, Any], up: EndlessUpstream) -> dict[str, Any]:
    out = up._output_tokens(body)
    return {
        "id": "chatcmpl-endless",
        "object": "chat.completion",
        "created": 1767225600,
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": up.piece * 4},
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": up.input_tokens,
            "completion_tokens": out,
            "total_tokens": up.input_tokens + out,
        },
    }


def _anthropic_message(body: dict[str, Any], up: EndlessUpstream) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": up.input_tokens,
        "output_tokens": up._output_tokens(body),
    }
    searches = searches_allowed(body, up.long_searches)
    if searches:
        usage["server_tool_use"] = {"web_search_requests": searches}
    return {
        "id": "msg_endless",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": [{"type": "text", "text": up.piece * 4}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": usage,
    }
