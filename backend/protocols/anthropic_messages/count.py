"""``/v1/messages/count_tokens``: request codec and an estimate for non-Anthropic upstreams.

The estimate is deliberately simple and documented as such: about 4 characters of text per
token (the usual rule of thumb for English and code with Claude/GPT tokenizers), a fixed cost
per image (Anthropic's ``width * height / 750`` for a ~1.15 megapixel image, the size images
are scaled to), and a few tokens of framing per message and per tool. It is meant for context
budgeting by clients such as coding agents, not for billing; real usage comes from the answer.
"""

from __future__ import annotations

from typing import Any

from backend.ir.chat import (
    ChatRequest,
)
from backend.ir.estimate import TokenRates
from backend.ir.estimate import estimate_tokens as _estimate
from backend.protocols.anthropic_messages.decode import decode_count_tokens_request
from backend.protocols.anthropic_messages.encode import encode_request
from backend.protocols.anthropic_messages.vocab import COUNT_TOKENS_FIELDS

ANTHROPIC_RATES = TokenRates(per_message=4, per_image=1600, per_tool=8)

__all__ = [
    "decode_count_tokens_request",
    "encode_count_tokens_request",
    "encode_count_tokens_response",
    "estimate_tokens",
]


def encode_count_tokens_request(req: ChatRequest, model: str) -> dict[str, Any]:
    """The ``count_tokens`` body: a messages body without the generation-only fields."""
    body = encode_request(req, model, stream=False)
    return {k: v for k, v in body.items() if k in COUNT_TOKENS_FIELDS}


def encode_count_tokens_response(input_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens}


def estimate_tokens(req: ChatRequest) -> int:
    """A rough input-token count of ``req`` (see the module docstring for the rule)."""
    return _estimate(req, ANTHROPIC_RATES)
