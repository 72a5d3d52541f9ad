"""Gemini ``streamGenerateContent?alt=sse`` -> canonical stream events.

Each SSE event carries one whole ``GenerateContentResponse``. Text parts become ``TextDelta``s of
a text block, thought parts (``thought: true``) ``ThinkingDelta``s of a thinking block; a
function call arrives whole in one part and becomes a complete tool-call block
(start, one ``ToolArgsDelta``, stop). Blocks are synthesized: a text block stays open across
chunks until a function call or the end closes it.

Gemini's own extras for a Gemini client (``OpaqueEvent``s, protocol ``gemini``): a part's
unmodelled keys (``thoughtSignature`` on a text or thought part...) just before that part's delta,
on its block; a candidate's and the body's (``safetyRatings``, ``groundingMetadata``...) with
``index=None``; parts the IR does not model (``executableCode``...) as opaque blocks. The usage
details (``promptTokensDetails``...) are not carried in a stream.

Every chunk repeats ``usageMetadata`` and only the last is complete, so the latest one wins.
``StreamEnd`` is emitted by ``close()`` (when the upstream body ends), not on the chunk carrying
``finishReason``, so a trailing usage-only chunk still counts. A body that ends before any chunk
carried a ``finishReason`` was cut: ``close()`` then reports a truncated-stream ``StreamError``.
"""

from __future__ import annotations

from typing import Any, Literal

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
from backend.protocols.gemini.decode import (
    answer_extra,
    candidate_parts,
    first_candidate,
    map_finish,
    part_extra,
    response_id,
    thought_text,
    tool_call_from,
    usage_from,
    visible_text,
)
from backend.protocols.gemini.errors import error_from_body
from backend.protocols.gemini.wire import PROTOCOL, wire_keys
from backend.protocols.sse import SSEEvent


class StreamDecoder:
    __slots__ = (
        "_blocked",
        "_calls",
        "_done",
        "_finish",
        "_model",
        "_next_index",
        "_open",
        "_open_kind",
        "_rid",
        "_started",
        "_usage",
    )

    def __init__(self, *, model: str = "") -> None:
        #: Used for ``StreamStart.model`` when the upstream sends no ``modelVersion``.
        self._model = model
        self._started = False
        self._done = False
        self._rid: str | None = None
        self._next_index = 0
        self._open: int | None = None
        self._open_kind: str | None = None
        self._calls = 0
        self._finish: str | None = None
        self._blocked = False
        self._usage = Usage()

    def feed(self, ev: SSEEvent) -> list[StreamEvent]:
        if self._done or not ev.data.strip():
            return []
        try:
            chunk = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            return self._fail(UpstreamError("gemini: malformed stream chunk (invalid JSON)"))
        if not isinstance(chunk, dict):
            return self._fail(UpstreamError("gemini: malformed stream chunk (not an object)"))
        if "error" in chunk:
            # Gemini reports a failure after the 200 as an error object inside the stream.
            err = chunk["error"] if isinstance(chunk["error"], dict) else {}
            code = err.get("code")
            return self._fail(error_from_body(code if isinstance(code, int) else 500, chunk))
        try:
            return self._chunk(chunk)
        except UpstreamError as exc:
            return self._fail(exc)

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        if self._finish is None:
            return self._fail(
                UpstreamError("gemini: upstream stream truncated before its final chunk")
            )
        out = self._stop_open()
        reason: FinishReason = (
            "content_filter" if self._blocked else map_finish(self._finish, self._calls > 0)
        )
        out.append(StreamEnd(finish_reason=reason, usage=self._usage))
        self._done = True
        return out

    def abort(self, error: GatewayError) -> list[StreamEvent]:
        """End the stream after a transport failure seen by the caller.

        A failure after the chunk with ``finishReason`` loses nothing: the answer ends normally.
        """
        if self._done:
            return []
        return self.close() if self._finish is not None else self._fail(error)

    # -- internals -----------------------------------------------------------------------------

    def _chunk(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            rid = chunk.get("responseId")
            self._rid = rid if isinstance(rid, str) and rid else None
            model = chunk.get("modelVersion")
            out.append(
                StreamStart(
                    id=response_id(chunk),
                    model=model if isinstance(model, str) and model else self._model,
                )
            )
        if "usageMetadata" in chunk:
            self._usage = usage_from(chunk["usageMetadata"])
        cand = first_candidate(chunk)
        extra = answer_extra(chunk, cand)
        extra.pop("usageMetadata", None)
        if extra:
            out.append(OpaqueEvent(None, Opaque(protocol=PROTOCOL, data=extra)))
        for part in candidate_parts(cand):
            text = visible_text(part)
            thought = thought_text(part)
            keys = wire_keys(part_extra(part))
            if text is not None and (text or keys):
                out += self._open_block("text", keys)
                if text:
                    out.append(TextDelta(index=self._index(), text=text))
            elif thought is not None or (part.get("thought") and keys):
                out += self._open_block("thinking", keys)
                if thought:
                    out.append(ThinkingDelta(index=self._index(), thinking=thought))
            elif "functionCall" in part:
                call = tool_call_from(part, self._rid, self._calls)
                self._calls += 1
                out += self._stop_open()
                idx = self._next_index
                out.append(
                    BlockStart(
                        index=idx, kind="tool_call", tool_call_id=call.id, tool_name=call.name
                    )
                )
                self._next_index += 1
                out.append(ToolArgsDelta(index=idx, partial_json=call.arguments))
                call_keys = wire_keys(part_extra(part, skip=("thoughtSignature",)))
                if call_keys:
                    out.append(OpaqueEvent(idx, Opaque(protocol=PROTOCOL, data=call_keys)))
                out.append(BlockStop(index=idx))
            elif part:
                out += self._stop_open()
                idx = self._next_index
                self._next_index += 1
                opaque = Opaque(protocol=PROTOCOL, data=part)
                out += [BlockStart(index=idx, kind="opaque", opaque=opaque), BlockStop(index=idx)]
        if cand is not None and cand.get("finishReason"):
            self._finish = str(cand["finishReason"])
        elif cand is None and (chunk.get("promptFeedback") or {}).get("blockReason"):
            self._finish = "BLOCKED"
            self._blocked = True
        return out

    def _open_block(
        self, kind: Literal["text", "thinking"], keys: dict[str, Any]
    ) -> list[StreamEvent]:
        """The block of ``kind`` open (a new one if another is), with a part's own keys."""
        out: list[StreamEvent] = []
        if self._open_kind != kind:
            out += self._stop_open()
            out.append(self._start(kind))
        if keys:
            out.append(OpaqueEvent(self._index(), Opaque(protocol=PROTOCOL, data=keys)))
        return out

    def _index(self) -> int:
        assert self._open is not None
        return self._open

    def _start(self, kind: Literal["text", "thinking"]) -> BlockStart:
        idx = self._next_index
        self._next_index += 1
        self._open, self._open_kind = idx, kind
        return BlockStart(index=idx, kind=kind)

    def _stop_open(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        idx, self._open, self._open_kind = self._open, None, None
        return [BlockStop(index=idx)]

    def _fail(self, error: GatewayError) -> list[StreamEvent]:
        self._done = True
        # Close the open block so the event sequence stays well formed up to the error.
        return [*self._stop_open(), StreamError(error)]
