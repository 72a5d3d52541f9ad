"""The canonical chat IR: what every wire format decodes into and encodes from.

Pure data, no I/O. A codec for a wire format (``backend.protocols.*``) maps its JSON to these
dataclasses and back; providers and policies only ever see these types.

Roles: ``system`` text lives in ``ChatRequest.system`` (Anthropic keeps it apart; OpenAI
``system``/``developer`` messages are lifted into it when they come first, otherwise kept as
``Message(role="system")`` in place). Tool results are ``ToolResultPart`` inside a ``user``-role
message in the IR, whatever the protocol does on the wire (OpenAI uses ``role: tool``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]

#: Canonical finish reasons. Codecs map their own vocabulary onto these.
FinishReason = Literal["stop", "length", "tool_calls", "stop_sequence", "content_filter", "error"]


@dataclass(slots=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ImagePart:
    """An image by URL (``url``) or inline base64 (``data`` + ``media_type``)."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None
    type: Literal["image"] = "image"


@dataclass(slots=True)
class ToolCallPart:
    """A call the assistant made. ``arguments`` is the JSON text, as the model produced it."""

    id: str
    name: str
    arguments: str
    type: Literal["tool_call"] = "tool_call"


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    content: list[TextPart | ImagePart]
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ThinkingPart:
    """Anthropic extended thinking, kept opaque so it round-trips to Anthropic intact.

    ``redacted_data`` is set for ``redacted_thinking`` blocks; other providers drop these parts.
    """

    thinking: str = ""
    signature: str | None = None
    redacted_data: str | None = None
    type: Literal["thinking"] = "thinking"


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part]
    name: str | None = None

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None
    parameters: dict[str, Any]


@dataclass(slots=True)
class ToolChoice:
    """``auto`` | ``none`` | ``required`` (any tool) | ``tool`` (the one named)."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


@dataclass(slots=True)
class Reasoning:
    """How hard the model should think, in the client's own terms.

    ``effort`` is OpenAI's vocabulary (``none``, ``minimal``, ``low``, ``medium``, ``high``,
    ``xhigh``, ``max``; Anthropic ``output_config.effort`` uses the same words);
    ``budget_tokens`` is Anthropic's / Gemini's. A decoder sets what its client said; encoders
    derive the other through ``model_rules.reasoning_budget`` / ``reasoning_effort``.
    """

    effort: str | None = None
    budget_tokens: int | None = None


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message]
    system: list[TextPart] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    #: OpenAI ``response_format`` object, verbatim (``{"type": "json_schema", ...}``).
    response_format: dict[str, Any] | None = None
    user: str | None = None
    #: Anthropic ``thinking`` config, verbatim; only Anthropic upstreams receive it.
    thinking: dict[str, Any] | None = None
    #: The reasoning asked for, whichever protocol asked (``reasoning_effort``, ``thinking``).
    reasoning: Reasoning | None = None
    #: Anthropic ``metadata`` / OpenAI ``metadata``; passed where the upstream speaks the same.
    metadata: dict[str, Any] | None = None
    #: Protocol-specific fields that have no IR meaning, forwarded only to the same protocol.
    extra: dict[str, Any] = field(default_factory=dict)
    #: Headers worth forwarding to an upstream of the same protocol (``anthropic-beta``...).
    forward_headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    #: Input tokens served from the provider's prompt cache (a subset of ``input_tokens``).
    cached_tokens: int = 0
    #: Input tokens written to the provider's prompt cache (Anthropic), a subset of input.
    cache_write_tokens: int = 0
    #: Output tokens the model spent reasoning, a subset of output (where the provider says:
    #: OpenAI's ``reasoning_tokens``, Gemini's ``thoughtsTokenCount``; Anthropic does not).
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str
    content: list[Part]
    finish_reason: FinishReason
    usage: Usage
    stop_sequence: str | None = None
    created: int = 0
    #: Answer parts with no IR meaning, kept verbatim for a client of the upstream's own protocol
    #: (OpenAI: ``logprobs`` of the first choice and the further ``choices`` of ``n > 1``).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    input: list[str] | list[list[int]]
    dimensions: int | None = None
    encoding_format: str | None = None
    user: str | None = None


@dataclass(slots=True)
class EmbeddingResponse:
    model: str
    vectors: list[list[float]]
    usage: Usage
