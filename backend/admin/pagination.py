"""Cursor pagination over Tortoise querysets (keyset) and over computed lists (offset).

Cursors are opaque to clients: base64url of a small JSON document naming the sort they belong
to, so a cursor from one sort order is refused under another instead of silently skipping rows.
Keyset pages stay fast on large tables (the log): ``(sort value, id)`` > the last row seen.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

import orjson
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from backend.admin.errors import InvalidInput

T = TypeVar("T")
M = TypeVar("M", bound=Model)

DEFAULT_PAGE = 50
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Sort:
    """A sort order: ``field`` (never null in the table) then ``id`` as the tie-breaker."""

    key: str
    field: str
    descending: bool


@dataclass
class Page(Generic[T]):
    items: list[T]
    has_next: bool
    end_cursor: str | None
    count: Callable[[], Awaitable[int]]
    #: A page searched in time slices that stopped early (``admin.logsearch``): every match
    #: up to this time is in it, the next page searches on from here. None: a whole page.
    searched_to: dt.datetime | None = None


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput(f"first must be from 1 to {MAX_PAGE}", field="first")
    return first


def encode_cursor(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")


def decode_cursor(cursor: str, sort_key: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidInput("after is not a valid cursor", field="after") from None
    if not isinstance(doc, dict) or doc.get("k") != sort_key:
        raise InvalidInput("after is a cursor of another list or sort order", field="after")
    return doc


def pack(value: Any) -> list[Any]:
    if isinstance(value, dt.datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, Decimal):
        return ["dec", str(value)]
    return ["v", value]


def unpack(packed: Any) -> Any:
    if not isinstance(packed, list) or len(packed) != 2:
        raise InvalidInput("after is not a valid cursor", field="after")
    tag, raw = packed
    try:
        if tag == "dt":
            return dt.datetime.fromisoformat(raw)
        if tag == "dec":
            return Decimal(raw)
    except (TypeError, ValueError):
        raise InvalidInput("after is not a valid cursor", field="after") from None
    return raw


async def keyset_page(
    qs: QuerySet[M], sort: Sort, *, first: int | None, after: str | None
) -> Page[M]:
    size = page_size(first)
    count_qs = qs

    async def count() -> int:
        return await count_qs.count()

    op = "lt" if sort.descending else "gt"
    if after:
        doc = decode_cursor(after, sort.key)
        last_id = doc.get("id")
        if not isinstance(last_id, int):
            raise InvalidInput("after is not a valid cursor", field="after")
        if sort.field == "id":
            qs = qs.filter(**{f"id__{op}": last_id})
        else:
            value = unpack(doc.get("v"))
            # The plain bound first: it is what an index on the field can range over (the OR
            # alone reads as a filter, so a page deep in the list would scan every row before).
            qs = qs.filter(**{f"{sort.field}__{op}e": value}).filter(
                Q(**{f"{sort.field}__{op}": value}) | Q(**{sort.field: value, f"id__{op}": last_id})
            )
    prefix = "-" if sort.descending else ""
    ordering = [f"{prefix}id"] if sort.field == "id" else [f"{prefix}{sort.field}", f"{prefix}id"]
    rows = await qs.order_by(*ordering).limit(size + 1)
    has_next = len(rows) > size
    rows = rows[:size]
    cursor = None
    if rows:
        last = rows[-1]
        doc = {"k": sort.key, "id": last.pk}
        if sort.field != "id":
            doc["v"] = pack(getattr(last, sort.field))
        cursor = encode_cursor(doc)
    return Page(rows, has_next, cursor, count)


async def bounded_count(qs: QuerySet[M], limit: int) -> int:
    """``min(count, limit)`` of ``qs``, reading at most ``limit`` rows: ``SELECT COUNT(*) FROM
    (SELECT id ... LIMIT n)``, so a count over a large table costs what a page of ``limit`` does
    (an index range when the filters have one), not a scan of every match."""
    inner = qs.limit(limit).only("id")
    inner._choose_db_if_not_chosen()
    inner._make_query()
    sql, params = inner.query.get_parameterized_sql()
    rows = await inner._db.execute_query_dict(
        f"SELECT COUNT(*) AS n FROM ({sql}) AS bounded", params
    )
    return int(rows[0]["n"]) if rows else 0


def offset_of(after: str | None, key: str) -> int:
    """The offset an offset cursor holds (0: no cursor, the first page)."""
    if not after:
        return 0
    start = decode_cursor(after, key).get("o", 0)
    if not isinstance(start, int) or start < 0:
        raise InvalidInput("after is not a valid cursor", field="after")
    return start


def offset_page(items: Sequence[T], key: str, *, first: int | None, after: str | None) -> Page[T]:
    """Pagination of a list computed in full (aggregates): the cursor holds the offset."""
    size, start = page_size(first), offset_of(after, key)
    chunk = list(items[start : start + size])
    end = start + len(chunk)
    total = len(items)

    async def count() -> int:
        return total

    cursor = encode_cursor({"k": key, "o": end}) if chunk else None
    return Page(chunk, end < total, cursor, count)
