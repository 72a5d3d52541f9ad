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
from backend.protocols.gemini import answer as gemini_answer
from backend.protocols.gemini import inbound as gemini_inbound
from backend.protocols.gemini import inbound_stream as gemini_stream


@dataclass(frozen=True, slots=True)
class InboundCodec:
    name: str
    decode_request: Callable[[Any, Mapping[str, str]], ChatRequest]
    encode_response: Callable[[ChatResponse, str], dict[str, Any]]
    encode_error: Callable[[GatewayError], tuple[int, dict[str, Any]]]
    new_stream_encoder: Callable[[ChatRequest], Any]
    #: Content type of a streamed answer (Gemini without ``alt=sse`` streams a JSON array).
    stream_media_type: str = "text/event-stream"
    #: The model the request names outside its body (the Gemini door's URL path), so a body
    #: that fails to read or decode is still logged with it; None: the body's ``model``.
    requested_model: str | None = None

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


def gemini_codec(model: str, *, stream: bool, sse: bool) -> InboundCodec:
    """The Gemini door for one request: the model and streaming come from the URL
    (``models/{model}:streamGenerateContent``), the framing from ``alt=sse``."""
    # Whether the client asked for thoughts, read by the answer encoders; set by decode. One
    # codec per request, so this is request state, never shared.
    asked: dict[str, bool] = {}

    def decode(body: Any, _headers: Mapping[str, str]) -> ChatRequest:
        req = gemini_inbound.decode_request(body, model, stream=stream)
        asked["thoughts"] = gemini_inbound.include_thoughts(req)
        return req

    return InboundCodec(
        name="gemini",
        decode_request=decode,
        encode_response=lambda resp, name: gemini_answer.encode_response(
            resp, name, asked.get("thoughts", False)
        ),
        encode_error=gemini_answer.encode_error,
        new_stream_encoder=lambda req: gemini_stream.StreamEncoder(
            req.model, sse=sse, include_thoughts=gemini_inbound.include_thoughts(req)
        ),
        stream_media_type="text/event-stream" if sse else "application/json",
        requested_model=model or None,
    )


#: Gemini-format errors for the Gemini door's other methods (count, embed, models).
GEMINI = gemini_codec("", stream=False, sse=True)
