"""What every document module shares: an operation, and enum and id values as the schema wants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Op = tuple[str, dict[str, Any]]
_ID_FIELDS = ("organizationId", "ownerId", "userId", "appId")
_ENUM_FIELDS = ("role", "status", "capPeriod", "kind")
# Stored values with a dash: their enum names have "_" (which other stored values also use).
_DASHED = frozenset({"least-busy", "round-robin", "price-table"})


def enum_name(value: str) -> str:
    """The GraphQL enum name of a stored value (``least-busy`` -> ``LEAST_BUSY``)."""
    return value.strip().upper().replace("-", "_")


def stored(name: Any, default: str = "") -> str:
    """The stored value of a GraphQL enum name (``LEAST_BUSY`` -> ``least-busy``)."""
    if not name:
        return default
    low = str(name).lower()
    dashed = low.replace("_", "-")
    return dashed if dashed in _DASHED else low


def _enums(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Enum-typed input fields as enum names (an empty value stays as sent: the gateway says)."""
    out = dict(fields)
    for key in _ENUM_FIELDS:
        if isinstance(out.get(key), str) and out[key]:
            out[key] = enum_name(out[key])
    return out


def _ids(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Ids travel as strings in the dashboard's state; the schema's ids are Int."""
    out = dict(fields)
    for key in _ID_FIELDS:
        if out.get(key) not in (None, ""):
            out[key] = int(out[key])
        elif key in out:
            out[key] = None
    return out
