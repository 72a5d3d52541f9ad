"""The OpenAI Responses wire format (``/v1/responses``), both directions.

Inbound (a client speaks Responses to the gateway)::

    decode_request(body, headers, prior=None) -> ChatRequest     strict -> InvalidRequest(param=)
    input_items(body["input"]) -> list[dict]                    what the store keeps
    new_response_id() -> "resp_..."
    encode_response(resp, req, response_id=, created_at=) -> dict (the ``response`` object)
    StreamEncoder(req, response_id=, created_at=).encode(event) -> bytes (SSE); ``.final``
    encode_error(err) -> (status, body)                          OpenAI's error format

Outbound (the gateway speaks Responses to OpenAI's own API)::

    encode_request(req, model, stream=) -> dict
    decode_response(body) -> ChatResponse
    StreamDecoder().feed(sse_event) / .close() -> list[StreamEvent]

Which provider gets what: ``rules`` (OpenAI's Responses API gets everything; elsewhere hosted
tools, files and OpenAI-only fields are refused by name). Flags and signatures: ``vocab``.
"""

from backend.protocols.openai_chat.errors import encode_error
from backend.protocols.openai_responses.decode import decode_request, decode_response
from backend.protocols.openai_responses.encode import encode_request, encode_response
from backend.protocols.openai_responses.items import input_items
from backend.protocols.openai_responses.rules import (
    is_responses_request,
    responses_refusal,
    uses_responses_api,
)
from backend.protocols.openai_responses.stream import StreamEncoder
from backend.protocols.openai_responses.stream_decode import StreamDecoder
from backend.protocols.openai_responses.vocab import FLAGS_KEY, new_response_id

__all__ = [
    "FLAGS_KEY",
    "StreamDecoder",
    "StreamEncoder",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "input_items",
    "is_responses_request",
    "new_response_id",
    "responses_refusal",
    "uses_responses_api",
]
