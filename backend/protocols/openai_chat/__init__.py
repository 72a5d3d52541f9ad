"""The OpenAI chat completions wire format (``/v1/chat/completions``, ``/v1/embeddings``).

One codec, both directions (pure functions, no I/O):

Inbound, a client speaks OpenAI to the gateway::

    decode_request(body) -> ChatRequest            strict validation -> InvalidRequest(param=...)
    encode_response(resp, model) -> dict
    StreamEncoder(model, include_usage).encode(event) -> bytes (SSE)
    encode_error(err) -> (status, body)
    decode_embedding_request(body) / encode_embedding_response(resp, model, encoding_format=)

Outbound, the gateway speaks OpenAI to a provider::

    encode_request(req, model, stream=) -> dict
    decode_response(body) -> ChatResponse         malformed 200 -> UpstreamError
    StreamDecoder().feed(sse_event) / .close() -> list[StreamEvent]
    decode_error(status, body) -> GatewayError
    encode_embedding_request(req, model) / decode_embedding_response(body)
    estimate_tokens(req) -> int                   OpenAI has no count endpoint: an estimate

Usage maps ``prompt_tokens`` <-> ``input_tokens``, ``completion_tokens`` <-> ``output_tokens``,
``prompt_tokens_details.cached_tokens`` <-> ``cached_tokens`` (and ``cache_write_tokens``).
Wire details the IR cannot hold ride in ``ChatRequest.extra["_openai"]`` (see ``vocab``).
"""

from backend.protocols.openai_chat.answer import decode_response
from backend.protocols.openai_chat.decode import decode_request
from backend.protocols.openai_chat.embeddings import (
    decode_embedding_request,
    decode_embedding_response,
    encode_embedding_request,
    encode_embedding_response,
)
from backend.protocols.openai_chat.encode import encode_request, encode_response
from backend.protocols.openai_chat.errors import decode_error, encode_error, error_object
from backend.protocols.openai_chat.stream import (
    StreamDecoder,
    StreamEncoder,
    events_from_response,
)
from backend.protocols.openai_chat.tokens import estimate_tokens
from backend.protocols.openai_chat.vocab import EXTRA_PARAMS, FLAGS_KEY

__all__ = [
    "EXTRA_PARAMS",
    "FLAGS_KEY",
    "StreamDecoder",
    "StreamEncoder",
    "decode_embedding_request",
    "decode_embedding_response",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_embedding_request",
    "encode_embedding_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "error_object",
    "estimate_tokens",
    "events_from_response",
]
