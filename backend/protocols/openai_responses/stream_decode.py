"""OpenAI Responses upstream SSE -> IR stream events (the outbound direction).

Output items open and close IR blocks: a ``message`` item's ``output_text`` (or ``refusal``)
content parts are text blocks, a ``function_call`` item a tool-call block, a ``reasoning`` item a
thinking block whose summary deltas are thinking text (summary parts joined by a blank line) and
whose ``encrypted_content`` (in ``output_item.done``) becomes the block's signature behind
``vocab.OPENAI_ENCRYPTED``. Hosted-tool items (web search calls...) are opaque blocks: their
start item, their own events (``{"event": ...}``) and their final item (``{"item": ...}``) travel
as ``OpaqueEvent``s for a Responses client, as do a text's ``annotation.added`` events.
``response.completed`` /
``response.incomplete`` end the stream with the usage; ``response.failed`` and ``error`` events
are a ``StreamError``; a body that ends before either is a truncation.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.chat import FinishReason, Opaque
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
from backend.protocols.openai_chat.errors import scrub
from backend.protocols.openai_responses.vocab import (
    OPENAI_ENCRYPTED,
    PROTOCOL,
    finish_from_status,
    usage_from_wire,
)
from backend.protocols.sse import SSEEvent


class StreamDecoder:
    def __init__(self, *, provider: str = "openai") -> None:
        self._provider = provider
        self._started = False
        self._next_block = 0
        #: (output_index, content or summary index) -> IR block index of the open block.
        self._open: tuple[Any, int] | None = None
        self._calls = 0
        self._summary_parts: dict[int, int] = {}
        self._finished = False

    def feed(self, ev: SSEEvent) -> list[StreamEvent]:
        if self._finished:
            return []
        data = ev.data.strip()
        if not data or data == "[DONE]":
            return []
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(UpstreamError(f"{self._provider}: invalid JSON in stream"))
        if not isinstance(obj, dict):
            return self._fail(UpstreamError(f"{self._provider}: unexpected stream frame"))
        kind = obj.get("type") or ev.event
        out: list[StreamEvent] = []
        handler = _HANDLERS.get(str(kind))
        if handler is not None:
            handler(self, obj, out)
        elif self._open is not None and self._open[0][0] == obj.get("output_index"):
            # A hosted tool's progress, a text's annotation: for a Responses client only.
            out.append(OpaqueEvent(self._open[1], Opaque(PROTOCOL, {"event": obj})))
        return out

    def close(self) -> list[StreamEvent]:
        if self._finished:
            return []
        return self._fail(
            UpstreamError(f"{self._provider}: upstream stream truncated before it finished")
        )

    # -- events --------------------------------------------------------------------------------
    def _created(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        if self._started:
            return
        self._started = True
        resp = _response_of(obj)
        created = resp.get("created_at")
        out.append(
            StreamStart(
                id=str(resp.get("id") or ""),
                model=str(resp.get("model") or ""),
                created=int(created) if isinstance(created, (int, float)) else 0,
            )
        )

    def _item_added(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        item = obj.get("item")
        if not isinstance(item, dict):
            return
        key = (obj.get("output_index"), 0)
        if item.get("type") == "function_call":
            self._calls += 1
            self._open_block(
                key,
                BlockStart(
                    0,
                    "tool_call",
                    tool_call_id=str(item.get("call_id") or f"call_{self._calls}"),
                    tool_name=str(item.get("name") or ""),
                ),
                out,
            )
        elif item.get("type") == "reasoning":
            self._open_block(key, BlockStart(0, "thinking"), out)
        elif item.get("type") != "message":
            self._open_block(key, BlockStart(0, "opaque", opaque=Opaque(PROTOCOL, item)), out)

    def _part_added(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        self._open_block(
            (obj.get("output_index"), obj.get("content_index", 0)), BlockStart(0, "text"), out
        )

    def _text_delta(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = obj.get("delta")
        if self._open is not None and isinstance(delta, str) and delta:
            out.append(TextDelta(self._open[1], delta))

    def _args_delta(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = obj.get("delta")
        if self._open is not None and isinstance(delta, str) and delta:
            out.append(ToolArgsDelta(self._open[1], delta))

    def _summary_delta(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = obj.get("delta")
        if self._open is None or not isinstance(delta, str) or not delta:
            return
        block = self._open[1]
        index = obj.get("summary_index", 0)
        seen = self._summary_parts.setdefault(block, index if isinstance(index, int) else 0)
        if isinstance(index, int) and index != seen:
            self._summary_parts[block] = index
            delta = "\n\n" + delta
        out.append(ThinkingDelta(block, delta))

    def _item_done(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        item = obj.get("item")
        if self._open is None or not isinstance(item, dict):
            return
        if self._open[0][0] != obj.get("output_index"):
            return
        encrypted = item.get("encrypted_content")
        if item.get("type") == "reasoning" and isinstance(encrypted, str) and encrypted:
            out.append(ThinkingDelta(self._open[1], "", OPENAI_ENCRYPTED + encrypted))
        elif item.get("type") not in ("reasoning", "message", "function_call"):
            out.append(OpaqueEvent(self._open[1], Opaque(PROTOCOL, {"item": item})))
        self._close_block(out)

    def _ignore(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        """Events a Responses client gets rebuilt from the IR (``*.done``, summary parts)."""

    def _part_done(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        if self._open is not None and self._open[0] == (
            obj.get("output_index"),
            obj.get("content_index", 0),
        ):
            self._close_block(out)

    def _completed(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        resp = _response_of(obj)
        self._created({"response": resp}, out)
        self._close_block(out)
        finish: FinishReason = finish_from_status(
            resp.get("status"), resp.get("incomplete_details"), self._calls > 0
        )
        out.append(StreamEnd(finish_reason=finish, usage=usage_from_wire(resp.get("usage"))))
        self._finished = True

    def _failed(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        err = obj.get("error")
        if obj.get("type") == "response.failed":
            resp = _response_of(obj)
            err = resp.get("error")
        elif err is None:
            err = obj
        message = err.get("message") if isinstance(err, dict) else None
        code = err.get("code") if isinstance(err, dict) else None
        text = scrub(message) if isinstance(message, str) else "error during streaming"
        out.extend(
            self._fail(
                UpstreamError(
                    f"{self._provider}: {text}",
                    code=code if isinstance(code, str) else None,
                    detail={"upstream_code": code} if isinstance(code, str) else None,
                )
            )
        )

    # -- blocks --------------------------------------------------------------------------------
    def _open_block(self, key: tuple[Any, Any], start: BlockStart, out: list[StreamEvent]) -> None:
        self._close_block(out)
        start.index = self._next_block
        self._next_block += 1
        self._open = (key, start.index)
        out.append(start)

    def _close_block(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open[1]))
            self._open = None

    def _fail(self, error: GatewayError) -> list[StreamEvent]:
        self._finished = True
        return [StreamError(error)]


def _response_of(obj: dict[str, Any]) -> dict[str, Any]:
    resp = obj.get("response")
    return resp if isinstance(resp, dict) else {}


_HANDLERS: dict[str, Any] = {
    "response.created": StreamDecoder._created,
    "response.in_progress": StreamDecoder._created,
    "response.output_item.added": StreamDecoder._item_added,
    "response.content_part.added": StreamDecoder._part_added,
    "response.output_text.delta": StreamDecoder._text_delta,
    "response.refusal.delta": StreamDecoder._text_delta,
    "response.function_call_arguments.delta": StreamDecoder._args_delta,
    "response.reasoning_summary_text.delta": StreamDecoder._summary_delta,
    "response.reasoning_text.delta": StreamDecoder._summary_delta,
    "response.content_part.done": StreamDecoder._part_done,
    "response.output_text.done": StreamDecoder._ignore,
    "response.refusal.done": StreamDecoder._ignore,
    "response.function_call_arguments.done": StreamDecoder._ignore,
    "response.reasoning_summary_part.added": StreamDecoder._ignore,
    "response.reasoning_summary_part.done": StreamDecoder._ignore,
    "response.reasoning_summary_text.done": StreamDecoder._ignore,
    "response.reasoning_text.done": StreamDecoder._ignore,
    "response.queued": StreamDecoder._created,
    "response.output_item.done": StreamDecoder._item_done,
    "response.completed": StreamDecoder._completed,
    "response.incomplete": StreamDecoder._completed,
    "response.failed": StreamDecoder._failed,
    "error": StreamDecoder._failed,
}
