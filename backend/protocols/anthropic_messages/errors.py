"""Anthropic error bodies, both directions: ``{"type": "error", "error": {"type", "message"}}``.

Client side, the HTTP status is always ``err.status`` and the ``error.type`` follows the
Messages API's vocabulary. A timeout is ``timeout_error`` (the current API's type for 504) and
an unavailable upstream is ``overloaded_error``, which the SDKs treat as retryable.

Upstream side, statuses go through ``upstream_status_error`` so every provider maps failures
the same way; Anthropic's own 529 (overloaded) is an unavailable upstream.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    upstream_status_error,
)

#: GatewayError class -> Anthropic error type; the first match in the MRO wins.
_TYPES: tuple[tuple[type[GatewayError], str], ...] = (
    (PayloadTooLarge, "request_too_large"),
    (InvalidRequest, "invalid_request_error"),
    (AuthenticationError, "authentication_error"),
    (PermissionDenied, "permission_error"),
    (NotFound, "not_found_error"),
    (RateLimited, "rate_limit_error"),
    (QuotaExceeded, "rate_limit_error"),
    (UpstreamTimeout, "timeout_error"),
    (UpstreamUnavailable, "overloaded_error"),
)

#: Anthropic error type -> the HTTP status it travels with (for errors inside a 200 stream).
_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def error_type(err: GatewayError) -> str:
    for cls, name in _TYPES:
        if isinstance(err, cls):
            return name
    # PolicyBlocked and the provider-side UnsupportedOperation are the caller's 400s.
    if err.status == 400:
        return "invalid_request_error"
    return "api_error"


def error_body(err: GatewayError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": error_type(err), "message": err.message},
    }
    request_id = err.detail.get("request_id")
    if isinstance(request_id, str):
        body["request_id"] = request_id
    return body


def encode_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body a client of ``/v1/messages`` should get for ``err``."""
    return err.status, error_body(err)


def decode_error(status: int, body: bytes, *, provider: str = "anthropic") -> GatewayError:
    """An upstream non-2xx answer -> the error the client should see."""
    message = _message(body) or f"HTTP {status}"
    if status == 529:
        return UpstreamUnavailable(f"{provider}: {message}", code="upstream_overloaded")
    return upstream_status_error(status, message, provider=provider)


def error_from_event(data: Any, *, provider: str = "anthropic") -> GatewayError:
    """An ``event: error`` inside a 200 stream -> gateway error, by its ``error.type``."""
    err = data.get("error") if isinstance(data, dict) else None
    kind = err.get("type") if isinstance(err, dict) else None
    message = err.get("message") if isinstance(err, dict) else None
    status = _TYPE_STATUS.get(kind or "", 500)
    text = message if isinstance(message, str) and message else str(kind or "stream error")
    if status == 529:
        return UpstreamUnavailable(f"{provider}: {text}", code="upstream_overloaded")
    return upstream_status_error(status, text, provider=provider)


def _message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", errors="replace").strip()
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return ""
