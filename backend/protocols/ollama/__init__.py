"""Ollama native wire format (``/api/chat`` NDJSON, ``/api/embed``, ``/api/tags``), outbound only.

Clients never speak it to the gateway; the gateway speaks it to a local or remote Ollama. See
each module's docstring for the mapping choices (``encode``, ``decode``, ``stream``, ``errors``).
"""

from backend.protocols.ollama.decode import (
    decode_embedding_response,
    decode_response,
    decode_tags,
)
from backend.protocols.ollama.encode import encode_embedding_request, encode_request
from backend.protocols.ollama.errors import decode_error
from backend.protocols.ollama.stream import StreamDecoder

__all__ = [
    "StreamDecoder",
    "decode_embedding_response",
    "decode_error",
    "decode_response",
    "decode_tags",
    "encode_embedding_request",
    "encode_request",
]
