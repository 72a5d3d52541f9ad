"""What the hot path hands to the log writer: one record per request (or failed attempt).

Plain data built on the request path without I/O; the writer turns it into a ``RequestLog`` row,
rollup increments and a live event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: Most characters a log row keeps of a request or response body. Bodies are clipped to it as
#: they are collected (streams) and again when written, so no row can outgrow what a database
#: takes in one value (PostgreSQL refuses text over 1 GB, and such a row would be retried for
#: good) nor hold a long answer in memory.
MAX_BODY_CHARS = 1 << 20
_CLIPPED = "\u2026[clipped]"


def clip_body(text: str | None) -> str | None:
    """``text`` cut to ``MAX_BODY_CHARS`` characters, marked when it was cut."""
    if text is None or len(text) <= MAX_BODY_CHARS:
        return text
    return text[: MAX_BODY_CHARS - len(_CLIPPED)] + _CLIPPED


@dataclass(slots=True)
class LogRecord:
    request_id: str
    created_at: dt.datetime
    endpoint: str
    status: int = 200
    key_prefix: str | None = None
    user_id: int | None = None
    app_id: int | None = None
    org_id: int | None = None
    requested_model: str | None = None
    actual_model: str | None = None
    provider: str | None = None
    #: The provider deployment that answered (or failed); None: the provider's own connection.
    deployment: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    #: The error's machine code, the provider's status when it failed, and the gateway's own
    #: refusal (which cap, limit or allowlist; ``policies.refusal``).
    error_code: str | None = None
    upstream_status: int | None = None
    refusal: dict[str, Any] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    #: Part of output the model spent reasoning.
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = None
    #: The rates the cost was computed with (``price_doc``); None: no price used.
    price: dict[str, Any] | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    streamed: bool = False
    attempts: int = 1
    superseded: bool = False
    cache_hit: bool = False
    agent_id: str | None = None
    tier: str | None = None
    #: Cost-attribution tags (``metadata.tags`` / ``x-switchboard-tags``).
    tags: tuple[str, ...] = ()
    request_body: str | None = None
    response_body: str | None = None
    #: DLP activity rows to write with this request: dicts of DlpActivity fields.
    dlp_activity: list[dict[str, Any]] = field(default_factory=list)

    def event(self) -> dict[str, Any]:
        """The live event (``logs`` channel): every column except the bodies."""
        return {
            "request_id": self.request_id,
            "created_at": self.created_at.isoformat(),
            "key_prefix": self.key_prefix,
            "user_id": self.user_id,
            "app_id": self.app_id,
            "org_id": self.org_id,
            "endpoint": self.endpoint,
            "requested_model": self.requested_model,
            "actual_model": self.actual_model,
            "provider": self.provider,
            "deployment": self.deployment,
            "status": self.status,
            "error_type": self.error_type,
            "error_code": self.error_code,
            "upstream_status": self.upstream_status,
            "refusal": self.refusal,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
            "latency_ms": round(self.latency_ms, 3),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 3),
            "streamed": self.streamed,
            "attempts": self.attempts,
            "superseded": self.superseded,
            "cache_hit": self.cache_hit,
            "agent_id": self.agent_id,
            "tier": self.tier,
            "tags": list(self.tags),
        }

    @property
    def unknown_cost(self) -> bool:
        """Used tokens (or answered) at a price nobody knows: cost "unknown", never $0."""
        if self.superseded or self.cost_usd is not None or self.cache_hit:
            return False
        return bool(self.input_tokens or self.output_tokens) or 200 <= self.status < 300


@dataclass(slots=True)
class ErrorRecord:
    created_at: dt.datetime
    source: str  # gateway | client
    type: str
    error: str
    model: str | None = None
    user_id: int | None = None
    #: The organization the report was made under: the caller's principal's, not the user's
    #: current one (a user may move; the report stays with the organization it concerns).
    org_id: int | None = None
    agent: str | None = None
    version: str | None = None
    request_id: str | None = None

    def event(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "source": self.source,
            "type": self.type,
            "error": self.error,
            "model": self.model,
            "user_id": self.user_id,
            "org_id": self.org_id,
            "agent": self.agent,
            "version": self.version,
            "request_id": self.request_id,
        }
