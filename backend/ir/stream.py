"""Canonical stream events: the one vocabulary streamed answers are translated through.

A provider's stream decoder turns upstream chunks into these events; a client stream encoder turns
them into the client's wire format. Order of a well-formed stream::

    StreamStart
    ( BlockStart (TextDelta | ToolArgsDelta | ThinkingDelta)* BlockStop )*
    StreamEnd

Blocks are numbered from 0 in the order they start (the Anthropic content-block model); at most
one block is open at a time. Decoders for protocols without explicit block lifecycle (OpenAI,
Gemini, Ollama) synthesize ``BlockStart``/``BlockStop`` so encoders never have to guess.
A ``StreamError`` may replace ``StreamEnd`` when the upstream fails mid-stream.

Extras (see ``backend.ir.chat``): a block the IR does not model is
``BlockStart(kind="opaque", opaque=...)`` (its wire start, verbatim) followed by ``OpaqueEvent``s
(its wire deltas) and ``BlockStop``; an ``OpaqueEvent`` with an ``index`` of a modelled block is
an unmodelled delta of that block (Anthropic ``citations_delta``), one with ``index=None``
belongs to the whole answer (OpenAI choices after the first and log probabilities).
``StreamStart.opaque`` / ``StreamEnd.opaque`` carry the answer-level fields known at the start
and the end (Anthropic ``message_start`` / ``message_delta`` extras). Only a client encoder of
``opaque.protocol`` writes any of them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from backend.ir.chat import FinishReason, Opaque, Usage
from backend.ir.errors import GatewayError


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str
    #: Provisional usage known at start (Anthropic sends input tokens here).
    usage: Usage | None = None
    created: int = 0
    #: Answer-level extras known at the start (Anthropic ``message_start`` fields), verbatim;
    #: not part of the event's equality (the IR meaning), so compare it explicitly.
    opaque: Opaque | None = field(default=None, compare=False)


@dataclass(slots=True)
class BlockStart:
    index: int
    kind: Literal["text", "tool_call", "thinking", "redacted_thinking", "opaque"]
    #: For ``tool_call`` blocks.
    tool_call_id: str | None = None
    tool_name: str | None = None
    #: For ``redacted_thinking`` blocks.
    data: str | None = None
    #: ``opaque`` blocks: the wire block's start, verbatim; other kinds: the start's keys the
    #: IR does not model (None when there are none).
    opaque: Opaque | None = None


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(slots=True)
class ToolArgsDelta:
    index: int
    #: A fragment of the tool call's JSON arguments text.
    partial_json: str


@dataclass(slots=True)
class ThinkingDelta:
    index: int
    thinking: str = ""
    signature: str | None = None


@dataclass(slots=True)
class OpaqueEvent:
    """Stream content the IR does not model, for a client of ``opaque.protocol`` only.

    ``index``: the IR block it belongs to; None: the answer as a whole.
    """

    index: int | None
    opaque: Opaque


@dataclass(slots=True)
class BlockStop:
    index: int


@dataclass(slots=True)
class StreamEnd:
    finish_reason: FinishReason
    usage: Usage
    stop_sequence: str | None = None
    #: Answer-level extras known at the end (Anthropic ``message_delta`` fields, an OpenAI
    #: usage object), verbatim; not part of the event's equality, as for ``StreamStart``.
    opaque: Opaque | None = field(default=None, compare=False)


@dataclass(slots=True)
class StreamError:
    error: GatewayError


StreamEvent = (
    StreamStart
    | BlockStart
    | TextDelta
    | ToolArgsDelta
    | ThinkingDelta
    | OpaqueEvent
    | BlockStop
    | StreamEnd
    | StreamError
)
