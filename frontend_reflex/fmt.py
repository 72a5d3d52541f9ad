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


def money(value: Any, *, unknown: str = "unknown") -> str:
    """USD with enough digits for cheap requests; a missing price is "unknown", never $0."""
    if value is None or value == "":
        return unknown
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if amount == 0:
        return "$0.00"
    if abs(amount) < Decimal("0.01"):
        return f"${amount:.6f}".rstrip("0")
    return f"${amount:,.2f}"


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
    return "no cap" if value is None or value == "" else money(value)


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
