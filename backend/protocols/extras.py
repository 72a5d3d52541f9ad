"""Extras across protocols: what a request carries unmodelled, and where it cannot go.

The IR carries what it does not model as extras (``backend.ir.chat``: ``extra`` dicts and
``Opaque`` items). When the upstream speaks the caller's protocol, its encoder writes them back
verbatim: that is the passthrough. Every other upstream would have to drop them, so
``foreign_extra`` finds the first one and the request is refused with a 400 naming it and the
provider (``model_rules.refusal``; fallback skips such candidates). Top-level request fields are
judged by the per-field tables in ``model_rules`` (some translate, some are documented no-ops);
everything found here (content blocks, tool types, keys of a block, message or tool) has no
translation and is refused.

Some unmodelled keys ask for nothing another provider could miss, and are documented no-ops
there (``NO_OP_KEYS``): what the OpenAI SDK itself leaves on an assistant message a client
echoes back (a streamed tool call's ``index``, ``parse()``'s ``parsed`` copy of the content,
``annotations`` describing the text). They still pass through to the caller's own protocol.

Answers need no such check: an upstream only answers with extras to a request that had them.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.ir.chat import (
    ChatRequest,
    FilePart,
    ImagePart,
    Message,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

#: How a refusal names a modelled object whose ``extra`` holds the field.
_OWNER: dict[type, str] = {
    TextPart: "a text block",
    ImagePart: "an image block",
    FilePart: "a document",
    ToolCallPart: "a tool call",
    ToolResultPart: "a tool result",
    ThinkingPart: "a thinking block",
    Message: "a message",
    Tool: "a tool",
}

#: Unmodelled keys that are documented no-ops on other providers, by caller protocol.
NO_OP_KEYS: dict[str, frozenset[str]] = {
    "openai": frozenset({"index", "parsed", "annotations"}),
}

#: What to call a protocol in an error message.
PROTOCOL_NAMES = {
    "openai": "OpenAI Chat Completions",
    "anthropic": "Anthropic Messages",
    "gemini": "Gemini",
}


@dataclass(frozen=True, slots=True)
class Foreign:
    """One unmodelled thing of the request: ``what`` it is, ``where`` (wire-ish path), param."""

    what: str
    where: str
    param: str


def caller_protocol(req: ChatRequest) -> str:
    """``req.protocol``; for a request built in code without one, inferred from the codec
    bookkeeping (the OpenAI chat codec's ``_openai`` flags), else unknown (""): then no
    upstream is "the same wire" and every extra is refused elsewhere."""
    if req.protocol:
        return req.protocol
    return "openai" if isinstance(req.extra.get("_openai"), dict) else ""


def same_wire(req: ChatRequest, upstream_protocol: str) -> bool:
    """True when the upstream speaks the caller's protocol (extras pass through)."""
    return caller_protocol(req) == upstream_protocol


def foreign_extra(req: ChatRequest) -> Foreign | None:
    """The first extra of ``req`` below the top level (blocks, tools, keys of either), or None.

    Keys starting with ``_`` are codec bookkeeping and never count, nor do ``NO_OP_KEYS``.
    """
    ignored = NO_OP_KEYS.get(caller_protocol(req), frozenset())
    for i, tool in enumerate(req.tools):
        where = f"tools[{i}]"
        if isinstance(tool, Opaque):
            return Foreign(f"tool type '{tool.kind}'", where, "tools")
        found = _keys(tool, where, "tools", ignored)
        if found is not None:
            return found
    for i, text in enumerate(req.system):
        found = _keys(text, f"system[{i}]", "system", ignored)
        if found is not None:
            return found
    for i, msg in enumerate(req.messages):
        where = f"messages[{i}]"
        found = _keys(msg, where, "messages", ignored)
        if found is not None:
            return found
        for j, part in enumerate(msg.parts):
            found = _part(part, f"{where}.content[{j}]", ignored)
            if found is not None:
                return found
    return None


def _part(part: Part, where: str, ignored: frozenset[str]) -> Foreign | None:
    if isinstance(part, Opaque):
        return Foreign(f"content block type '{part.kind}'", where, "messages")
    if isinstance(part, ToolResultPart):
        for k, item in enumerate(part.content):
            found = _part(item, f"{where}.content[{k}]", ignored)
            if found is not None:
                return found
    return _keys(part, where, "messages", ignored)


def _keys(
    obj: Part | Message | Tool, where: str, param: str, ignored: frozenset[str]
) -> Foreign | None:
    extra = getattr(obj, "extra", None)
    if not extra:
        return None
    for key in extra:
        if not key.startswith("_") and key not in ignored:
            return Foreign(f"field '{key}' of {_OWNER.get(type(obj), 'an item')}", where, param)
    return None
