"""The inbound protocols the proxy speaks, as one small bundle each.

Adding an inbound protocol means adding an ``InboundCodec`` here and a route in ``routes.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from backend.ir.chat import ChatRequest, ChatResponse
from backend.ir.errors import GatewayError
from backend.ir.stream import StreamEvent
from backend.protocols import anthropic_messages, openai_chat


@dataclass(frozen=True, slots=True)
class InboundCodec:
    name: str
    decode_request: Callable[[Any, Mapping[str, str]], ChatRequest]
    encode_response: Callable[[ChatResponse, str], dict[str, Any]]
    encode_error: Callable[[GatewayError], tuple[int, dict[str, Any]]]
    new_stream_encoder: Callable[[ChatRequest], Any]

    async def encode_stream(
        self, events: AsyncIterator[StreamEvent], req: ChatRequest
    ) -> AsyncIterator[bytes]:
        encoder = self.new_stream_encoder(req)
        try:
            async for ev in events:
                chunk = encoder.encode(ev)
                if chunk:
                    yield chunk
        finally:
            # Close the pipeline's generator now (settle, log, cancel upstream), not at GC time.
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()


OPENAI = InboundCodec(
    name="openai",
    decode_request=lambda body, _headers: openai_chat.decode_request(body),
    encode_response=openai_chat.encode_response,
    encode_error=openai_chat.encode_error,
    new_stream_encoder=lambda req: openai_chat.StreamEncoder(req.model, req.include_usage),
)

ANTHROPIC = InboundCodec(
    name="anthropic",
    decode_request=anthropic_messages.decode_request,
    encode_response=anthropic_messages.encode_response,
    encode_error=anthropic_messages.encode_error,
    new_stream_encoder=lambda req: anthropic_messages.StreamEncoder(req.model),
)
