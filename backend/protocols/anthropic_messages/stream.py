"""Streamed Messages: upstream SSE -> IR events (``StreamDecoder``), IR events -> client SSE
(``StreamEncoder``).

Wire facts both sides rely on (checked with the anthropic 2.x SDK):

- every frame carries an ``event:`` line; the SDK drops frames without one;
- ``message_start`` has the input tokens and a small provisional output count; the usage in
  ``message_delta`` is cumulative and *replaces* it (the SDK takes input tokens from there too),
  so the encoder repeats the final input tokens in ``message_delta``;
- a text block that never receives text must not reach the client as an empty block, so the
  encoder opens text and thinking blocks lazily, at their first non-empty delta, and numbers
  wire blocks itself to keep indexes contiguous;
- a failure mid-stream is an ``event: error`` frame (never a silent close).

Extras (``backend.ir.stream``): blocks the IR does not model (server-tool use and results) travel
as opaque blocks, their deltas and unknown deltas of modelled blocks (``citations_delta``) as
``OpaqueEvent``s, unknown keys of a block's start on ``BlockStart.opaque``, and the answer-level
fields of ``message_start`` / ``message_delta`` (``container``, usage details, a ``stop_reason``
the IR folds) on ``StreamStart.opaque`` / ``StreamEnd.opaque``; the encoder writes them all back
for an Anthropic client, in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from backend.ir.chat import FinishReason, Opaque, Usage
from backend.ir.errors import GatewayError, UpstreamError
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    OpaqueEvent,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.protocols.anthropic_messages.errors import error_body, error_from_event
from backend.protocols.anthropic_messages.vocab import (
    FINISH_TO_STOP,
    USAGE_FIELDS,
    finish_from_stop,
    usage_to_wire,
    web_searches,
)
from backend.protocols.sse import SSEEvent, sse_frame


class StreamDecoder:
    """Incremental decoder of an upstream ``/v1/messages`` SSE stream.

    Content blocks the IR does not model (server-tool blocks) become opaque blocks, numbered
    with the others.
    """

    def __init__(self, *, provider: str = "anthropic", output_tool: str | None = None) -> None:
        self._provider = provider
        # The forced structured-output tool (``structured``): its call streams as text.
        self._output_tool = output_tool
        self._text_blocks: set[int] = set()
        self._client_calls = False
        self._started = False
        self._done = False
        self._index: dict[int, int | None] = {}
        #: IR indexes of opaque blocks (every delta of theirs is an ``OpaqueEvent``).
        self._opaque_blocks: set[int] = set()
        self._next = 0
        # Wire-level counters; message_delta values are cumulative and overwrite these.
        self._fresh = 0
        self._read = 0
        self._write = 0
        self._out = 0
        self._searches = 0
        self._finish: FinishReason = "stop"
        self._stop_sequence: str | None = None
        #: Unmodelled parts of message_delta frames, merged (for StreamEnd.opaque).
        self._end_extra: dict[str, Any] = {}

    def feed(self, ev: SSEEvent) -> list[StreamEvent]:
        if self._done or not ev.data:
            return []
        try:
            data = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return self._fail(UpstreamError(f"{self._provider}: malformed stream event"))
        if not isinstance(data, dict):
            return self._fail(UpstreamError(f"{self._provider}: malformed stream event"))
        kind = data.get("type") or ev.event
        if kind == "ping":
            return []
        if kind == "error":
            return self._fail(error_from_event(data, provider=self._provider))
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            msg = data.get("message") if kind == "message_start" else None
            out.append(self._start(msg if isinstance(msg, dict) else {}))
            if kind == "message_start":
                return out
        if kind == "content_block_start":
            out.extend(self._block_start(data))
        elif kind == "content_block_delta":
            out.extend(self._delta(data))
        elif kind == "content_block_stop":
            ir = self._index.get(_int(data.get("index")))
            if ir is not None:
                out.append(BlockStop(ir))
        elif kind == "message_delta":
            self._message_delta(data)
        elif kind == "message_stop":
            self._done = True
            finish = self._finish
            if finish == "tool_calls" and self._text_blocks and not self._client_calls:
                finish = "stop"
            end_extra = self._end_extra or None
            opaque = Opaque("anthropic", end_extra) if end_extra else None
            out.append(StreamEnd(finish, self._usage(), self._stop_sequence, opaque))
        return out

    def close(self) -> list[StreamEvent]:
        """End of the upstream body: a stream without ``message_stop`` was cut short."""
        if self._done:
            return []
        return self._fail(UpstreamError(f"{self._provider}: stream ended before message_stop"))

    def _fail(self, err: GatewayError) -> list[StreamEvent]:
        self._done = True
        return [StreamError(err)]

    def _start(self, msg: dict[str, Any]) -> StreamStart:
        usage = msg.get("usage")
        if isinstance(usage, dict):
            self._take_usage(usage)
        extra = _unmodelled(msg, _START_KEYS)
        details = _unmodelled(usage, USAGE_FIELDS) if isinstance(usage, dict) else {}
        if details:
            extra["usage"] = details
        return StreamStart(
            id=str(msg.get("id") or ""),
            model=str(msg.get("model") or ""),
            usage=self._usage(),
            opaque=Opaque("anthropic", extra) if extra else None,
        )

    def _usage(self) -> Usage:
        return Usage(
            input_tokens=self._fresh + self._read + self._write,
            output_tokens=self._out,
            cached_tokens=self._read,
            cache_write_tokens=self._write,
            web_search_requests=self._searches,
        )

    def _take_usage(self, usage: dict[str, Any]) -> None:
        # Only the counts present are replaced: message_delta omits those that did not change.
        if _is_int(usage.get("input_tokens")):
            self._fresh = usage["input_tokens"]
        if _is_int(usage.get("cache_read_input_tokens")):
            self._read = usage["cache_read_input_tokens"]
        if _is_int(usage.get("cache_creation_input_tokens")):
            self._write = usage["cache_creation_input_tokens"]
        if _is_int(usage.get("output_tokens")):
            self._out = usage["output_tokens"]
        if isinstance(usage.get("server_tool_use"), dict):
            self._searches = web_searches(usage)

    def _message_delta(self, data: dict[str, Any]) -> None:
        extra = self._end_extra
        extra.update(_unmodelled(data, frozenset({"type", "delta", "usage"})))
        delta = data.get("delta")
        if isinstance(delta, dict):
            reason = delta.get("stop_reason")
            if reason is not None:
                self._finish = finish_from_stop(reason)
            seq = delta.get("stop_sequence")
            self._stop_sequence = seq if isinstance(seq, str) else None
            more = _unmodelled(delta, frozenset({"stop_reason", "stop_sequence"}))
            if isinstance(reason, str) and FINISH_TO_STOP.get(self._finish) != reason:
                more["stop_reason"] = reason  # pause_turn...: the IR folds it, the client not
            if more:
                extra["delta"] = {**extra.get("delta", {}), **more}
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._take_usage(usage)
            details = _unmodelled(usage, USAGE_FIELDS)
            if details:
                extra["usage"] = {**extra.get("usage", {}), **details}

    def _block_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        wire = _int(data.get("index"))
        cb = data.get("content_block")
        if not isinstance(cb, dict):
            self._index[wire] = None
            return []
        kind = cb.get("type")
        ir = self._index[wire] = self._next
        self._next += 1
        if kind not in _BLOCK_START_KEYS:
            # Server-tool use and results, future kinds: verbatim for an Anthropic client.
            self._opaque_blocks.add(ir)
            return [BlockStart(ir, "opaque", opaque=Opaque("anthropic", cb))]
        more = _unmodelled(cb, _BLOCK_START_KEYS[kind])
        opaque = Opaque("anthropic", more) if more else None
        if kind == "text":
            text = cb.get("text")
            started: list[StreamEvent] = [BlockStart(ir, "text", opaque=opaque)]
            return [*started, TextDelta(ir, text)] if text else started
        if kind == "tool_use" and self._output_tool and cb.get("name") == self._output_tool:
            self._text_blocks.add(ir)
            args = cb.get("input")
            answer: list[StreamEvent] = [BlockStart(ir, "text")]
            if isinstance(args, dict) and args:
                answer.append(TextDelta(ir, orjson.dumps(args).decode()))
            return answer
        if kind == "tool_use":
            self._client_calls = True
            start = BlockStart(
                ir,
                "tool_call",
                tool_call_id=str(cb.get("id") or ""),
                tool_name=str(cb.get("name")),
                opaque=opaque,
            )
            args = cb.get("input")
            if isinstance(args, dict) and args:
                return [start, ToolArgsDelta(ir, orjson.dumps(args).decode())]
            return [start]
        if kind == "thinking":
            out: list[StreamEvent] = [BlockStart(ir, "thinking", opaque=opaque)]
            thinking, sig = cb.get("thinking"), cb.get("signature")
            if thinking or sig:
                out.append(ThinkingDelta(ir, thinking or "", sig or None))
            return out
        return [BlockStart(ir, "redacted_thinking", data=str(cb.get("data") or ""), opaque=opaque)]

    def _delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        ir = self._index.get(_int(data.get("index")))
        delta = data.get("delta")
        if ir is None or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if ir in self._opaque_blocks:
            return [OpaqueEvent(ir, Opaque("anthropic", delta))]
        if kind == "text_delta":
            return [TextDelta(ir, str(delta.get("text") or ""))]
        if kind == "input_json_delta" and ir in self._text_blocks:
            return [TextDelta(ir, str(delta.get("partial_json") or ""))]
        if kind == "input_json_delta":
            return [ToolArgsDelta(ir, str(delta.get("partial_json") or ""))]
        if kind == "thinking_delta":
            return [ThinkingDelta(ir, thinking=str(delta.get("thinking") or ""))]
        if kind == "signature_delta":
            return [ThinkingDelta(ir, signature=str(delta.get("signature") or ""))]
        # citations_delta and future kinds: verbatim for an Anthropic client.
        return [OpaqueEvent(ir, Opaque("anthropic", delta))]


#: Keys of a block's start the IR models, per modelled kind (others: ``BlockStart.opaque``).
_BLOCK_START_KEYS: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text"}),
    "tool_use": frozenset({"type", "id", "name", "input"}),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
}
#: Keys of ``message_start``'s message the IR models.
_START_KEYS = frozenset(
    {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
)


def _unmodelled(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known and v is not None}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(v: Any) -> int:
    return v if _is_int(v) else -1


# -- client side -------------------------------------------------------------------------------
@dataclass(slots=True)
class _Block:
    kind: str
    wire: int | None = None  # None until the block is on the wire
    tool_call_id: str | None = None
    tool_name: str | None = None
    data: str | None = None
    #: Opaque blocks: the whole start; others: unmodelled keys of the start (Anthropic's).
    start: dict[str, Any] | None = None


def _merge(obj: dict[str, Any], opaque: Opaque | None) -> None:
    """Write an Anthropic upstream's unmodelled fields into ``obj`` (its nested dicts merged)."""
    if opaque is None or opaque.protocol != "anthropic":
        return
    for key, value in opaque.data.items():
        if isinstance(value, dict) and isinstance(obj.get(key), dict):
            obj[key] = {**obj[key], **value}
        else:
            obj[key] = value


