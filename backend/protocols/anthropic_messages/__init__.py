"""The Anthropic Messages wire format (``/v1/messages``), both directions.

Inbound (a client speaks Anthropic to the gateway): ``decode_request``, ``encode_response``,
``StreamEncoder``, ``encode_error``, ``decode_count_tokens_request``.
Outbound (the gateway speaks Anthropic to a provider): ``encode_request``, ``decode_response``,
``StreamDecoder``, ``decode_error``, ``encode_count_tokens_request``.
``estimate_tokens`` answers ``count_tokens`` for upstreams that cannot count.

All functions are pure; the provider adapter (``backend.providers.anthropic``) does the I/O.
"""

from backend.protocols.anthropic_messages.count import (
    decode_count_tokens_request,
    encode_count_tokens_request,
    encode_count_tokens_response,
    estimate_tokens,
)
from backend.protocols.anthropic_messages.decode import decode_request, decode_response
from backend.protocols.anthropic_messages.encode import encode_request, encode_response
from backend.protocols.anthropic_messages.errors import decode_error, encode_error
from backend.protocols.anthropic_messages.stream import StreamDecoder, StreamEncoder

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "decode_count_tokens_request",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_count_tokens_request",
    "encode_count_tokens_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "estimate_tokens",
]
