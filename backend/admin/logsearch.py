"""Pages and counts of the request log that finish in bounded time, whatever the filter.

A page of "the newest 50 rows matching F" is cheap when an index leads to them (organization,
user, app, key: ``(column, created_at)``) or when F matches often, but a rare combination (one
model's 403s in one organization) makes the database read rows back to the first match: on ten
million rows, seconds. So the log is searched in time slices from the cursor outwards, 5
minutes, then 4x wider each time (20 min, 80 min, 5 h, 21 h, 3.5 days...), each slice one
indexed range query limited to the rows still wanted, until the page is full, the log (or the
filter's window) is exhausted, or the time budget would be overrun by the next slice (its cost
estimated as the last one's x4, with a margin of x2). In the last case the page is *partial*:
it holds every match newer than ``searched_to`` (none is skipped), ``has_next`` is true and its
cursor resumes from ``searched_to``, so the next page searches on from there.

Counts work the same way (``count``): exact when the whole window was counted, else a lower
bound with the time back to which it is exact. A ``deadline`` lets several searches of one
GraphQL request (a page, its total, a count) share one budget.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from backend.admin.errors import InvalidInput
from backend.admin.pagination import (
    Page,
    Sort,
    bounded_count,
    decode_cursor,
    encode_cursor,
    pack,
    page_size,
    unpack,
)

FIRST_SLICE = dt.timedelta(minutes=5)
GROWTH = 4
#: The next slice is started only if the last one's time x GROWTH x MARGIN still fits: a slice
#: reaching into pages no query has read yet costs far more than its width says (at 10M rows
#: on SQLite: a 21-hour slice 22 ms, the 3.5-day one after it 1.1 s), and a started slice
#: cannot be stopped.
MARGIN = 2
#: Seconds a page or a count may spend searching before it answers with what it found.
DEFAULT_BUDGET_S = 0.15

Clock = Callable[[], float]
M = TypeVar("M", bound=Model)


@dataclass(frozen=True, slots=True)
class Window:
    """The filter's own time bounds (``since`` inclusive, ``until`` exclusive), if any."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None


async def _edges(model: type[Model], field: str) -> tuple[dt.datetime, dt.datetime] | None:
    """Oldest and newest ``field`` of the whole table (two index lookups)."""
    low: list[Any] = await model.all().order_by(field).limit(1).values_list(field, flat=True)
    high: list[Any] = await model.all().order_by(f"-{field}").limit(1).values_list(field, flat=True)
    if not low or not high:
        return None
    return _aware(low[0]), _aware(high[0])


def _stop(now: float, budget_s: float, deadline: float | None) -> float:
    """When the search must have answered: its own budget, or a deadline it shares (a
    GraphQL request asking for a page and its count spends one budget on both)."""
    return now + budget_s if deadline is None else min(now + budget_s, deadline)


