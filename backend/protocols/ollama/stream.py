"""Ollama ``/api/chat`` NDJSON stream -> canonical stream events.

Each line is one JSON object: ``message.content`` pieces while ``done`` is false, tool calls
whole in one object, then a final ``done: true`` object with ``done_reason`` and the token
counts. Blocks are synthesized: a text block stays open across lines until a tool call or the
end closes it; each tool call is a complete block (start, one ``ToolArgsDelta``, stop).
``StreamEnd`` is emitted on the ``done`` object. A line ``{"error": ...}`` (a runner failure
after the 200) becomes a ``StreamError``; so does a body that ends without ``done: true``
(``close()`` reports it as truncated).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from backend.ir.errors import GatewayError, UpstreamError
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.protocols.ollama.decode import (
    created_at,
    map_finish,
    message_of,
    response_id,
    tool_calls_from,
    usage_from,
)


class StreamDecoder:
    __slots__ = (
        "_calls",
        "_done",
        "_model",
        "_next_index",
        "_open",
        "_rid",
        "_started",
        "_thinking",
    )

    def __init__(self, *, model: str = "") -> None:
        #: Used for ``StreamStart.model`` when a line carries no ``model``.
        self._model = model
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: int | None = None
        #: The open block is a thinking block (Ollama streams ``thinking`` before ``content``).
        self._thinking = False
        self._calls = 0
        self._rid = ""

    def feed_line(self, line: bytes) -> list[StreamEvent]:
        if self._done or not line.strip():
            return []
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return self._fail(UpstreamError("ollama: malformed stream line (invalid JSON)"))
        if not isinstance(obj, dict):
            return self._fail(UpstreamError("ollama: malformed stream line (not an object)"))
        if "error" in obj:
            return self._fail(UpstreamError(f"ollama: {str(obj['error'])[:500]}"))
        try:
            return self._object(obj)
        except UpstreamError as exc:
            return self._fail(exc)

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        return self._fail(UpstreamError("ollama: upstream stream truncated before done"))

    def _object(self, obj: dict[str, Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            self._rid = response_id(obj)
            model = obj.get("model")
            out.append(
                StreamStart(
                    id=self._rid,
                    model=model if isinstance(model, str) and model else self._model,
                    created=created_at(obj),
                )
            )
        message = message_of(obj)
        thinking = message.get("thinking")
        if isinstance(thinking, str) and thinking:
            if self._open is None or not self._thinking:
                out += self._stop_open()
                out.append(self._open_block("thinking"))
            assert self._open is not None
            out.append(ThinkingDelta(index=self._open, thinking=thinking))
        text = message.get("content")
        if isinstance(text, str) and text:
            if self._open is None or self._thinking:
                out += self._stop_open()
                out.append(self._open_block("text"))
            assert self._open is not None
            out.append(TextDelta(index=self._open, text=text))
        for call in tool_calls_from(message, self._calls, self._rid):
            self._calls += 1
            out += self._stop_open()
            idx = self._next_index
            self._next_index += 1
            out.append(
                BlockStart(index=idx, kind="tool_call", tool_call_id=call.id, tool_name=call.name)
            )
            out.append(ToolArgsDelta(index=idx, partial_json=call.arguments))
            out.append(BlockStop(index=idx))
        if obj.get("done") is True:
            out += self._stop_open()
            out.append(
                StreamEnd(
                    finish_reason=map_finish(obj.get("done_reason"), self._calls > 0),
                    usage=usage_from(obj),
                )
            )
            self._done = True
        return out

    def abort(self, error: GatewayError) -> list[StreamEvent]:
        """End the stream with ``error`` (a transport failure seen by the caller)."""
        return [] if self._done else self._fail(error)

    def _open_block(self, kind: Literal["text", "thinking"]) -> BlockStart:
        self._open, self._thinking = self._next_index, kind == "thinking"
        self._next_index += 1
        return BlockStart(index=self._open, kind=kind)

    def _stop_open(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        idx, self._open, self._thinking = self._open, None, False
        return [BlockStop(index=idx)]

    def _fail(self, error: GatewayError) -> list[StreamEvent]:
        self._done = True
        return [*self._stop_open(), StreamError(error)]
