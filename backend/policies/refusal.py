"""What a failed request's log row says about who failed it: the gateway's own refusal (which
cap, limit or allowlist) or the provider's error (its HTTP status).

A spend-cap 429 and a provider's 429 look alike on the wire (both ``429``, both OpenAI-style
``insufficient_quota``/``rate_limit_exceeded`` codes); the log must not confuse them. The errors
the pipeline raises where it refuses carry a ``code`` and a ``detail`` naming what refused
(``budget.base.quota_error``, ``budget.ratelimit.rate_error``, ``policies.limits.not_allowed``,
``proxy.auth``...); this module turns them into the row's ``refusal`` document, pure and total
(an unknown error is simply no refusal).

Refusal kinds (``kind``): ``spend_cap``, ``rate_limit``, ``model_not_allowed``,
``unpriced_model``, ``budget_unavailable``, ``authentication``, ``access`` (suspended user,
inactive app), ``dlp``, ``deployment_limit`` (every provider account serving the model is at
its own limit), ``circuit_open`` (the gateway stopped calling a failing provider).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from backend.ir.errors import AuthenticationError, GatewayError, PolicyBlocked

_UPSTREAM_CODE = re.compile(r"^upstream_(\d{3})$")
#: Detail keys kept per kind: the numbers an operator needs, never a secret or a body.
_SPEND_KEYS = ("cap", "scope", "scope_id", "limit_usd", "used_usd", "resets_at")
_RATE_KEYS = ("scope", "scope_id", "metric", "limit", "used", "retry_after_s")


@dataclass(frozen=True, slots=True)
class ErrorFacts:
    """The error columns of a log row."""

    error_type: str
    error_message: str
    error_code: str | None
    upstream_status: int | None
    refusal: dict[str, Any] | None


def error_facts(err: GatewayError) -> ErrorFacts:
    return ErrorFacts(
        error_type=err.kind,
        error_message=err.message[:2000],
        error_code=err.code[:64] if err.code else None,
        upstream_status=upstream_status(err),
        refusal=refusal_of(err),
    )


def upstream_status(err: GatewayError) -> int | None:
    """The provider's HTTP status when the provider answered with an error."""
    status = err.detail.get("upstream_status")
    if isinstance(status, int) and not isinstance(status, bool):
        return status
    match = _UPSTREAM_CODE.match(err.code or "")
    if match:
        return int(match.group(1))
    if err.code == "upstream_rate_limited":
        return 429
    return None


def _pick(detail: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: detail[k] for k in keys if isinstance(detail.get(k), (str, int, float))}


def refusal_of(err: GatewayError) -> dict[str, Any] | None:
    """The gateway's own refusal behind ``err``; None for a provider's error or a client's
    malformed request (those are told by ``error_type``, ``upstream_status`` and the message)."""
    code = err.code or ""
    detail = err.detail
    if code == "insufficient_quota" and "cap" in detail:
        return {"kind": "spend_cap", **_pick(detail, _SPEND_KEYS)}
    if code == "rate_limit_exceeded" and "scope" in detail:
        return {"kind": "rate_limit", **_pick(detail, _RATE_KEYS)}
    if code == "model_not_allowed":
        return {"kind": "model_not_allowed", **_pick(detail, ("model", "level"))}
    if code == "unpriced_model":
        return {"kind": "unpriced_model", **_pick(detail, ("model",))}
    if code == "budget_store_unavailable":
        return {"kind": "budget_unavailable"}
    if code == "deployments_at_limit":
        return {"kind": "deployment_limit"}
    if code == "circuit_open":
        return {"kind": "circuit_open"}
    if code in ("user_suspended", "app_inactive"):
        return {"kind": "access", "reason": code}
    if isinstance(err, AuthenticationError):
        return {"kind": "authentication", "reason": code or "invalid_api_key"}
    if isinstance(err, PolicyBlocked):
        return {"kind": "dlp", **_pick(detail, ("rule",))}
    return None
