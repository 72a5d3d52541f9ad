"""A token *estimate* for OpenAI-format upstreams, which have no counting endpoint.

About 4 characters per token for English text with OpenAI's tokenizers, plus the few tokens of
framing each message costs. It is an estimate for budget reservation and the count-tokens
endpoint, not a bill: billing always uses the usage the upstream reports.
"""

from __future__ import annotations

import math

import orjson

from backend.ir.chat import (
    ChatRequest,
    ImagePart,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
#: OpenAI bills a high-detail image by 512px tiles (85 + 170 per tile); a typical image is ~4 tiles.
TOKENS_PER_IMAGE = 765
TOKENS_PER_LOW_DETAIL_IMAGE = 85
REPLY_PRIMING_TOKENS = 3


def _image_tokens(part: ImagePart) -> int:
    return TOKENS_PER_LOW_DETAIL_IMAGE if part.detail == "low" else TOKENS_PER_IMAGE


def _part_cost(part: Part) -> tuple[int, int]:
    """(characters, fixed tokens) of one part."""
    if isinstance(part, TextPart):
        return len(part.text), 0
    if isinstance(part, ImagePart):
        return 0, _image_tokens(part)
    if isinstance(part, ToolCallPart):
        return len(part.name) + len(part.arguments), TOKENS_PER_MESSAGE
    if isinstance(part, ToolResultPart):
        chars, fixed = 0, TOKENS_PER_MESSAGE
        for inner in part.content:
            c, f = _part_cost(inner)
            chars, fixed = chars + c, fixed + f
        return chars, fixed
    if isinstance(part, ThinkingPart):
        return len(part.thinking), 0
    return 0, 0


def estimate_tokens(req: ChatRequest) -> int:
    """Estimated input tokens of ``req`` (about 4 characters per token; see module doc)."""
    chars = sum(len(p.text) for p in req.system)
    fixed = REPLY_PRIMING_TOKENS + (TOKENS_PER_MESSAGE if req.system else 0)
    for message in req.messages:
        fixed += TOKENS_PER_MESSAGE
        for part in message.parts:
            c, f = _part_cost(part)
            chars, fixed = chars + c, fixed + f
    for tool in req.tools:
        chars += len(tool.name) + len(tool.description or "") + len(orjson.dumps(tool.parameters))
    if req.response_format is not None:
        chars += len(orjson.dumps(req.response_format))
    return fixed + math.ceil(chars / CHARS_PER_TOKEN)
