"""A token *estimate* for OpenAI-format upstreams, which have no counting endpoint.

About 4 characters per token for English text with OpenAI's tokenizers, plus the few tokens of
framing each message costs. It is an estimate for budget reservation and the count-tokens
endpoint, not a bill: billing always uses the usage the upstream reports.
"""

from __future__ import annotations

from backend.ir.chat import ChatRequest
from backend.ir.estimate import TokenRates
from backend.ir.estimate import estimate_tokens as _estimate

#: ~4 characters per token; a high-detail image is ~4 tiles of 512px (85 + 170 per tile);
#: each message costs a few tokens of framing, and the reply is primed with 3.
OPENAI_RATES = TokenRates(per_message=4, per_image=765, fixed=3, per_system=4)


def estimate_tokens(req: ChatRequest) -> int:
    """Estimated input tokens of ``req`` (about 4 characters per token; see module doc)."""
    return _estimate(req, OPENAI_RATES)
