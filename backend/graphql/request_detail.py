"""What a log row says beyond its numbers: the gateway's own refusal (which cap, limit or
allowlist; ``backend.policies.refusal``) and the price its cost was computed with.

The two 429s an operator must tell apart: a spend cap's has a ``refusal`` of kind ``SPEND_CAP``
(and no ``upstreamStatus``); a provider's has ``upstreamStatus`` 429 and no ``refusal``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import strawberry
from strawberry import enum_value as value


@strawberry.enum(description="What refused a request inside the gateway.")
class RefusalKind(Enum):
    SPEND_CAP = value("spend_cap", description="A spend cap (user, organization, app or key).")
    RATE_LIMIT = value("rate_limit", description="A requests or tokens per minute limit.")
    MODEL_NOT_ALLOWED = value("model_not_allowed", description="A model allowlist.")
    UNPRICED_MODEL = value(
        "unpriced_model", description="A capped caller asked for a model without a price."
    )
    BUDGET_UNAVAILABLE = value(
        "budget_unavailable", description="The shared budget store could not be reached."
    )
    AUTHENTICATION = value(
        "authentication", description="The key is missing, unknown, revoked or expired."
    )
    ACCESS = value("access", description="The key's user is suspended or its app inactive.")
    DLP = value("dlp", description="DLP could not scan the request (fail closed).")
    DEPLOYMENT_LIMIT = value(
        "deployment_limit",
        description="Every provider account serving the model is at its own rate limit.",
    )
    CIRCUIT_OPEN = value(
        "circuit_open", description="The gateway stopped calling a failing provider for a while."
    )
    OTHER = value("other", description="Another refusal (a newer gateway's kind).")


@strawberry.type(
    name="Refusal",
    description=(
        "Why the gateway itself refused a request: which cap, limit or allowlist, and its "
        "numbers. Fields that do not apply to the kind are null."
    ),
)
class RefusalType:
    kind: RefusalKind = strawberry.field(description="What refused it.")
    summary: str = strawberry.field(description="The refusal in one sentence.")
    scope: str | None = strawberry.field(description="Whose cap or limit: user, org, app or key.")
    scope_id: int | None = strawberry.field(description="The id of that user, org, app or key.")
    period: str | None = strawberry.field(description="Spend caps: daily, weekly or monthly.")
    metric: str | None = strawberry.field(description="Rate limits: requests or tokens.")
    limit: str | None = strawberry.field(
        description="The cap in USD (with rollover) or the limit per minute."
    )
    used: str | None = strawberry.field(
        description="Spent or reserved this period (USD), or used in the last minute."
    )
    resets_at: dt.datetime | None = strawberry.field(description="Spend caps: when it resets.")
    retry_after_seconds: int | None = strawberry.field(
        description="Rate limits: when the request would have fit."
    )
    model: str | None = strawberry.field(description="Allowlists and prices: the model.")
    level: str | None = strawberry.field(description="Allowlists: key, user, app or organization.")
    reason: str | None = strawberry.field(
        description="Authentication and access: the code (revoked_api_key, user_suspended...)."
    )


@strawberry.type(
    name="PriceUsed",
    description="The rates a request's cost was computed with, in USD per million tokens.",
)
class PriceUsedType:
    input_per_mtok: Decimal = strawberry.field(description="Uncached input tokens.")
    output_per_mtok: Decimal = strawberry.field(description="Output tokens (reasoning included).")
    cached_per_mtok: Decimal | None = strawberry.field(
        description="Input read from a prompt cache; null: the input rate."
    )
    cache_write_per_mtok: Decimal | None = strawberry.field(
        description="Input written to a prompt cache; null: the input rate."
    )
    source: str = strawberry.field(
        description=(
            "Where the rates came from: override (an administrator's price), price-table, "
            "ollama (free), unpriced-default (the operator's price for unpriced models)."
        )
    )


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _money(value: Any) -> str:
    try:
        return f"${Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def summary(doc: dict[str, Any]) -> str:
    """One sentence for people: which cap or limit, its numbers, when it frees up."""
    kind = doc.get("kind")
    scope = f"{doc.get('scope')} #{doc.get('scope_id')}" if doc.get("scope") else "the caller"
    if kind == "spend_cap":
        period = str(doc.get("cap") or "").partition("_")[2] or "period"
        used, limit = _money(doc.get("used_usd")), _money(doc.get("limit_usd"))
        resets = f"; resets {doc['resets_at']}" if doc.get("resets_at") else ""
        return f"Spend cap: the {period} cap of {scope} ({used} of {limit} used){resets}."
    if kind == "rate_limit":
        metric = doc.get("metric") or "requests"
        used = f", {doc['used']} used" if doc.get("used") is not None else ""
        retry = (
            f"; fits again in {doc['retry_after_s']} s"
            if doc.get("retry_after_s") is not None
            else ""
        )
        return f"Rate limit: {doc.get('limit')} {metric} per minute of {scope}{used}{retry}."
    if kind == "model_not_allowed":
        return f"Model {doc.get('model')} is not on the {doc.get('level')} allowlist."
    if kind == "unpriced_model":
        return f"Model {doc.get('model')} has no price, so a capped caller may not use it."
    if kind == "budget_unavailable":
        return "The budget store was unreachable, so capped requests were refused."
    if kind == "authentication":
        return f"The key was refused ({doc.get('reason')})."
    if kind == "access":
        return f"The caller may not use the gateway ({doc.get('reason')})."
    if kind == "dlp":
        return f"DLP could not scan the request (rule {doc.get('rule')}); nothing was sent."
    if kind == "deployment_limit":
        return "Every provider account serving the model was at its own rate limit."
    if kind == "circuit_open":
        return "The provider's circuit was open: the gateway did not call it."
    return f"Refused by the gateway ({kind})."


def refusal_type(doc: Any) -> RefusalType | None:
    """The stored ``refusal`` document of a log row or live event."""
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str):
        return None
    try:
        kind = RefusalKind(doc["kind"])
    except ValueError:
        kind = RefusalKind.OTHER
    spend = doc["kind"] == "spend_cap"
    return RefusalType(
        kind=kind,
        summary=summary(doc),
        scope=_text(doc.get("scope")),
        scope_id=_int(doc.get("scope_id")),
        period=(str(doc.get("cap") or "").partition("_")[2] or None) if spend else None,
        metric=_text(doc.get("metric")),
        limit=_text(doc.get("limit_usd") if spend else doc.get("limit")),
        used=_text(doc.get("used_usd") if spend else doc.get("used")),
        resets_at=_time(doc.get("resets_at")),
        retry_after_seconds=_int(doc.get("retry_after_s")),
        model=_text(doc.get("model")),
        level=_text(doc.get("level")),
        reason=_text(doc.get("reason")),
    )


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def price_type(doc: Any) -> PriceUsedType | None:
    if not isinstance(doc, dict):
        return None
    inp, out = _decimal(doc.get("input_per_mtok")), _decimal(doc.get("output_per_mtok"))
    if inp is None or out is None:
        return None
    return PriceUsedType(
        input_per_mtok=inp,
        output_per_mtok=out,
        cached_per_mtok=_decimal(doc.get("cached_per_mtok")),
        cache_write_per_mtok=_decimal(doc.get("cache_write_per_mtok")),
        source=str(doc.get("source") or "unknown"),
    )
