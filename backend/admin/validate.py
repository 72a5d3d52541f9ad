"""Field validators shared by the admin services; each raises ``InvalidInput`` naming the field."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

from backend.admin.errors import InvalidInput

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
MONEY_MAX = Decimal("1e10")


def text(value: Any, field: str, *, max_len: int = 200, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(value) > max_len:
        raise InvalidInput(f"{field} must be at most {max_len} characters", field=field)
    return value


def optional_text(value: Any, field: str, *, max_len: int = 200) -> str | None:
    out = text(value, field, max_len=max_len, required=False)
    return out or None


def email(value: Any, field: str = "email") -> str:
    out = text(value, field, max_len=320).lower()
    if not EMAIL_RE.match(out):
        raise InvalidInput(f"{field} is not a valid email address", field=field)
    return out


def slug(value: Any, field: str = "slug") -> str:
    out = text(value, field, max_len=100)
    if not SLUG_RE.match(out):
        raise InvalidInput(
            f"{field} must be lowercase letters, digits and dashes (not at either end)",
            field=field,
        )
    return out


def choice(value: Any, field: str, options: tuple[str, ...] | frozenset[str]) -> str:
    if value not in options:
        allowed = ", ".join(sorted(options))
        raise InvalidInput(f"{field} must be one of: {allowed}", field=field)
    return str(value)


def money(value: Any, field: str) -> Decimal | None:
    """A non-negative USD amount with at most 8 decimals, or None (no cap / unknown)."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} must be a decimal amount", field=field) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput(f"{field} must be zero or more", field=field)
    if amount >= MONEY_MAX:
        raise InvalidInput(f"{field} is too large", field=field)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        raise InvalidInput(f"{field} has more than 8 decimal places", field=field)
    return amount


def int_range(value: Any, field: str, lo: int, hi: int, *, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidInput(f"{field} must be an integer from {lo} to {hi}", field=field)
    return value


def http_url(value: Any, field: str) -> str | None:
    out = optional_text(value, field, max_len=500)
    if out is None:
        return None
    parsed = urlparse(out)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"{field} must be an http(s) URL", field=field)
    return out.rstrip("/")


def aware(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{field} must be a date-time", field=field)
    if value.tzinfo is None:
        # Naive times from automation scripts are taken as UTC, the gateway's only zone.
        value = value.replace(tzinfo=dt.UTC)
    return value


def future(value: Any, field: str, now: dt.datetime) -> dt.datetime | None:
    out = aware(value, field)
    if out is not None and out <= now:
        raise InvalidInput(f"{field} must be in the future", field=field)
    return out


def model_name(value: Any, field: str) -> str:
    out = text(value, field, max_len=200)
    if any(c.isspace() for c in out):
        raise InvalidInput(f"{field} must not contain spaces", field=field)
    return out
