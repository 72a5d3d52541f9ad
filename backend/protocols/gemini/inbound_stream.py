"""IR stream events -> Gemini ``streamGenerateContent`` for clients of the Gemini door.

Every chunk is a whole ``GenerateContentResponse`` holding the parts produced since the last
one, as Gemini streams: text deltas and thought deltas go out as they arrive; a function call is
sent whole in one part when its block ends (Gemini never splits one). The last chunk carries
``finishReason`` and the complete ``usageMetadata``; earlier chunks carry the prompt count when
known (Gemini repeats usage on every chunk; clients read the last).

Framing: ``alt=sse`` gives ``data: {...}`` events separated by CRLF blank lines (Google's own
framing); without it the stream is one JSON array written element by element. A failure after
the first byte is an ``{"error": {...}}`` element/event, then the stream ends, as Google does.

Thinking from another provider (Anthropic's signed or redacted blocks) is held and packed into
the next call's ``thoughtSignature`` (or a closing thought part), like ``answer.encode_parts``;
Gemini's own extras arrive as ``OpaqueEvent``s (part keys such as ``thoughtSignature`` on the
block they belong to, answer-level keys such as ``groundingMetadata`` with ``index=None``) and
are merged into the next part or chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from backend.ir.chat import ThinkingPart, ToolCallPart, Usage
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
from backend.protocols.gemini.answer import (
    FINISH_TO_WIRE,
    call_part,
    error_body,
    held_thoughts_part,
    usage_to_wire,
)
from backend.protocols.gemini.wire import PROTOCOL


@dataclass(slots=True)
class _Block:
    kind: str
    call_id: str = ""
    name: str = ""
    args: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: str | None = None
    #: Gemini part keys (``thoughtSignature``...) for the next part of this block.
    extra: dict[str, Any] = field(default_factory=dict)


class StreamEncoder:
    def __init__(self, model: str, *, sse: bool, include_thoughts: bool) -> None:
        self.model = model
        self.sse = sse
        self.include_thoughts = include_thoughts
        self._id = ""
        self._count = 0
        self._done = False
        self._prompt = 0
        self._blocks: dict[int, _Block] = {}
        self._held: list[ThinkingPart] = []
        #: Answer-level Gemini keys for the next chunk (``candidate`` keys apart).
        self._top: dict[str, Any] = {}
        self._cand: dict[str, Any] = {}

    def encode(self, ev: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(ev, StreamStart):
            self._id = ev.id
            if ev.usage is not None:
                self._prompt = ev.usage.input_tokens
            return b""
        if isinstance(ev, StreamError):
            self._done = True
            return self._frame(error_body(ev.error)) + self._close()
        if isinstance(ev, StreamEnd):
            return self._end(ev)
        parts = self._parts(ev)
        return self._chunk(parts) if parts else b""

    # -- events -> parts -----------------------------------------------------------------------
    def _parts(self, ev: StreamEvent) -> list[dict[str, Any]]:
        if isinstance(ev, BlockStart):
            block = _Block(ev.kind, ev.tool_call_id or "", ev.tool_name or "", redacted=ev.data)
            self._blocks[ev.index] = block
            if ev.kind == "opaque" and ev.opaque is not None and ev.opaque.protocol == PROTOCOL:
                return [dict(ev.opaque.data)]
            return []
        if isinstance(ev, TextDelta):
            block = self._block(ev.index, "text")
            return [{**self._take(block), "text": ev.text}] if ev.text else []
        if isinstance(ev, ThinkingDelta):
            block = self._block(ev.index, "thinking")
            block.thinking.append(ev.thinking)
            if ev.signature is not None:
                block.signature = ev.signature
            if ev.thinking and (self.include_thoughts or block.extra):
                return [{**self._take(block), "text": ev.thinking, "thought": True}]
            return []
        if isinstance(ev, ToolArgsDelta):
            self._block(ev.index, "tool_call").args.append(ev.partial_json)
            return []
        if isinstance(ev, OpaqueEvent):
            return self._opaque(ev)
        if isinstance(ev, BlockStop):
            return self._stop(ev.index)
        return []

    def _block(self, index: int, kind: str) -> _Block:
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block(kind)
        return block

    def _take(self, block: _Block) -> dict[str, Any]:
        extra, block.extra = block.extra, {}
        return extra

    def _opaque(self, ev: OpaqueEvent) -> list[dict[str, Any]]:
        if ev.opaque.protocol != PROTOCOL:
            return []  # another protocol's extras mean nothing to a Gemini client
        data = ev.opaque.data
        if ev.index is None:
            cand = data.get("candidate")
            if isinstance(cand, dict):
                self._cand.update(cand)
            self._top.update((k, v) for k, v in data.items() if k != "candidate")
            return []
        self._block(ev.index, "text").extra.update(data)
        return []

    def _stop(self, index: int) -> list[dict[str, Any]]:
        block = self._blocks.pop(index, None)
        if block is None:
            return []
        if block.kind == "tool_call":
            call = ToolCallPart(id=block.call_id, name=block.name, arguments="")
            part = call_part(call, "".join(block.args), self._held, native=True)
            self._held = []
            if block.extra:
                part = {**block.extra, **part}
            return [part]
        if block.kind == "thinking" and block.signature:
            self._held.append(ThinkingPart("".join(block.thinking), signature=block.signature))
        elif block.kind == "redacted_thinking" and block.redacted:
            self._held.append(ThinkingPart(redacted_data=block.redacted))
        if block.extra:
            # Keys that came after the block's last delta (Gemini's signature on a final part).
            thought = {"thought": True} if block.kind == "thinking" else {}
            return [{**block.extra, "text": "", **thought}]
        return []

    # -- chunks --------------------------------------------------------------------------------
    def _end(self, ev: StreamEnd) -> bytes:
        self._done = True
        parts: list[dict[str, Any]] = []
        for index in list(self._blocks):
            parts += self._stop(index)
        if self._held:
            parts.append(held_thoughts_part(self._held))
            self._held = []
        usage = ev.usage
        if not usage.input_tokens and self._prompt:
            usage = Usage(
                input_tokens=self._prompt,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
        finish = FINISH_TO_WIRE.get(ev.finish_reason, "STOP")
        return self._chunk(parts, finish=finish, usage=usage_to_wire(usage)) + self._close()

    def _chunk(
        self,
        parts: list[dict[str, Any]],
        *,
        finish: str | None = None,
        usage: dict[str, Any] | None = None,
    ) -> bytes:
        cand: dict[str, Any] = {}
        if parts:
            cand["content"] = {"parts": parts, "role": "model"}
        if finish is not None:
            cand["finishReason"] = finish
        cand["index"] = 0
        if self._cand:
            cand = {**self._cand, **cand}
            self._cand = {}
        if usage is None:
            usage = {"promptTokenCount": self._prompt, "totalTokenCount": self._prompt}
        body: dict[str, Any] = {
            "candidates": [cand],
            "usageMetadata": usage,
            "modelVersion": self.model,
            "responseId": self._id,
        }
        if self._top:
            usage_extra = self._top.pop("usageMetadata", None)
            if isinstance(usage_extra, dict):
                body["usageMetadata"] = {**usage_extra, **usage}
            body.update((k, v) for k, v in self._top.items() if k not in body)
            self._top = {}
        return self._frame(body)

    def _frame(self, body: dict[str, Any]) -> bytes:
        data = orjson.dumps(body)
        self._count += 1
        if self.sse:
            return b"data: " + data + b"\r\n\r\n"
        return (b"[" if self._count == 1 else b"\n,\r\n") + data

    def _close(self) -> bytes:
        if self.sse:
            return b""
        return b"[]" if self._count == 0 else b"\n]"
