"""Google Gemini wire format (``generateContent`` / ``streamGenerateContent``), outbound only.

Clients never speak Gemini to the gateway; the gateway speaks it to Google. See each module's
docstring for the mapping choices (``encode``, ``decode``, ``stream``, ``errors``, ``schema``,
``toolids``).
"""

from backend.protocols.gemini.decode import (
    decode_count_tokens,
    decode_embedding_response,
    decode_response,
)
from backend.protocols.gemini.encode import (
    encode_count_tokens_request,
    encode_embedding_request,
    encode_request,
    model_path,
)
from backend.protocols.gemini.errors import decode_error
from backend.protocols.gemini.stream import StreamDecoder

__all__ = [
    "StreamDecoder",
    "decode_count_tokens",
    "decode_embedding_response",
    "decode_error",
    "decode_response",
    "encode_count_tokens_request",
    "encode_embedding_request",
    "encode_request",
    "model_path",
]
