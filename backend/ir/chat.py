"""The canonical chat IR: what every wire format decodes into and encodes from.

Pure data, no I/O. A codec for a wire format (``backend.protocols.*``) maps its JSON to these
dataclasses and back; providers and policies only ever see these types.

Roles: ``system`` text lives in ``ChatRequest.system`` (Anthropic keeps it apart; OpenAI
``system``/``developer`` messages are lifted into it when they come first, otherwise kept as
``Message(role="system")`` in place). Tool results are ``ToolResultPart`` inside a ``user``-role
message in the IR, whatever the protocol does on the wire (OpenAI uses ``role: tool``).

Extras: what the IR does not model still travels (issue 14, "same wire in and out is a
passthrough"). Two shapes, one rule:

- ``extra`` (a dict on ``ChatRequest``, ``ChatResponse``, ``Message``, ``Tool`` and every part):
  the wire object's keys the IR has no field for, verbatim (Anthropic ``citations`` on a text
  block, an unknown top-level request field, OpenAI ``audio`` on an assistant message...). Keys
  starting with ``_`` are codec bookkeeping, never sent as fields.
- ``Opaque`` (a part, a tool, a tool result item, an answer part; ``BlockStart(kind="opaque")``
  and ``OpaqueEvent`` in streams): a whole wire item the IR has no class for (an Anthropic
  ``document`` block or ``web_search_20250305`` server tool, a ``server_tool_use`` answer block),
  its JSON verbatim, tagged with its ``protocol``.

The rule: extras belong to one protocol (``ChatRequest.protocol`` / ``ChatResponse.protocol``
for ``extra`` dicts, ``Opaque.protocol`` for opaque items). An encoder of that same protocol
writes them back unchanged, in place; an encoder of another protocol never sees them, because
``model_rules.refusal`` refuses such a request with a 400 naming the field and the provider
(unless its table says the field translates or is a documented no-op), and fallback skips the
candidates that would need it. Policies still run: DLP redacts the text inside extras
(``dlp.fields`` walks them) and restores it in answers; usage comes from the modelled fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]

#: Canonical finish reasons. Codecs map their own vocabulary onto these.
FinishReason = Literal["stop", "length", "tool_calls", "stop_sequence", "content_filter", "error"]


#: The wire formats, as ``protocol`` tags: codec package names (``openai_chat`` is ``"openai"``).
PROTOCOL_OPENAI = "openai"
PROTOCOL_ANTHROPIC = "anthropic"

#: Unmodelled keys of a wire object, verbatim (see the module docstring).
Extra = dict[str, Any]


@dataclass(slots=True)
class Opaque:
    """A wire item the IR does not model, kept verbatim for its own protocol.

    ``data`` is the item's JSON exactly as the client (request) or upstream (answer) sent it;
    refusals name it by ``data["type"]``. Only an encoder of ``protocol`` ever writes it out.
    """

    protocol: str
    data: dict[str, Any]
    type: Literal["opaque"] = "opaque"

    @property
    def kind(self) -> str:
        """The wire item's own ``type`` (``"document"``, ``"web_search_20250305"``...); for
        Gemini's items, which have none, the key naming what they are (``"inlineData"``,
        ``"googleSearch"``, ``"executableCode"``)."""
        kind = self.data.get("type")
        if isinstance(kind, str):
            return kind
        keys = [k for k in self.data if k not in _GEMINI_PART_META]
        return str(keys[0]) if keys else "unknown"


#: Keys a Gemini part may carry beside the one that says what it is.
_GEMINI_PART_META = frozenset(
    {"thought", "thoughtSignature", "mediaResolution", "partMetadata", "videoMetadata"}
)


@dataclass(slots=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"
    extra: Extra | None = None


@dataclass(slots=True)
class ImagePart:
    """An image by URL (``url``) or inline base64 (``data`` + ``media_type``)."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None
    type: Literal["image"] = "image"
    extra: Extra | None = None


@dataclass(slots=True)
class FilePart:
    """A document the model reads (a PDF, a text file...), however the client gave it.

    One source: ``data`` (base64 bytes) with ``media_type``; ``text`` (a text document's content,
    decoded, so DLP reads it as text) with ``media_type`` (``text/plain``...); ``url`` (the
    provider fetches it; ``media_type`` when known); ``file_id`` (a file stored at the provider:
    OpenAI's Files API, so only an OpenAI upstream can read it). ``filename`` names it where the
    client did (OpenAI ``filename``, Anthropic ``title``). Codecs: ``backend.protocols.files``.
    """

    data: str | None = None
    text: str | None = None
    media_type: str | None = None
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    type: Literal["file"] = "file"
    extra: Extra | None = None


@dataclass(slots=True)
class ToolCallPart:
    """A call the assistant made. ``arguments`` is the JSON text, as the model produced it."""

    id: str
    name: str
    arguments: str
    type: Literal["tool_call"] = "tool_call"
    extra: Extra | None = None


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    content: list[TextPart | ImagePart | Opaque]
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"
    extra: Extra | None = None


@dataclass(slots=True)
class ThinkingPart:
    """Anthropic extended thinking, kept opaque so it round-trips to Anthropic intact.

    ``redacted_data`` is set for ``redacted_thinking`` blocks; other providers drop these parts.
    """

    thinking: str = ""
    signature: str | None = None
    redacted_data: str | None = None
    type: Literal["thinking"] = "thinking"
    extra: Extra | None = None


Part = TextPart | ImagePart | FilePart | ToolCallPart | ToolResultPart | ThinkingPart | Opaque


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part]
    name: str | None = None
    extra: Extra | None = None

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None
    parameters: dict[str, Any]
    extra: Extra | None = None


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
    #: Function tools, and the protocol's other tool types (server tools) as ``Opaque``.
    tools: list[Tool | Opaque] = field(default_factory=list)
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
    #: Top-level fields of ``protocol`` with no IR meaning, verbatim (see the module docstring).
    extra: dict[str, Any] = field(default_factory=dict)
    #: Headers worth forwarding to an upstream of the same protocol (``anthropic-beta``...).
    forward_headers: dict[str, str] = field(default_factory=dict)
    #: The caller's wire format (``PROTOCOL_*``); "" for a request built in code.
    protocol: str = ""


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
    #: Web searches a server tool ran, billed per search beside the tokens (Anthropic's
    #: ``usage.server_tool_use.web_search_requests``).
    web_search_requests: int = 0

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
    #: The upstream's wire format (``PROTOCOL_*``): whose ``extra`` dicts these are.
    protocol: str = ""


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    input: list[str] | list[list[int]]
    dimensions: int | None = None
    encoding_format: str | None = None
    user: str | None = None
    #: Unmodelled fields of the caller's protocol (Gemini ``taskType``/``title``), for an
    #: upstream of that protocol only (``protocol``); others refuse them.
    extra: dict[str, Any] = field(default_factory=dict)
    protocol: str = ""


@dataclass(slots=True)
class EmbeddingResponse:
    model: str
    vectors: list[list[float]]
    usage: Usage
