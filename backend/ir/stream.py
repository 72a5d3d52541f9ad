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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backend.ir.chat import FinishReason, Usage
from backend.ir.errors import GatewayError


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str
    #: Provisional usage known at start (Anthropic sends input tokens here).
    usage: Usage | None = None
    created: int = 0


@dataclass(slots=True)
class BlockStart:
    index: int
    kind: Literal["text", "tool_call", "thinking", "redacted_thinking"]
    #: For ``tool_call`` blocks.
    tool_call_id: str | None = None
    tool_name: str | None = None
    #: For ``redacted_thinking`` blocks.
    data: str | None = None


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
class BlockStop:
    index: int


@dataclass(slots=True)
class StreamEnd:
    finish_reason: FinishReason
    usage: Usage
    stop_sequence: str | None = None


@dataclass(slots=True)
class StreamError:
    error: GatewayError


StreamEvent = (
    StreamStart
    | BlockStart
    | TextDelta
    | ToolArgsDelta
    | ThinkingDelta
    | BlockStop
    | StreamEnd
    | StreamError
)
