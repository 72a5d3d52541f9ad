"""Form checks done before anything is sent, with messages a person can act on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


class FormError(ValueError):
    """Bad input; ``str(error)`` is the message to show next to the form."""


def required(form: Mapping[str, Any], key: str, label: str) -> str:
    value = str(form.get(key) or "").strip()
    if not value:
        raise FormError(f"{label} is required.")
    return value


def optional(form: Mapping[str, Any], key: str) -> str:
    return str(form.get(key) or "").strip()


def money(form: Mapping[str, Any], key: str, label: str) -> str | None:
    """A dollar amount as a decimal string, or None when left empty (no cap)."""
    raw = optional(form, key).lstrip("$").replace(",", "")
    if not raw:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:
        raise FormError(f"{label} must be an amount in dollars, like 25 or 12.50.") from exc
    if amount < 0:
        raise FormError(f"{label} cannot be negative.")
    return str(amount)


def slug(form: Mapping[str, Any], key: str = "slug", fallback: str = "") -> str:
    value = optional(form, key) or re.sub(r"[^a-z0-9]+", "-", fallback.lower()).strip("-")
    if not SLUG.match(value):
        raise FormError("Slug may use lowercase letters, digits and dashes only.")
    return value


def checked(form: Mapping[str, Any], key: str) -> bool:
    return str(form.get(key) or "").lower() in ("on", "true", "1", "yes")


def model_list(text: str) -> list[str]:
    """ "a, b\\nc" -> ["a", "b", "c"]: a fallback chain typed by hand."""
    return [m.strip() for m in re.split(r"[,\n]", text) if m.strip()]
