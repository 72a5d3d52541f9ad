"""Reading a proxy request body: size-limited, JSON-decoded, with clear errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from backend.ir.errors import InvalidRequest, PayloadTooLarge


async def read_json(request: Request, max_bytes: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"Request body exceeds the limit of {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"Request body exceeds the limit of {max_bytes} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise InvalidRequest("Request body is empty: expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Request body is not valid JSON: {exc.msg} at position {exc.pos}."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    return body
