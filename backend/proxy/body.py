"""Reading a proxy request body: size-limited, JSON-decoded, with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from backend.ir.errors import InvalidRequest, PayloadTooLarge

#: Deepest nesting of objects and arrays a request may have. Real requests stay far below it;
#: past 254 levels the JSON encoder refuses the upstream body, so refuse it here, clearly.
MAX_DEPTH = 128


async def read_json(
    request: Request, max_bytes: int, headers: Mapping[str, str] | None = None
) -> Any:
    """The body as a JSON object. ``headers``: the request's headers as one dict, when the
    caller has it (``proxy.headers``); Starlette's ``request.headers`` is built otherwise."""
    declared = (headers if headers is not None else request.headers).get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"Request body exceeds the limit of {max_bytes} bytes.")
    raw = await _read_body(request, max_bytes)
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
    # Counting brackets is a C loop; only a body that could be too deep is walked.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and nesting_depth(body) > MAX_DEPTH:
        raise InvalidRequest(
            f"Request body nests objects and arrays deeper than {MAX_DEPTH} levels."
        )
    return body


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """What ``request.stream()`` yields, read off ``receive`` directly: the async generator
    and its bookkeeping cost more than the read itself for the usual one-message body."""
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"Request body exceeds the limit of {max_bytes} bytes.")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    # As after ``request.stream()``: a second read says the stream was consumed.
    request._stream_consumed = True
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def nesting_depth(value: Any) -> int:
    """How deep objects and arrays nest in a decoded JSON value (iterative: no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
