"""Cursor pagination of ``GET /v1/responses/{id}/input_items``, as OpenAI pages lists.

``after``/``before`` are item ids, ``limit`` 1-100 (default 20), ``order`` ``asc`` or ``desc``
(default ``desc``: newest item first). The answer is
``{"object": "list", "data", "first_id", "last_id", "has_more"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.ir.errors import InvalidRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PageQuery:
    after: str | None = None
    before: str | None = None
    limit: int = DEFAULT_LIMIT
    order: str = "desc"


def parse_page_query(params: Mapping[str, str]) -> PageQuery:
    """The query string's paging parameters; a bad one is a 400 naming it."""
    raw_limit = params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequest(
                f"Invalid 'limit': expected an integer between 1 and {MAX_LIMIT}, "
                f"got {raw_limit[:40]!r}.",
                param="limit",
            )
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid 'order': expected 'asc' or 'desc', got {order[:40]!r}.", param="order"
        )
    after, before = params.get("after") or None, params.get("before") or None
    if after and before:
        raise InvalidRequest("Use either 'after' or 'before', not both.", param="before")
    return PageQuery(after=after, before=before, limit=limit, order=order)


def page(items: list[dict[str, Any]], query: PageQuery) -> dict[str, Any]:
    """One page of ``items`` (oldest first, each with an ``id``); unknown cursors are a 400."""
    ordered = items if query.order == "asc" else items[::-1]
    ids = [str(i.get("id")) for i in ordered]
    if query.after is not None:
        start = _position(ids, query.after, "after") + 1
        chunk = ordered[start : start + query.limit]
        has_more = start + query.limit < len(ordered)
    elif query.before is not None:
        end = _position(ids, query.before, "before")
        start = max(0, end - query.limit)
        chunk = ordered[start:end]
        has_more = start > 0
    else:
        chunk = ordered[: query.limit]
        has_more = query.limit < len(ordered)
    return {
        "object": "list",
        "data": chunk,
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
        "has_more": has_more,
    }


def _position(ids: list[str], cursor: str, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise InvalidRequest(
            f"Invalid '{param}': no input item with id {cursor[:100]!r} in this response.",
            param=param,
        ) from None
