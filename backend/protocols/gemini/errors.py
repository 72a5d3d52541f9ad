"""Gemini error bodies -> ``GatewayError``.

Google answers ``{"error": {"code", "message", "status", "details": [...]}}`` (a JSON array of
those for a non-SSE stream). Statuses go through ``upstream_status_error`` except two 400s that
are not the caller's fault: a bad or expired key (``API_KEY_INVALID``; a missing key is a 403,
already the provider's) and ``FAILED_PRECONDITION`` (unsupported location, billing not set up).
Both are our provider configuration failing, so they become a retryable 502 like a 401 would.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.errors import GatewayError, UpstreamError, upstream_status_error

_KEY_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
    }
)
_MAX_MESSAGE = 500


def decode_error(status: int, body: bytes) -> GatewayError:
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if parsed is None:
        text = body.decode("utf-8", errors="replace").strip()[:_MAX_MESSAGE]
        return upstream_status_error(status, text or f"HTTP {status}", provider="gemini")
    return error_from_body(status, parsed)


def error_from_body(status: int, parsed: Any) -> GatewayError:
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(err, dict):
        return upstream_status_error(status, f"HTTP {status}", provider="gemini")
    message = str(err.get("message") or f"HTTP {status}")[:_MAX_MESSAGE]
    google_status = str(err.get("status") or "")
    reasons = {
        d.get("reason")
        for d in err.get("details") or []
        if isinstance(d, dict) and isinstance(d.get("reason"), str)
    }
    if status == 400 and (reasons & _KEY_REASONS or "API key" in message):
        return UpstreamError(
            f"gemini: provider credential rejected ({message})",
            status=502,
            code="upstream_auth",
            retryable=True,
            detail={"upstream_status": status, "reason": "API_KEY_INVALID"},
        )
    if status == 400 and google_status == "FAILED_PRECONDITION":
        return UpstreamError(
            f"gemini: {message}",
            status=502,
            code="upstream_precondition",
            retryable=True,
            detail={"upstream_status": status},
        )
    exc = upstream_status_error(status, message, provider="gemini")
    exc.detail.setdefault("upstream_status", status)
    if google_status:
        exc.detail.setdefault("upstream_code", google_status)
    return exc
