"""Responses streams: IR events -> a client's SSE events, with OpenAI's full event sequence.

Every event carries ``type`` and a ``sequence_number`` counting from 0, framed with an ``event:``
line as OpenAI sends them (no ``[DONE]`` at the end). For a client the sequence is::

    response.created, response.in_progress
    per text block:      output_item.added (message), content_part.added (output_text),
                         output_text.delta*, output_text.done, content_part.done, output_item.done
    per tool call:       output_item.added (function_call), function_call_arguments.delta*,
                         function_call_arguments.done, output_item.done
    per thinking block:  output_item.added (reasoning), reasoning_summary_part.added,
                         reasoning_summary_text.delta*, reasoning_summary_text.done,
                         reasoning_summary_part.done, output_item.done
    response.completed | response.incomplete   (the whole response object, usage included)

An upstream failure mid-stream is an ``error`` event followed by ``response.failed``. The final
response object is kept in ``final`` for the stored-responses hook.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.chat import ChatRequest, ThinkingPart, ToolCallPart
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
from backend.protocols.openai_chat.errors import error_object
from backend.protocols.openai_responses.encode import (
    function_call_item,
    message_item,
    output_text,
    reasoning_item,
    request_namespaces,
    response_object,
    summary_text,
)
from backend.protocols.openai_responses.vocab import (
    PROTOCOL,
    new_id,
    status_for,
    usage_to_wire,
    wrap_signature,
)
from backend.protocols.sse import sse_frame


class _Item:
    """The output item of the open IR block."""

    __slots__ = ("annotations", "call", "id", "item", "kind", "output_index", "text", "thinking")

    def __init__(self, kind: str, item_id: str, output_index: int) -> None:
        self.kind = kind
        self.id = item_id
        self.output_index = output_index
        self.text = ""
        self.call: ToolCallPart | None = None
        self.thinking = ThinkingPart()
        #: An opaque (hosted-tool) item as it stands: its start, then its final form.
        self.item: dict[str, Any] = {}
        self.annotations: list[Any] = []


class StreamEncoder:
    """IR stream events -> Responses SSE bytes for one response (``response_id``)."""

    def __init__(self, req: ChatRequest, *, response_id: str, created_at: int) -> None:
        self._req = req
        self._namespaces = request_namespaces(req)
        self._id = response_id
        self._created_at = created_at
        self._seq = 0
        self._output: list[dict[str, Any]] = []
        self._open: dict[int, _Item] = {}
        self._done = False
        #: The final response object (completed, incomplete or failed), once the stream ended.
        self.final: dict[str, Any] | None = None

    # -- dispatch ------------------------------------------------------------------------------
    def encode(self, ev: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(ev, StreamStart):
            shell = self._response("in_progress", None, None)
            return self._event("response.created", response=shell) + self._event(
                "response.in_progress", response=shell
            )
        if isinstance(ev, BlockStart):
            return self._start(ev)
        if isinstance(ev, TextDelta):
            return self._text(ev)
        if isinstance(ev, ToolArgsDelta):
            return self._args(ev)
        if isinstance(ev, ThinkingDelta):
            return self._thinking(ev)
        if isinstance(ev, OpaqueEvent):
            return self._opaque(ev)
        if isinstance(ev, BlockStop):
            return self._stop(ev.index)
        if isinstance(ev, StreamEnd):
            return self._end(ev)
        if isinstance(ev, StreamError):
            return self._fail(ev)
        return b""

    # -- blocks --------------------------------------------------------------------------------
    def _start(self, ev: BlockStart) -> bytes:
        out = b"".join(self._stop(i) for i in list(self._open))
        index = len(self._output) + len(self._open)
        if ev.kind == "text":
            item = _Item("message", new_id("msg"), index)
            self._open[ev.index] = item
            return (
                out
                + self._event(
                    "response.output_item.added",
                    output_index=index,
                    item=message_item(item.id, "in_progress", []),
                )
                + self._event(
                    "response.content_part.added",
                    item_id=item.id,
                    output_index=index,
                    content_index=0,
                    part=output_text(""),
                )
            )
        if ev.kind == "tool_call":
            item = _Item("function_call", new_id("fc"), index)
            item.call = ToolCallPart(ev.tool_call_id or new_id("call"), ev.tool_name or "", "")
            self._open[ev.index] = item
            return out + self._event(
                "response.output_item.added",
                output_index=index,
                item=function_call_item(item.id, item.call, "in_progress", self._namespaces),
            )
        if ev.kind == "opaque":
            if ev.opaque is None or ev.opaque.protocol != PROTOCOL:
                return out  # another protocol's block: nothing a Responses client can read
            item = _Item("opaque", str(ev.opaque.data.get("id") or new_id("item")), index)
            item.item = dict(ev.opaque.data)
            self._open[ev.index] = item
            return out + self._event(
                "response.output_item.added", output_index=index, item=item.item
            )
        item = _Item("reasoning", new_id("rs"), index)
        if ev.kind == "redacted_thinking":
            item.thinking = ThinkingPart(redacted_data=ev.data or "")
        self._open[ev.index] = item
        return out + self._event(
            "response.output_item.added",
            output_index=index,
            item=reasoning_item(item.id, [], None),
        )

    def _text(self, ev: TextDelta) -> bytes:
        item = self._open.get(ev.index)
        if item is None or item.kind != "message" or not ev.text:
            return b""
        item.text += ev.text
        return self._event(
            "response.output_text.delta",
            item_id=item.id,
            output_index=item.output_index,
            content_index=0,
            delta=ev.text,
            logprobs=[],
        )

    def _args(self, ev: ToolArgsDelta) -> bytes:
        item = self._open.get(ev.index)
        if item is None or item.call is None or not ev.partial_json:
            return b""
        item.call.arguments += ev.partial_json
        return self._event(
            "response.function_call_arguments.delta",
            item_id=item.id,
            output_index=item.output_index,
            delta=ev.partial_json,
        )

    def _thinking(self, ev: ThinkingDelta) -> bytes:
        item = self._open.get(ev.index)
        if item is None or item.kind != "reasoning":
            return b""
        if ev.signature:
            item.thinking.signature = (item.thinking.signature or "") + ev.signature
        if not ev.thinking:
            return b""
        out = b""
        if not item.thinking.thinking:
            out = self._event(
                "response.reasoning_summary_part.added",
                item_id=item.id,
                output_index=item.output_index,
                summary_index=0,
                part=summary_text(""),
            )
        item.thinking.thinking += ev.thinking
        return out + self._event(
            "response.reasoning_summary_text.delta",
            item_id=item.id,
            output_index=item.output_index,
            summary_index=0,
            delta=ev.thinking,
        )

    def _opaque(self, ev: OpaqueEvent) -> bytes:
        item = self._open.get(ev.index) if ev.index is not None else None
        if item is None or ev.opaque.protocol != PROTOCOL:
            return b""
        data = ev.opaque.data
        if isinstance(data.get("item"), dict):
            item.item = dict(data["item"])
            return b""
        event = data.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return b""
        fields = {k: v for k, v in event.items() if k not in ("type", "sequence_number")}
        fields["output_index"] = item.output_index
        if item.kind == "message":
            fields["item_id"] = item.id
            if event.get("type") == "response.output_text.annotation.added":
                fields["annotation_index"] = len(item.annotations)
                item.annotations.append(event.get("annotation"))
        return self._event(event["type"], **fields)

    def _stop(self, index: int) -> bytes:
        item = self._open.pop(index, None)
        if item is None:
            return b""
        at = {"item_id": item.id, "output_index": item.output_index}
        out = b""
        if item.kind == "opaque":
            done = item.item
        elif item.kind == "message":
            part = output_text(item.text)
            part["annotations"] = item.annotations
            done = message_item(item.id, "completed", [part])
            out += self._event(
                "response.output_text.done", **at, content_index=0, text=item.text, logprobs=[]
            )
            out += self._event("response.content_part.done", **at, content_index=0, part=part)
        elif item.kind == "function_call":
            assert item.call is not None
            done = function_call_item(item.id, item.call, "completed", self._namespaces)
            out += self._event(
                "response.function_call_arguments.done",
                **at,
                name=done["name"],
                arguments=item.call.arguments,
            )
        else:
            text = item.thinking.thinking
            summary = [summary_text(text)] if text else []
            if text:
                out += self._event(
                    "response.reasoning_summary_text.done", **at, summary_index=0, text=text
                )
                out += self._event(
                    "response.reasoning_summary_part.done",
                    **at,
                    summary_index=0,
                    part=summary_text(text),
                )
            done = reasoning_item(item.id, summary, wrap_signature(item.thinking))
        self._output.append(done)
        return out + self._event(
            "response.output_item.done", output_index=item.output_index, item=done
        )

    # -- the end -------------------------------------------------------------------------------
    def _end(self, ev: StreamEnd) -> bytes:
        out = b"".join(self._stop(i) for i in list(self._open))
        self._done = True
        status = status_for(ev.finish_reason)
        self.final = self._response(status[0], status[1], usage_to_wire(ev.usage))
        kind = "response.completed" if status[0] == "completed" else "response.incomplete"
        return out + self._event(kind, response=self.final)

    def _fail(self, ev: StreamError) -> bytes:
        self._done = True
        err = error_object(ev.error)
        code = err.get("code") or err.get("type") or "server_error"
        out = self._event("error", code=code, message=err["message"], param=err.get("param"))
        self.final = self._response(
            "failed", None, None, error={"code": code, "message": err["message"]}
        )
        return out + self._event("response.failed", response=self.final)

    def _response(
        self,
        status: str,
        incomplete: dict[str, Any] | None,
        usage: dict[str, Any] | None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return response_object(
            self._req,
            response_id=self._id,
            created_at=self._created_at,
            output=list(self._output),
            status=(status, incomplete),
            usage=usage,
            error=error,
        )

    def _event(self, kind: str, **fields: Any) -> bytes:
        obj = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return sse_frame(orjson.dumps(obj), kind)