def _frame(event: str, obj: dict[str, Any]) -> bytes:
    return sse_frame(orjson.dumps(obj), event)


#: A text delta's frame around its block index and JSON-encoded text (see ``encode``).
_TEXT_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_MID = b',"delta":{"type":"text_delta","text":'
_TAIL = b"}}\n\n"


class StreamEncoder:
    """IR stream events -> Anthropic SSE bytes for a client of ``/v1/messages``.

    ``model`` is the name the client asked for (an alias stays an alias). Each ``encode`` call
    returns the bytes to send now, possibly empty (a text block is held back until it has text).
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._started = False
        self._done = False
        self._next_wire = 0
        self._blocks: dict[int, _Block] = {}
        self._open: int | None = None
        self._start_usage: Usage | None = None

    def encode(self, ev: StreamEvent) -> bytes:
        if self._done:
            return b""
        if self._started and isinstance(ev, TextDelta):
            # Most of a stream: more text for a block already open on the wire, framed by
            # concatenation (byte for byte what ``_delta`` makes) instead of through the dicts.
            block = self._blocks.get(ev.index)
            if block is not None and block.wire is not None and block.kind == "text":
                if not ev.text:
                    return b""
                return b"".join(
                    (_TEXT_HEAD, str(block.wire).encode(), _TEXT_MID, orjson.dumps(ev.text), _TAIL)
                )
        if isinstance(ev, StreamError):
            self._done = True
            return _frame("error", error_body(ev.error))
        out: list[bytes] = []
        if isinstance(ev, StreamStart):
            if not self._started:
                out.append(self._message_start(ev))
        else:
            if not self._started:
                out.append(self._message_start(StreamStart(id="", model=self.model)))
            if isinstance(ev, BlockStart):
                out.extend(self._block_start(ev))
            elif isinstance(ev, TextDelta):
                out.extend(self._text(ev))
            elif isinstance(ev, ToolArgsDelta):
                out.extend(self._tool_args(ev))
            elif isinstance(ev, ThinkingDelta):
                out.extend(self._thinking(ev))
            elif isinstance(ev, OpaqueEvent):
                out.extend(self._opaque(ev))
            elif isinstance(ev, BlockStop):
                out.extend(self._block_stop(ev.index))
            elif isinstance(ev, StreamEnd):
                out.extend(self._end(ev))
        return b"".join(out)

    def _message_start(self, ev: StreamStart) -> bytes:
        self._started = True
        self._start_usage = ev.usage
        u = ev.usage or Usage()
        message: dict[str, Any] = {
            "id": ev.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_wire(u, output_tokens=u.output_tokens or 1),
        }
        _merge(message, ev.opaque)
        return _frame("message_start", {"type": "message_start", "message": message})

    def _block_start(self, ev: BlockStart) -> list[bytes]:
        out = self._block_stop(self._open) if self._open is not None else []
        own = ev.opaque is not None and ev.opaque.protocol == "anthropic"
        if ev.kind == "opaque" and not own:
            return out  # another protocol's block: nothing an Anthropic client could read
        block = _Block(
            ev.kind,
            tool_call_id=ev.tool_call_id,
            tool_name=ev.tool_name,
            data=ev.data,
            start=dict(ev.opaque.data) if own and ev.opaque is not None else None,
        )
        self._blocks[ev.index] = block
        self._open = ev.index
        if ev.kind in ("tool_call", "redacted_thinking", "opaque"):
            out.append(self._open_on_wire(block))
        return out

    def _ensure(self, index: int, kind: str) -> tuple[_Block, list[bytes]]:
        block = self._blocks.get(index)
        if block is not None:
            return block, []
        # A delta without its BlockStart: open the block implicitly rather than lose content.
        out = self._block_start(BlockStart(index, kind))  # type: ignore[arg-type]
        return self._blocks[index], out

    def _open_on_wire(self, block: _Block) -> bytes:
        block.wire = self._next_wire
        self._next_wire += 1
        cb: dict[str, Any]
        if block.kind == "opaque":
            cb = block.start or {}
        elif block.kind == "text":
            cb = {"type": "text", "text": ""}
        elif block.kind == "thinking":
            cb = {"type": "thinking", "thinking": "", "signature": ""}
        elif block.kind == "redacted_thinking":
            cb = {"type": "redacted_thinking", "data": block.data or ""}
        else:
            cb = {
                "type": "tool_use",
                "id": block.tool_call_id,
                "name": block.tool_name,
                "input": {},
            }
        if block.kind != "opaque" and block.start:
            cb.update(block.start)
        payload = {"type": "content_block_start", "index": block.wire, "content_block": cb}
        return _frame("content_block_start", payload)

    def _delta(self, block: _Block, delta: dict[str, Any]) -> bytes:
        payload = {"type": "content_block_delta", "index": block.wire, "delta": delta}
        return _frame("content_block_delta", payload)

    def _text(self, ev: TextDelta) -> list[bytes]:
        block, out = self._ensure(ev.index, "text")
        if not ev.text or block.kind != "text":
            return out
        if block.wire is None:
            out.append(self._open_on_wire(block))
        out.append(self._delta(block, {"type": "text_delta", "text": ev.text}))
        return out

    def _tool_args(self, ev: ToolArgsDelta) -> list[bytes]:
        block = self._blocks.get(ev.index)
        if block is None or block.wire is None or block.kind != "tool_call":
            return []  # arguments without a call id/name cannot be shown as a tool_use block
        return [self._delta(block, {"type": "input_json_delta", "partial_json": ev.partial_json})]

    def _thinking(self, ev: ThinkingDelta) -> list[bytes]:
        block, out = self._ensure(ev.index, "thinking")
        if block.kind != "thinking" or (not ev.thinking and ev.signature is None):
            return out
        if block.wire is None:
            out.append(self._open_on_wire(block))
        if ev.thinking:
            out.append(self._delta(block, {"type": "thinking_delta", "thinking": ev.thinking}))
        if ev.signature is not None:
            out.append(self._delta(block, {"type": "signature_delta", "signature": ev.signature}))
        return out

    def _opaque(self, ev: OpaqueEvent) -> list[bytes]:
        """An unmodelled delta of block ``ev.index`` (Anthropic's only), verbatim."""
        if ev.opaque.protocol != "anthropic" or ev.index is None:
            return []
        block = self._blocks.get(ev.index)
        if block is None:
            return []  # a block this client never saw start
        # Citations may come before a text block's first text: open it now.
        out = [self._open_on_wire(block)] if block.wire is None else []
        out.append(self._delta(block, ev.opaque.data))
        return out

    def _block_stop(self, index: int) -> list[bytes]:
        if self._open == index:
            self._open = None
        block = self._blocks.pop(index, None)
        if block is None or block.wire is None:
            return []  # never reached the wire (a text block without text)
        payload = {"type": "content_block_stop", "index": block.wire}
        return [_frame("content_block_stop", payload)]

    def _end(self, ev: StreamEnd) -> list[bytes]:
        out = self._block_stop(self._open) if self._open is not None else []
        self._done = True
        usage = ev.usage
        start = self._start_usage
        if usage.input_tokens == 0 and start is not None and start.input_tokens:
            # The upstream reported input only at the start; the SDK reads it from here.
            usage = Usage(
                input_tokens=start.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=start.cached_tokens,
                cache_write_tokens=start.cache_write_tokens,
            )
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": FINISH_TO_STOP.get(ev.finish_reason, "end_turn"),
                "stop_sequence": ev.stop_sequence,
            },
            "usage": usage_to_wire(usage),
        }
        _merge(delta, ev.opaque)
        out.append(_frame("message_delta", delta))
        out.append(_frame("message_stop", {"type": "message_stop"}))
        return out
