"""OpenAI error bodies: ``GatewayError`` -> ``{"error": {...}}`` and upstream error bodies back.

OpenAI clients read ``error.message`` / ``type`` / ``code``; the SDK picks its exception class
from the HTTP status, so the status matters more than ``type``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from backend.ir.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    PolicyBlocked,
    QuotaExceeded,
    RateLimited,
    UpstreamError,
    upstream_status_error,
)

# Upstream messages can echo part of our provider key ("Incorrect API key provided: sk-...");
# clients must never see any of it.
_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-*.]{3,}|Bearer\s+\S+|(?i:api[-_ ]?key)\s*[:=]\s*\S+)",
)
_MAX_MESSAGE = 500


def _classify(err: GatewayError) -> tuple[str, str | None]:
    """(type, default code) in OpenAI's vocabulary."""
    if isinstance(err, QuotaExceeded):
        return "insufficient_quota", "insufficient_quota"
    if isinstance(err, RateLimited):
        return "rate_limit_error", "rate_limit_exceeded"
    if isinstance(err, (InvalidRequest, PolicyBlocked)):
        return "invalid_request_error", None
    if isinstance(err, AuthenticationError):
        return "authentication_error", "invalid_api_key"
    if isinstance(err, PermissionDenied):
        return "permission_error", None
    if isinstance(err, NotFound):
        return "not_found_error", None
    if isinstance(err, UpstreamError):
        return "api_error", None
    return "server_error", None


def error_object(err: GatewayError) -> dict[str, Any]:
    kind, default_code = _classify(err)
    code = default_code if isinstance(err, QuotaExceeded) else (err.code or default_code)
    return {"message": err.message, "type": kind, "param": err.param, "code": code}


def encode_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """The status and body to answer an OpenAI client with."""
    return err.status, {"error": error_object(err)}


def scrub(message: str) -> str:
    text = _SECRET.sub("[redacted]", message)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


def _parse_error_body(body: bytes) -> tuple[str, dict[str, Any]]:
    """(message, the error object if any) from whatever an OpenAI-compatible server sent."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = " ".join(body.decode("utf-8", errors="replace").split())
        return text[:200], {}
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict):
            message = err.get("message")
            return (message if isinstance(message, str) else ""), err
        # vLLM / FastAPI style bodies and bare {"error": "text"}.
        for key in ("error", "message", "detail"):
            value = obj.get(key)
            if isinstance(value, str):
                return value, {}
    return "", {}


def decode_error(status: int, body: bytes, *, provider: str = "openai") -> GatewayError:
    """Map a non-2xx upstream answer to the error the client should see."""
    message, obj = _parse_error_body(body)
    err = upstream_status_error(status, scrub(message) or f"HTTP {status}", provider=provider)
    code = obj.get("code") if isinstance(obj.get("code"), str) else None
    param = obj.get("param") if isinstance(obj.get("param"), str) else None
    if isinstance(err, (InvalidRequest, NotFound)):
        # The caller's own mistake (context_length_exceeded, model_not_found...): show it as is.
        err.code = code or err.code
        err.param = param
    err.detail = {
        k: v
        for k, v in (
            ("upstream_status", status),
            ("upstream_type", obj.get("type")),
            ("upstream_code", code),
        )
        if isinstance(v, (str, int))
    }
    return err


def decode_stream_error(frame: dict[str, Any], *, provider: str = "openai") -> GatewayError:
    """An ``{"error": {...}}`` frame sent in place of a chunk mid-stream."""
    err = frame.get("error")
    message = ""
    code: str | None = None
    if isinstance(err, dict):
        raw_message = err.get("message")
        message = raw_message if isinstance(raw_message, str) else ""
        raw_code = err.get("code") or err.get("type")
        code = raw_code if isinstance(raw_code, str) else None
    elif isinstance(err, str):
        message = err
    return UpstreamError(
        f"{provider}: {scrub(message) or 'error during streaming'}",
        code=code,
        detail={"upstream_code": code} if code else None,
    )
