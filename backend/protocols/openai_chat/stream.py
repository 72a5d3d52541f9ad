"""OpenAI chat completion streams: IR events -> client SSE, and upstream SSE -> IR events.

What the 3.x SDK needs from a stream (see the wire-format notes): ``role`` appears once, a tool
call's ``id``/``name`` once (its first delta) because the SDK concatenates repeated strings,
``tool_calls[].index`` counts tool calls, and with ``include_usage`` every chunk carries
``"usage": null`` until a final ``choices: []`` chunk with the totals, then ``data: [DONE]``.

The encoder sends the role with the first content, as OpenAI does: a separate
``{"role": "assistant", "content": ""}`` chunk before text, or role and ``content: null`` inside
the first tool call's chunk when the answer starts with a tool call.

Thinking goes out as ``delta.reasoning_content`` pieces; a signed thinking block is also sent
whole, once, as ``delta.thinking_blocks`` when it ends (a redacted one when it starts), with an
``index`` the SDK's accumulator merges by, so a client can echo the blocks back with their
signatures (see ``encode``; the decoder ignores the ``index``).

Extras (``backend.ir.stream``): the decoder follows choice 0 into IR events and carries what
else a chunk holds verbatim: the other choices of ``n > 1``, choice 0's ``logprobs`` and unknown
delta keys (``audio``, ``annotations``) as ``OpaqueEvent(None, {"choices": [...]})``, the
answer's ``system_fingerprint`` / ``service_tier`` on ``StreamStart.opaque`` and the final
usage's details on ``StreamEnd.opaque``. The encoder writes them back for an OpenAI client: the
choices in a chunk of their own, right after choice 0's content of the same upstream chunk.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson

from backend.ir.chat import (
    ChatResponse,
    FinishReason,
    Opaque,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
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
from backend.protocols.openai_chat.encode import new_completion_id, thinking_block
from backend.protocols.openai_chat.errors import decode_stream_error, error_object
from backend.protocols.openai_chat.vocab import (
    finish_from_wire,
    finish_to_wire,
    merge_usage,
    usage_from_wire,
    usage_to_wire,
)
from backend.protocols.sse import SSEEvent, sse_frame

DONE = b"data: [DONE]\n\n"


class StreamEncoder:
    """IR stream events -> ``chat.completion.chunk`` SSE bytes for an OpenAI client."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = ""
        self._created = 0
        self._role_sent = False
        #: IR block index -> OpenAI tool call index (0, 1, ... in call order).
        self._tool_index: dict[int, int] = {}
        #: IR block index -> the thinking block being streamed (text and signature so far).
        self._thinking: dict[int, ThinkingPart] = {}
        self._blocks_sent = 0
        self._done = False
        #: An OpenAI upstream's answer-level fields, on every chunk (system_fingerprint...).
        self._envelope_extra: dict[str, Any] = {}
        #: A text chunk's frame around its JSON-encoded text, once the envelope is fixed: most
        #: of a stream is text, and concatenating bytes costs a fraction of building the dicts.
        self._text_frame: tuple[bytes, bytes] | None = None

    def encode(self, ev: StreamEvent) -> bytes:
        if self._done:
            return b""
        # Text first: most of a stream's events are text deltas.
        if isinstance(ev, TextDelta):
            if not ev.text:
                return b""
            if self._role_sent:
                frame = self._text_frame or self._new_text_frame()
                if frame is not None:
                    return frame[0] + orjson.dumps(ev.text) + frame[1]
            delta: dict[str, Any] = self._role_fields(content=None) if not self._role_sent else {}
            delta["content"] = ev.text
            return self._chunk(delta)
        if isinstance(ev, StreamStart):
            self._id = ev.id or new_completion_id()
            self._created = ev.created or int(time.time())
            if ev.opaque is not None and ev.opaque.protocol == "openai":
                self._envelope_extra = dict(ev.opaque.data)
            self._text_frame = None
            return b""
        if isinstance(ev, OpaqueEvent):
            return self._opaque(ev)
        if isinstance(ev, BlockStart):
            if ev.kind == "opaque":
                return b""  # another protocol's block: nothing an OpenAI client could read
            if ev.kind == "tool_call":
                return self._tool_start(ev)
            out = self._role_chunk() if not self._role_sent else b""
            if ev.kind == "thinking":
                self._thinking[ev.index] = ThinkingPart()
            elif ev.kind == "redacted_thinking":
                out += self._block_chunk(ThinkingPart(redacted_data=ev.data or ""))
            return out
        if isinstance(ev, ThinkingDelta):
            part = self._thinking.get(ev.index)
            if part is None:
                return b""
            part.thinking += ev.thinking
            if ev.signature:
                part.signature = (part.signature or "") + ev.signature
            return self._chunk({"reasoning_content": ev.thinking}) if ev.thinking else b""
        if isinstance(ev, BlockStop):
            done = self._thinking.pop(ev.index, None)
            if done is None or not done.signature:
                return b""
            return self._block_chunk(done)
        if isinstance(ev, ToolArgsDelta):
            index = self._tool_index.get(ev.index)
            if index is None or not ev.partial_json:
                return b""
            call = {"index": index, "function": {"arguments": ev.partial_json}}
            return self._chunk({"tool_calls": [call]})
        if isinstance(ev, StreamEnd):
            self._done = True
            out = b"" if self._role_sent else self._role_chunk()
            out += self._chunk({}, finish_reason=finish_to_wire(ev.finish_reason))
            if self._include_usage:
                usage = usage_to_wire(ev.usage)
                if ev.opaque is not None and ev.opaque.protocol == "openai":
                    usage = merge_usage(ev.opaque.data.get("usage"), usage)
                out += self._frame({**self._envelope(), "choices": [], "usage": usage})
            return out + DONE
        if isinstance(ev, StreamError):
            # What OpenAI itself sends when a stream fails; no [DONE] follows.
            self._done = True
            return self._frame({"error": error_object(ev.error)})
        return b""

    def _opaque(self, ev: OpaqueEvent) -> bytes:
        """An OpenAI upstream's further choices / choice 0's extras, in a chunk of their own."""
        choices = ev.opaque.data.get("choices") if ev.opaque.protocol == "openai" else None
        if not isinstance(choices, list) or not choices:
            return b""
        # Choice 0 opens the stream, as OpenAI's own streams do (the SDK's accumulator builds its
        # snapshot from the first chunk and indexes it by choice).
        out = b"" if self._role_sent else self._role_chunk()
        chunk = {**self._envelope(), "choices": choices}
        if self._include_usage:
            chunk["usage"] = None
        return out + self._frame(chunk)

    def _block_chunk(self, part: ThinkingPart) -> bytes:
        # The SDK's stream accumulator merges list entries by ``index``.
        block = {"index": self._blocks_sent, **thinking_block(part)}
        self._blocks_sent += 1
        return self._chunk({"thinking_blocks": [block]})

    def _tool_start(self, ev: BlockStart) -> bytes:
        index = len(self._tool_index)
        self._tool_index[ev.index] = index
        with_role = not self._role_sent
        delta = self._role_fields(content=None) if with_role else {}
        # Key order as OpenAI sends it: role, content, tool_calls, refusal.
        refusal = delta.pop("refusal", None)
        delta["tool_calls"] = [
            {
                "index": index,
                "id": ev.tool_call_id or f"call_{index}",
                "type": "function",
                "function": {"name": ev.tool_name or "", "arguments": ""},
            }
        ]
        if with_role:
            delta["refusal"] = refusal
        return self._chunk(delta)

    def _role_fields(self, content: str | None) -> dict[str, Any]:
        self._role_sent = True
        return {"role": "assistant", "content": content, "refusal": None}

    def _role_chunk(self) -> bytes:
        return self._chunk(self._role_fields(content=""))

    def _envelope(self) -> dict[str, Any]:
        if not self._id:
            self._id = new_completion_id()
            self._created = int(time.time())
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            **self._envelope_extra,
        }

    def _new_text_frame(self) -> tuple[bytes, bytes] | None:
        """What ``_chunk({"content": text})`` makes around ``text``, byte for byte (orjson
        writes keys in order, without spaces); None when an extra would take a key's place."""
        envelope = self._envelope()
        if "choices" in envelope or "usage" in envelope:
            return None
        head = (
            b"data: " + orjson.dumps(envelope)[:-1] + b',"choices":[{"index":0,"delta":{"content":'
        )
        tail = b'},"logprobs":null,"finish_reason":null}]'
        tail += b',"usage":null}\n\n' if self._include_usage else b"}\n\n"
        self._text_frame = (head, tail)
        return self._text_frame

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = self._envelope()
        chunk["choices"] = [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ]
        if self._include_usage:
            chunk["usage"] = None
        return self._frame(chunk)

    @staticmethod
    def _frame(obj: dict[str, Any]) -> bytes:
        return sse_frame(orjson.dumps(obj))