def _aware(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _after(
    qs: QuerySet[M], sort: Sort, after: str | None
) -> tuple[QuerySet[M], dt.datetime | None]:
    """``qs`` past the cursor, and the cursor's time."""
    if not after:
        return qs, None
    doc = decode_cursor(after, sort.key)
    last_id, value = doc.get("id"), unpack(doc.get("v"))
    if not isinstance(last_id, int) or not isinstance(value, dt.datetime):
        raise InvalidInput("after is not a valid cursor", field="after")
    at = _aware(value)
    f, op = sort.field, "lt" if sort.descending else "gt"
    strictly: dict[str, Any] = {f"{f}__{op}": at}
    tie: dict[str, Any] = {f: at, f"id__{op}": last_id}
    qs = qs.filter(**{f"{f}__{op}e": at}).filter(Q(**strictly) | Q(**tie))
    return qs, at


def _cursor(sort: Sort, value: dt.datetime, last_id: int) -> str:
    return encode_cursor({"k": sort.key, "id": last_id, "v": pack(value)})


async def page(
    qs: QuerySet[M],
    sort: Sort,
    *,
    first: int | None,
    after: str | None,
    window: Window = Window(),
    budget_s: float = DEFAULT_BUDGET_S,
    clock: Clock = time.perf_counter,
    deadline: float | None = None,
) -> Page[M]:
    """A keyset page of ``qs`` ordered by ``sort`` (a time field, ``id`` breaking ties),
    searched in time slices (module docstring)."""
    size = page_size(first)
    stop = _stop(clock(), budget_s, deadline)
    qs, at = _after(qs, sort, after)
    edges = await _edges(qs.model, sort.field)
    empty: Page[M] = Page([], False, None, _no_count)
    if edges is None:
        return empty
    desc, f = sort.descending, sort.field
    # The slices run from `origin` towards `end`; past `end` nothing can match.
    if desc:
        origin = min(t for t in (at, window.until, edges[1]) if t is not None)
        end = max(t for t in (window.since, edges[0]) if t is not None)
    else:
        origin = max(t for t in (at, window.since, edges[0]) if t is not None)
        end = min(t for t in (window.until, edges[1]) if t is not None)
    order = [f"-{f}", "-id"] if desc else [f, "id"]
    rows: list[M] = []
    width, near = FIRST_SLICE, None
    while True:
        far = origin - width if desc else origin + width
        last = far <= end if desc else far >= end
        q = qs
        if not last:
            q = q.filter(**{f"{f}__gte" if desc else f"{f}__lt": far})
        if near is not None:
            q = q.filter(**{f"{f}__lt" if desc else f"{f}__gte": near})
        t = clock()
        rows += await q.order_by(*order).limit(size + 1 - len(rows))
        took = clock() - t
        if len(rows) > size:
            kept = rows[:size]
            tail = kept[-1]
            return Page(kept, True, _cursor(sort, getattr(tail, f), tail.pk), _no_count)
        if last:
            cursor = _cursor(sort, getattr(rows[-1], f), rows[-1].pk) if rows else None
            return Page(rows, False, cursor, _no_count)
        if clock() + took * GROWTH * MARGIN > stop:
            # Partial: every match between the cursor and `far` is here; resume from `far`.
            # id 0 excludes `far` itself going down (it was searched) and includes it going up.
            return Page(rows, True, _cursor(sort, far, 0), _no_count, searched_to=far)
        near, width = far, width * GROWTH


async def _no_count() -> int:
    raise RuntimeError("a sliced page has no count: use logsearch.count")


@dataclass(frozen=True, slots=True)
class Counted:
    count: int
    #: The whole window was counted and ``count`` is within the limit.
    exact: bool
    #: When the budget ran out: ``count`` is exact from this time on (newest side).
    since: dt.datetime | None = None


async def count(
    qs: QuerySet[M],
    field: str,
    *,
    limit: int,
    window: Window = Window(),
    budget_s: float = DEFAULT_BUDGET_S,
    clock: Clock = time.perf_counter,
    deadline: float | None = None,
) -> Counted:
    """Rows of ``qs`` up to ``limit``, newest slices first (module docstring)."""
    stop = _stop(clock(), budget_s, deadline)
    edges = await _edges(qs.model, field)
    if edges is None:
        return Counted(0, True)
    origin = min(t for t in (window.until, edges[1]) if t is not None)
    end = max(t for t in (window.since, edges[0]) if t is not None)
    total, width, near = 0, FIRST_SLICE, None
    while True:
        far = origin - width
        last = far <= end
        q = qs if last else qs.filter(**{f"{field}__gte": far})
        if near is not None:
            q = q.filter(**{f"{field}__lt": near})
        t = clock()
        total += await bounded_count(q, limit + 1 - total)
        took = clock() - t
        if total > limit:
            return Counted(limit, False)
        if last:
            return Counted(total, True)
        if clock() + took * GROWTH * MARGIN > stop:
            return Counted(total, False, far)
        near, width = far, width * GROWTH
