"""OpenAI ``/v1/embeddings`` in both directions.

``encoding_format: "base64"`` is what the official SDK asks for by default (it decodes the
vectors itself): each vector is the base64 of its little-endian float32 array.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any

from backend.ir.chat import EmbeddingRequest, EmbeddingResponse
from backend.ir.errors import UpstreamError
from backend.protocols.openai_chat.validate import (
    as_list,
    as_str,
    bad_type,
    fail,
    need,
    opt_int,
    opt_str,
)
from backend.protocols.openai_chat.vocab import usage_from_wire

_FORMATS = ("float", "base64")


def _floats_to_base64(values: list[float]) -> str:
    arr = array("f", values)
    if sys.byteorder == "big":
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")


def _base64_to_floats(text: str) -> list[float]:
    arr = array("f")
    arr.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":
        arr.byteswap()
    return arr.tolist()


# -- inbound ---------------------------------------------------------------------------------------
def decode_embedding_request(body: Any) -> EmbeddingRequest:
    if not isinstance(body, dict):
        fail("The request body must be a JSON object.", None)
    model = as_str(need(body, "model", "model"), "model")
    if not model.strip():
        fail("Invalid 'model': must not be empty.", "model")
    encoding_format = opt_str(body, "encoding_format")
    if encoding_format is not None and encoding_format not in _FORMATS:
        fail(
            f"Invalid value for 'encoding_format': {encoding_format!r}. Supported values are: "
            "'float' and 'base64'.",
            "encoding_format",
        )
    return EmbeddingRequest(
        model=model,
        input=_decode_input(need(body, "input", "input")),
        dimensions=opt_int(body, "dimensions", minimum=1),
        encoding_format=encoding_format,
        user=opt_str(body, "user"),
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _decode_input(value: Any) -> list[str] | list[list[int]]:
    """A string, strings, one token array, or token arrays."""
    if isinstance(value, str):
        if not value:
            fail("Invalid 'input': string must not be empty.", "input")
        return [value]
    items = as_list(value, "input")
    if not items:
        fail("Invalid 'input': empty array. Expected at least one input.", "input")
    if all(isinstance(v, str) for v in items):
        if any(not v for v in items):
            fail("Invalid 'input': strings must not be empty.", "input")
        return list(items)
    if all(_is_int(v) for v in items):
        return [list(items)]
    tokens: list[list[int]] = []
    for i, item in enumerate(items):
        arr = as_list(item, f"input[{i}]")
        if not arr or not all(_is_int(t) for t in arr):
            bad_type(f"input[{i}]", "a non-empty array of integer tokens", item)
        tokens.append(list(arr))
    return tokens


def encode_embedding_response(
    resp: EmbeddingResponse, model: str, *, encoding_format: str | None = None
) -> dict[str, Any]:
    """``model`` is the name the client sees; pass the request's ``encoding_format``."""
    as_base64 = encoding_format == "base64"
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": _floats_to_base64(vec) if as_base64 else vec,
            }
            for i, vec in enumerate(resp.vectors)
        ],
        "model": model,
        "usage": {
            "prompt_tokens": resp.usage.input_tokens,
            "total_tokens": resp.usage.input_tokens,
        },
    }


# -- outbound --------------------------------------------------------------------------------------
def encode_embedding_request(req: EmbeddingRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": req.input}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    if req.encoding_format is not None:
        # Forwarded as asked (some compatible servers reject base64); both answers decode.
        body["encoding_format"] = req.encoding_format
    if req.user is not None:
        body["user"] = req.user
    return body


def decode_embedding_response(body: Any, *, provider: str = "openai") -> EmbeddingResponse:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise UpstreamError(f"{provider}: malformed embeddings response")
    rows: list[tuple[int, list[float]]] = []
    for pos, item in enumerate(body["data"]):
        if not isinstance(item, dict):
            raise UpstreamError(f"{provider}: malformed embedding item")
        vec = item.get("embedding")
        try:
            if isinstance(vec, str):
                floats = _base64_to_floats(vec)
            elif isinstance(vec, list):
                floats = [float(x) for x in vec]
            else:
                raise ValueError("no embedding")
        except (ValueError, TypeError) as exc:
            raise UpstreamError(f"{provider}: malformed embedding vector") from exc
        index = item.get("index")
        rows.append((index if isinstance(index, int) else pos, floats))
    rows.sort(key=lambda r: r[0])
    return EmbeddingResponse(
        model=str(body.get("model") or ""),
        vectors=[vec for _, vec in rows],
        usage=usage_from_wire(body.get("usage")),
    )
