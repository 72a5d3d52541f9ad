"""Ollama error bodies (``{"error": "<message>"}``) -> ``GatewayError``.

Ollama uses plain HTTP statuses (404 for a model that is not pulled, 400 for a bad request,
500 for a runner failure), so ``upstream_status_error`` maps them as for any provider.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.errors import GatewayError, upstream_status_error

_MAX_MESSAGE = 500


def decode_error(status: int, body: bytes) -> GatewayError:
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("error"):
        message = str(parsed["error"])
    else:
        message = body.decode("utf-8", errors="replace").strip() or f"HTTP {status}"
    exc = upstream_status_error(status, message[:_MAX_MESSAGE], provider="ollama")
    exc.detail.setdefault("upstream_status", status)
    return exc