class StreamDecoder:
    """Upstream ``chat.completion.chunk`` SSE events -> IR stream events.

    Only choice 0 is followed. Blocks are synthesized: text opens a text block, each new tool
    call index opens a tool block and closes the previous one. ``StreamEnd`` waits for
    ``[DONE]`` because the usage chunk comes after the finish chunk. A stream that ends with a
    finish reason but no ``[DONE]`` still ends cleanly (the answer is complete; usage may be
    missing); one that ends before any finish reason is truncated -> ``StreamError``.
    """

    def __init__(self, *, provider: str = "openai") -> None:
        self._provider = provider
        self._id = ""
        self._model = ""
        self._created = 0
        self._started = False
        self._next_block = 0
        self._open: int | None = None
        self._open_kind = ""
        #: Wire tool call key (index, else id) -> IR block index.
        self._tools: dict[int | str, int] = {}
        self._finish: FinishReason | None = None
        self._usage = Usage()
        self._raw_usage: dict[str, Any] | None = None
        self._envelope_extra: dict[str, Any] | None = None
        self._finished = False

    def feed(self, ev: SSEEvent) -> list[StreamEvent]:
        if self._finished:
            return []
        data = ev.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return self._end()
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(UpstreamError(f"{self._provider}: invalid JSON in stream"))
        if not isinstance(obj, dict):
            return self._fail(UpstreamError(f"{self._provider}: unexpected stream frame"))
        if obj.get("error"):
            return self._fail(decode_stream_error(obj, provider=self._provider))
        if self._envelope_extra is None or not (self._id and self._model and self._created):
            self._note_identity(obj)
        if isinstance(obj.get("usage"), dict):
            self._usage = usage_from_wire(obj["usage"])
            self._raw_usage = obj["usage"]
        choices = obj.get("choices")
        index = self._open if self._open_kind == "text" else None
        if index is not None and type(choices) is list and len(choices) == 1:
            # The usual chunk, one more piece of the open text block: what ``_choice`` would
            # make of it, without its general walk (most of a stream is such chunks).
            choice = choices[0]
            if type(choice) is dict and not choice.get("finish_reason"):
                delta = choice.get("delta")
                text = delta.get("content") if type(delta) is dict and len(delta) == 1 else None
                if (
                    type(text) is str
                    and text
                    and not choice.get("logprobs")
                    and choice.get("index", 0) == 0
                ):
                    return [TextDelta(index, text)]
        out: list[StreamEvent] = []
        others: list[Any] = []
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, out)
                    stub = _choice_extra(choice)
                    if stub is not None:
                        others.append(stub)
                else:
                    others.append(choice)  # n > 1: verbatim for an OpenAI client
        if others:
            self._start(out)
            out.append(OpaqueEvent(None, Opaque("openai", {"choices": others})))
        return out

    @property
    def answer_complete(self) -> bool:
        """A finish reason arrived: what is missing now is at most usage and ``[DONE]``."""
        return self._finish is not None and not self._finished

    def close(self) -> list[StreamEvent]:
        """The upstream body ended: finish cleanly or report the truncation."""
        if self._finished:
            return []
        if self._finish is not None:
            return self._end()
        return self._fail(
            UpstreamError(f"{self._provider}: upstream stream truncated before it finished")
        )

    # -- internals -----------------------------------------------------------------------------
    def _note_identity(self, obj: dict[str, Any]) -> None:
        # Azure opens with a prompt-filter chunk whose id and model are empty.
        if not self._id and isinstance(obj.get("id"), str):
            self._id = obj["id"]
        if not self._model and isinstance(obj.get("model"), str):
            self._model = obj["model"]
        if not self._created and isinstance(obj.get("created"), int):
            self._created = obj["created"]
        if self._envelope_extra is None and obj.get("choices"):
            self._envelope_extra = {
                k: v
                for k, v in obj.items()
                if k not in _CHUNK_KEYS and v is not None and k != "obfuscation"
            }

    def _start(self, out: list[StreamEvent]) -> None:
        if not self._started:
            self._started = True
            extra = self._envelope_extra
            opaque = Opaque("openai", extra) if extra else None
            out.append(
                StreamStart(id=self._id, model=self._model, created=self._created, opaque=opaque)
            )

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        self._start(out)
        delta = choice.get("delta")
        if isinstance(delta, dict):
            # OpenAI-compatible reasoning servers (vLLM, DeepSeek...) stream thinking here.
            reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                self._thinking(reasoning, out)
            for key in ("content", "refusal"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    self._text(text, out)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, dict):
                        self._tool_delta(call, out)
        reason = choice.get("finish_reason")
        if reason:
            self._finish = finish_from_wire(reason)
            self._close_block(out)

    def _open_block(
        self,
        kind: Literal["text", "tool_call", "thinking"],
        out: list[StreamEvent],
        tool_call_id: str | None = None,
        tool_name: str | None = None,
    ) -> int:
        self._close_block(out)
        index = self._next_block
        self._next_block += 1
        self._open, self._open_kind = index, kind
        out.append(BlockStart(index, kind, tool_call_id=tool_call_id, tool_name=tool_name))
        return index

    def _close_block(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open))
            self._open, self._open_kind = None, ""

    def _text(self, text: str, out: list[StreamEvent]) -> None:
        index = self._open if self._open_kind == "text" else None
        if index is None:
            index = self._open_block("text", out)
        out.append(TextDelta(index, text))

    def _thinking(self, text: str, out: list[StreamEvent]) -> None:
        index = self._open if self._open_kind == "thinking" else None
        if index is None:
            index = self._open_block("thinking", out)
        out.append(ThinkingDelta(index, text))

    def _tool_delta(self, call: dict[str, Any], out: list[StreamEvent]) -> None:
        raw_fn = call.get("function")
        fn: dict[str, Any] = raw_fn if isinstance(raw_fn, dict) else {}
        index, call_id, name = call.get("index"), call.get("id"), fn.get("name")
        call_id = call_id if isinstance(call_id, str) and call_id else None
        # Calls are told apart by index; servers that omit it are keyed by id, else the open one.
        key: int | str | None = index if isinstance(index, int) else call_id
        block = self._tools.get(key) if key is not None else self._open_tool()
        if block is None:
            ordinal = len(self._tools)
            block = self._open_block(
                "tool_call",
                out,
                tool_call_id=call_id or f"call_{ordinal}",
                tool_name=name if isinstance(name, str) else "",
            )
            self._tools[key if key is not None else ordinal] = block
        arguments = fn.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments:
            # OpenAI never interleaves tool calls; a server that did would send deltas for an
            # already stopped block here, which the IR cannot express any better.
            out.append(ToolArgsDelta(block, arguments))

    def _open_tool(self) -> int | None:
        return self._open if self._open_kind == "tool_call" else None

    def _end(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        self._start(out)
        self._close_block(out)
        finish = self._finish or "stop"
        if finish == "stop" and self._tools:
            # Some compatible servers finish a tool call with "stop".
            finish = "tool_calls"
        raw = self._raw_usage
        opaque = Opaque("openai", {"usage": raw}) if raw else None
        out.append(StreamEnd(finish_reason=finish, usage=self._usage, opaque=opaque))
        self._finished = True
        return out

    def _fail(self, error: GatewayError) -> list[StreamEvent]:
        self._finished = True
        return [StreamError(error)]


#: Chunk keys the codec models.
_CHUNK_KEYS = frozenset({"id", "object", "created", "model", "choices", "usage"})
#: Keys of choice 0's delta the codec models.
_DELTA_KEYS = frozenset({"role", "content", "refusal", "tool_calls", "reasoning_content"})


def _choice_extra(choice: dict[str, Any]) -> dict[str, Any] | None:
    """Choice 0's log probabilities and unknown delta keys (``audio``...) as a choice stub."""
    delta = choice.get("delta")
    more = (
        {k: v for k, v in delta.items() if k not in _DELTA_KEYS and v not in (None, [])}
        # The usual delta holds modelled keys only: one set comparison in C says so.
        if isinstance(delta, dict) and not delta.keys() <= _DELTA_KEYS
        else {}
    )
    logprobs = choice.get("logprobs")
    if not more and not logprobs:
        return None
    stub: dict[str, Any] = {"index": 0, "delta": more}
    if logprobs:
        stub["logprobs"] = logprobs
    stub["finish_reason"] = None
    return stub


def events_from_response(resp: ChatResponse) -> list[StreamEvent]:
    """A complete answer as stream events (for servers that ignore ``stream: true``)."""
    out: list[StreamEvent] = [StreamStart(id=resp.id, model=resp.model, created=resp.created)]
    index = 0
    for part in resp.content:
        if isinstance(part, TextPart):
            out += [BlockStart(index, "text"), TextDelta(index, part.text), BlockStop(index)]
        elif isinstance(part, ToolCallPart):
            out.append(BlockStart(index, "tool_call", tool_call_id=part.id, tool_name=part.name))
            if part.arguments:
                out.append(ToolArgsDelta(index, part.arguments))
            out.append(BlockStop(index))
        elif isinstance(part, ThinkingPart) and part.thinking:
            out.append(BlockStart(index, "thinking"))
            out += [ThinkingDelta(index, part.thinking), BlockStop(index)]
        else:
            continue
        index += 1
    out.append(StreamEnd(resp.finish_reason, resp.usage, resp.stop_sequence))
    return out
