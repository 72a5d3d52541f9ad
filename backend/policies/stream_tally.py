"""What a streamed answer relayed: its text for the log (bounded) and its size for billing.

A stream cut short, by the client hanging up or by the upstream (connection dropped, protocol
error), never gets the provider's final usage (OpenAI sends it in the last chunk, Anthropic counts
output in ``message_delta``), yet the provider bills what it generated. ``abandoned_usage`` bills
it from what the gateway saw: the input tokens the provider reported
(else the request's estimate) and the output reported so far, or the text relayed at about 4
characters per token when that is more. Anything estimated is said so in the log row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from backend.data.log_record import MAX_BODY_CHARS, clip_body
from backend.ir.chat import ChatRequest, Usage
from backend.ir.estimate import TokenRates, estimate_tokens
from backend.ir.stream import StreamEvent, TextDelta, ThinkingDelta, ToolArgsDelta

#: Output text per token when counting a cut stream (the same rule as input estimates).
CHARS_PER_TOKEN = TokenRates().chars_per_token


@dataclass(slots=True)
class StreamTally:
    """Characters of generated text seen, and the first ``MAX_BODY_CHARS`` of it for the log.

    The log copy is capped as it is collected: a client that leaves a long stream (or a stream
    that never ends) cannot grow the request's memory or its log row without bound.
    """

    keep_text: bool
    chars: int = 0
    kept: int = 0
    parts: list[str] = field(default_factory=list)

    def feed(self, ev: StreamEvent) -> None:
        if isinstance(ev, TextDelta):
            text = ev.text
        elif isinstance(ev, ToolArgsDelta):
            text = ev.partial_json
        elif isinstance(ev, ThinkingDelta):
            text = ev.thinking
        else:
            return
        self.chars += len(text)
        if self.keep_text and self.kept <= MAX_BODY_CHARS:
            self.parts.append(text)
            self.kept += len(text)

    def body(self) -> str | None:
        if not self.keep_text:
            return None
        return clip_body("".join(self.parts))


CLIENT_CLOSED = "The client closed the connection before the end of the stream"
UPSTREAM_CUT = "The upstream cut the stream short"


@dataclass(frozen=True, slots=True)
class Billed:
    usage: Usage
    input_estimated: bool
    output_estimated: bool

    def note(self, chars: int, cause: str = CLIENT_CLOSED) -> str:
        """What the log row says about this bill; ``cause`` says why the stream stopped."""
        parts = []
        if self.input_estimated:
            parts.append("input tokens estimated from the request")
        if self.output_estimated:
            parts.append(
                f"output tokens estimated from the {chars} characters relayed "
                f"(~{CHARS_PER_TOKEN} per token)"
            )
        how = "; ".join(parts) if parts else "tokens as reported by the provider"
        return f"{cause}: billed the input and the output produced so far ({how})."


def abandoned_usage(reported: Usage, req: ChatRequest, chars: int) -> Billed:
    """Usage to bill for a stream cut short (see the module docstring)."""
    input_estimated = reported.input_tokens <= 0
    input_tokens = estimate_tokens(req) if input_estimated else reported.input_tokens
    from_text = math.ceil(chars / CHARS_PER_TOKEN)
    output_estimated = from_text > reported.output_tokens
    return Billed(
        Usage(
            input_tokens=input_tokens,
            output_tokens=max(reported.output_tokens, from_text),
            cached_tokens=0 if input_estimated else reported.cached_tokens,
            cache_write_tokens=0 if input_estimated else reported.cache_write_tokens,
            # Searches the provider ran before the cut are billed by it all the same.
            web_search_requests=reported.web_search_requests,
        ),
        input_estimated,
        output_estimated,
    )
