"""Input-token estimates for a request, where no provider count is at hand.

About 4 characters per token over every text a request carries, plus fixed costs per message,
image and tool that differ by provider (their ``TokenRates``). Used for budget reservations and
for counting on upstreams without a count endpoint; billing always uses the provider's usage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson

from backend.ir.chat import (
    ChatRequest,
    FilePart,
    ImagePart,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)


@dataclass(frozen=True, slots=True)
class TokenRates:
    chars_per_token: int = 4
    per_message: int = 4
    per_image: int = 765
    per_tool: int = 0
    #: Tokens every request costs (reply priming, a system message's framing...).
    fixed: int = 0
    #: Framing of the system prompt, when there is one.
    per_system: int = 0


def _part(part: Part, rates: TokenRates) -> tuple[int, int]:
    """(characters, fixed tokens) of one part."""
    if isinstance(part, TextPart):
        return len(part.text), 0
    if isinstance(part, ImagePart):
        return 0, rates.per_image
    if isinstance(part, ToolCallPart):
        return len(part.name) + len(part.arguments), 0
    if isinstance(part, ToolResultPart):
        chars = tokens = 0
        for inner in part.content:
            c, t = _part(inner, rates)
            chars, tokens = chars + c, tokens + t
        return chars, tokens
    if isinstance(part, ThinkingPart):
        return len(part.thinking), 0
    if isinstance(part, FilePart):
        # A text document's characters; base64 data over-estimates a PDF's tokens, which is
        # the safe side for a reservation (as for an unmodelled document below).
        return len(part.text or part.data or part.url or part.file_id or ""), 0
    if isinstance(part, Opaque):
        # Unmodelled (a document, a server-tool result): its JSON size, an over-estimate for
        # base64 payloads, which is the safe side for a reservation.
        return len(orjson.dumps(part.data)), 0
    return 0, 0


def estimate_tokens(req: ChatRequest, rates: TokenRates = TokenRates()) -> int:
    chars = sum(len(p.text) for p in req.system)
    tokens = rates.fixed + (rates.per_system if req.system else 0)
    for message in req.messages:
        tokens += rates.per_message
        for part in message.parts:
            c, t = _part(part, rates)
            chars, tokens = chars + c, tokens + t
    for tool in req.tools:
        tokens += rates.per_tool
        if isinstance(tool, Opaque):
            chars += len(orjson.dumps(tool.data))
            continue
        chars += len(tool.name) + len(tool.description or "") + len(orjson.dumps(tool.parameters))
    if req.response_format is not None:
        chars += len(orjson.dumps(req.response_format))
    return max(1, tokens + math.ceil(chars / rates.chars_per_token))
