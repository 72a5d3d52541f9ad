"""Per-request state carried through the pipeline and turned into the request's log record."""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from backend.data.log_record import LogRecord, clip_body
from backend.ir.chat import Usage
from backend.ir.errors import GatewayError
from backend.policies.refusal import error_facts
from backend.providers.deployment_pool import Trail
from backend.state.snapshot import Principal


def new_request_id() -> str:
    # 128 random bits (the generator is seeded from the OS per process). Ids are labels, not
    # secrets, so they need uniqueness, not a system call per request as os.urandom makes.
    return f"req_{random.getrandbits(128):032x}"


@dataclass(slots=True)
class RequestContext:
    endpoint: str
    created_at: dt.datetime
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    #: The presented key's prefix when authentication refused a known key (revoked, expired).
    key_prefix: str | None = None
    requested_model: str | None = None
    agent_id: str | None = None
    tier: str | None = None
    actual_model: str | None = None
    provider: str | None = None
    #: The provider deployment that answered (or failed last); None: the provider's own
    #: connection. ``trail``: every deployment call of the request (``deployment_pool``).
    deployment: str | None = None
    trail: Trail | None = None
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: Decimal | None = None
    #: The rates ``cost`` was computed with (``pricing.book.ModelPricing``), for the log row.
    price: Any = None
    status: int = 200
    error: GatewayError | None = None
    #: (error_type, error_message) for the log of an outcome that is not a ``GatewayError``
    #: (a stream the client abandoned, billed from estimates).
    note: tuple[str, str] | None = None
    #: How a stream the upstream cut short was billed (estimates said so), added to the log
    #: row's error message.
    billing_note: str | None = None
    ttft_ms: float | None = None
    streamed: bool = False
    cache_hit: bool = False
    request_body: str | None = None
    response_body: str | None = None
    dlp_activity: list[dict[str, Any]] = field(default_factory=list)
    #: Budget reservation (``backend.budget``), settled or released exactly once.
    reservation: Any = None
    #: Rate-limit ticket (``backend.budget.ratelimit``), settled exactly once.
    rate_ticket: Any = None
    #: ``x-ratelimit-*`` headers for every answer to this request (empty: no limit applies).
    rate_headers: dict[str, str] = field(default_factory=dict)
    #: Cost-attribution tags (``backend.policies.tags``).
    tags: tuple[str, ...] = ()
    #: DLP vault of this request (placeholder -> value), None when DLP is off.
    vault: Any = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def mark_first_byte(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = self.elapsed_ms()

    def fail(self, err: GatewayError) -> None:
        self.error = err
        self.status = err.status
        if self.principal is None and isinstance(err.detail.get("key_prefix"), str):
            self.key_prefix = err.detail["key_prefix"]

    def log_record(self, *, superseded: bool = False) -> LogRecord:
        p = self.principal
        err = self.error
        facts = error_facts(err) if err is not None else None
        error_type, error_message = (
            (facts.error_type, facts.error_message) if facts else self.note or (None, None)
        )
        if err is not None and self.billing_note:
            error_message = f"{error_message} {self.billing_note}"
        return LogRecord(
            request_id=self.request_id,
            created_at=self.created_at,
            endpoint=self.endpoint,
            status=self.status,
            key_prefix=p.key.prefix if p else self.key_prefix,
            user_id=p.user.id if p and p.user else None,
            app_id=p.app.id if p and p.app else None,
            org_id=p.org_id if p else None,
            requested_model=self.requested_model,
            actual_model=self.actual_model,
            provider=self.provider,
            deployment=self.deployment,
            error_type=error_type,
            error_message=error_message,
            error_code=facts.error_code if facts else None,
            upstream_status=facts.upstream_status if facts else None,
            refusal=facts.refusal if facts else None,
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            cached_tokens=self.usage.cached_tokens,
            reasoning_tokens=self.usage.reasoning_tokens,
            cost_usd=self.cost,
            price=price_doc(self.price) if self.cost is not None else None,
            latency_ms=self.elapsed_ms(),
            ttft_ms=self.ttft_ms,
            streamed=self.streamed,
            attempts=max(self.attempts, 1),
            superseded=superseded,
            cache_hit=self.cache_hit,
            agent_id=self.agent_id,
            tier=self.tier,
            tags=self.tags,
            request_body=clip_body(self.request_body),
            response_body=clip_body(self.response_body),
            dlp_activity=self.dlp_activity,
        )


def price_doc(pricing: Any) -> dict[str, Any] | None:
    """A ``ModelPricing`` as the log row keeps it: rates as decimal strings (USD per million
    tokens) and their source (override, price-table, ollama, unpriced-default)."""
    if pricing is None:
        return None

    def rate(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "input_per_mtok": rate(pricing.input_per_mtok),
        "output_per_mtok": rate(pricing.output_per_mtok),
        "cached_per_mtok": rate(pricing.cached_per_mtok),
        "cache_write_per_mtok": rate(getattr(pricing, "cache_write_per_mtok", None)),
        "source": str(pricing.source),
    }
