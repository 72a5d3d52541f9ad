"""Pure formatting of API values for tables: every cell is a string, decided here once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


def text(value: Any, empty: str = "—") -> str:
    if value is None or value == "":
        return empty
    return str(value)


#: Spend and cost (what requests cost) always show this many decimals, so a column of them
#: lines up and a cheap request never reads as a rounded $0.02 next to $0.001896. Budgets
#: (caps, set by people in whole cents) show cents: ``cap``. Rates per million tokens: ``rate``.
SPEND_PLACES = 4
_SPEND_STEP = Decimal(1).scaleb(-SPEND_PLACES)


def _decimal(value: Any) -> Decimal | None:
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        return None
    return out if out.is_finite() else None


def money(value: Any, *, unknown: str = "unknown") -> str:
    """Spend in USD to 4 decimals (``$0.0200``, ``$1,234.5000``); a non-zero amount below that
    reads ``<$0.0001``, never $0; a missing price is "unknown", never $0."""
    if value is None or value == "":
        return unknown
    amount = _decimal(value)
    if amount is None:
        return str(value)
    if amount == 0:
        return "$0.00"
    if abs(amount) < _SPEND_STEP:
        return f"<${_SPEND_STEP}" if amount > 0 else f"-<${_SPEND_STEP}"
    return f"${amount:,.{SPEND_PLACES}f}"


def budget(value: Any) -> str:
    """A cap or budget in USD, in cents (``$25.00``)."""
    amount = _decimal(value)
    return str(value) if amount is None else f"${amount:,.2f}"


def rate(value: Any) -> str:
    """A price per million tokens: as set, at least cents (``$0.075``, ``$2.50``); null: unknown."""
    amount = _decimal(value) if value not in (None, "") else None
    if amount is None:
        return "unknown" if value in (None, "") else str(value)
    text = f"{amount.normalize():f}"
    whole, _, frac = text.partition(".")
    return f"${int(whole):,}.{frac.ljust(2, '0')}" if whole.lstrip("-").isdigit() else f"${text}"


def amount(value: Any) -> str:
    """A stored amount as a form field shows it: ``25`` for ``25.00000000``; "" for none."""
    parsed = _decimal(value) if value not in (None, "") else None
    if parsed is None:
        return ""
    text = f"{parsed.normalize():f}"
    return text


def percent(value: Any) -> str:
    """A 0..1 fraction as a percentage with one decimal (``4.2%``)."""
    return f"{to_float(value) * 100:.1f}%"


def ms(value: Any) -> str:
    """A latency in milliseconds, or "—" when there is none."""
    return "—" if value is None or value == "" else f"{to_float(value):,.0f} ms"


def spend(value: Any, unknown_requests: Any, *, zero: str = "$0.00") -> str:
    """Spend with the requests whose price is unknown said as such, never folded in as $0:
    ``$1.20``, ``$1.20 + unknown (3 requests)`` or ``unknown (3 requests)``."""
    try:
        n = int(unknown_requests or 0)
    except (TypeError, ValueError):
        n = 0
    known = money(value, unknown=zero)
    if n <= 0:
        return known
    unknown = f"unknown ({n} request{'s' if n != 1 else ''})"
    return unknown if known == "$0.00" else f"{known} + {unknown}"


def cap(value: Any) -> str:
    return "no cap" if value is None or value == "" else budget(value)


def number(value: Any) -> str:
    if value is None or value == "":
        return "0"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def to_float(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def yes_no(value: Any, yes: str = "on", no: str = "off") -> str:
    return yes if value else no


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def when(value: Any) -> str:
    """UTC timestamp to the second: unambiguous for operators in several time zones."""
    parsed = parse_time(value)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if parsed else text(value)


def day(value: Any) -> str:
    parsed = parse_time(value)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%d") if parsed else text(value)


def minute(value: Any) -> str:
    parsed = parse_time(value)
    return parsed.astimezone(dt.UTC).strftime("%H:%M") if parsed else text(value)


def nodes(conn: Any) -> list[dict[str, Any]]:
    """Rows of a list field, whatever its shape: a list, a Relay connection, or items/nodes."""
    if conn is None:
        return []
    if isinstance(conn, list):
        return [n for n in conn if isinstance(n, dict)]
    if isinstance(conn, Mapping):
        if "edges" in conn:
            return [e["node"] for e in conn.get("edges") or [] if e and e.get("node")]
        for key in ("items", "nodes", "rows", "results"):
            if key in conn:
                return [n for n in conn.get(key) or [] if isinstance(n, dict)]
    return []


def next_cursor(conn: Any) -> str:
    """The cursor of the next page, or "" when there is none."""
    if not isinstance(conn, Mapping):
        return ""
    info = conn.get("pageInfo") or {}
    if info:
        return str(info.get("endCursor") or "") if info.get("hasNextPage") else ""
    return str(conn.get("nextCursor") or conn.get("cursor") or "")


def name_of(obj: Any, *keys: str) -> str:
    """``obj.name`` (or the first present key) of a nested object, "—" when absent."""
    if not isinstance(obj, Mapping):
        return "—"
    for key in (*keys, "name", "email", "slug"):
        if obj.get(key):
            return str(obj[key])
    return "—"
