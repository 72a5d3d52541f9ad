"""Which rollup table answers a window: hourly rows at the edges, daily rows in between.

A window ``[since, until)`` (whole hours) of at most two days is read from an hourly table. A
longer one is cut into the hours before its first UTC midnight, whole days, and the hours after
its last midnight. Each piece is read from the narrowest table of its granularity that has
every column the query groups and filters by (``models.daily``: ``model_hourly`` before
``usage_rollups``; ``model_daily``, ``user_daily`` before ``usage_daily``...). A window that
ends after ``now`` has no rows past ``now``, so its last day is read whole from the daily table
too (today's row holds today so far). Totals are the same either way: the writer adds each
request to every table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tortoise.functions import Sum
from tortoise.models import Model
from tortoise.queryset import QuerySet

from backend.data import histogram
from backend.data.models.daily import (
    KeyDaily,
    KeyWeekly,
    ModelDaily,
    ModelHourly,
    TagDaily,
    TagOrgDaily,
    UsageDaily,
    UserDaily,
    UserWeekly,
)
from backend.data.models.logs import KeyRollup, TagRollup, UsageRollup

HOURLY_UP_TO = dt.timedelta(hours=48)
DAY = dt.timedelta(days=1)
CENT = Decimal("0.00000001")

Tables = list[tuple[type[Model], frozenset[str]]]
_USAGE = frozenset({"org_id", "user_id", "app_id", "model", "provider", "latency_hist"})
_BY_MODEL = frozenset({"org_id", "model", "provider", "latency_hist"})
_BY_USER = frozenset({"org_id", "user_id", "app_id"})
_BY_KEY = frozenset({"org_id", "user_id", "app_id", "key_prefix"})
_BY_TAG = frozenset({"org_id", "user_id", "app_id", "tag"})

#: Granularities, coarsest first, and one step of each.
LEVELS: tuple[tuple[str, dt.timedelta], ...] = (
    ("week", dt.timedelta(days=7)),
    ("day", DAY),
    ("hour", dt.timedelta(hours=1)),
)

#: kind -> granularity -> tables, narrowest first, with their key columns (``bucket`` aside;
#: ``latency_hist`` where the table keeps one).
FAMILIES: dict[str, dict[str, Tables]] = {
    "usage": {
        "week": [(UserWeekly, _BY_USER)],
        "day": [(ModelDaily, _BY_MODEL), (UserDaily, _BY_USER), (UsageDaily, _USAGE)],
        "hour": [(ModelHourly, _BY_MODEL), (UsageRollup, _USAGE)],
    },
    "key": {
        "week": [(KeyWeekly, _BY_KEY)],
        "day": [(KeyDaily, _BY_KEY)],
        "hour": [(KeyRollup, _BY_KEY)],
    },
    "tag": {
        "day": [(TagOrgDaily, frozenset({"org_id", "tag"})), (TagDaily, _BY_TAG)],
        "hour": [(TagRollup, _BY_TAG)],
    },
}


@dataclass(frozen=True, slots=True)
class Span:
    """Read ``table``'s rows with ``since <= bucket < until``."""

    table: type[Model]
    since: dt.datetime
    until: dt.datetime


def table_for(kind: str, level: str, columns: Iterable[str]) -> type[Model] | None:
    """The narrowest ``level`` table of ``kind`` with every one of ``columns``; None: none."""
    wanted = set(columns) - {"bucket"}
    for table, has in FAMILIES[kind].get(level, []):
        if wanted <= has:
            return table
    return None


def _floor(t: dt.datetime, level: str) -> dt.datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    if level == "hour":
        return t
    t = t.replace(hour=0)
    return t - dt.timedelta(days=t.weekday()) if level == "week" else t


def spans(
    kind: str,
    columns: Iterable[str],
    since: dt.datetime,
    until: dt.datetime,
    *,
    now: dt.datetime | None = None,
    coarsest: str = "week",
) -> list[Span]:
    """The pieces of ``[since, until)`` (aware, whole hours) and the table each is read from:
    whole ISO weeks, then whole days, then hours, each from the narrowest table that has
    ``columns`` (what the query groups and filters by, beside the bucket); windows up to two
    days are read per hour. ``now``: the gateway's clock, when the window may reach it (the
    last week or day is then read whole: nothing is dated after now). ``coarsest``: no
    coarser rows than this (``day`` for a series per day).
    """
    since, until = since.astimezone(dt.UTC), until.astimezone(dt.UTC)
    if until <= since:
        return []
    allowed = LEVELS[[lv for lv, _ in LEVELS].index(coarsest) :]
    levels = [(lv, step, table_for(kind, lv, columns)) for lv, step in allowed]
    usable = [(lv, step, t) for lv, step, t in levels if t is not None]
    if not usable or usable[-1][0] != "hour":
        raise ValueError(f"no hourly {kind} table has {sorted(set(columns))}")
    if until - since <= HOURLY_UP_TO:
        usable = usable[-1:]
    open_end = now is not None and until >= now.astimezone(dt.UTC)
    return _cut(since, until, open_end, usable)


def _cut(
    since: dt.datetime,
    until: dt.datetime,
    open_end: bool,
    levels: Sequence[tuple[str, dt.timedelta, type[Model] | None]],
) -> list[Span]:
    (level, step, table), finer = levels[0], levels[1:]
    assert table is not None
    if not finer:
        return [Span(table, since, until)]
    first = _floor(since, level)
    if first != since:
        first += step
    last = _floor(until, level)
    if open_end and last != until and last + step > first:
        last = until = last + step  # the current week or day, so far
    if first >= last:
        return _cut(since, until, open_end, finer)
    out = _cut(since, first, False, finer) if since < first else []
    out.append(Span(table, first, last))
    if last < until:
        out += _cut(last, until, open_end, finer)
    return out


Row = dict[str, Any]


def _cost(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value.quantize(CENT)
    return Decimal(str(value or 0)).quantize(CENT)  # SQLite sums decimal text as floats


def _converter(name: str) -> Callable[[Any], Any]:
    if name == "cost_usd":
        return _cost
    if name == "latency_ms_sum":
        return lambda v: float(v or 0)
    return lambda v: int(v or 0)


async def grouped(
    kind: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    group_by: Sequence[str],
    sums: Sequence[str],
    filters: Mapping[str, Any] | None = None,
    narrow: Callable[[QuerySet[Any]], QuerySet[Any]] | None = None,
    also: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> list[Row]:
    """Totals of ``sums`` per ``group_by`` over ``[since, until)``, whatever tables the window
    is read from (``spans``, queried concurrently), added up across them.

    ``filters``: column -> value (equality); ``narrow``: any further lookups, on the columns
    named in ``also``. A ``bucket`` in ``group_by`` is the row's bucket as stored: an hour, or
    a day's midnight on daily rows (callers that group by day truncate it themselves); such
    a query never reads weekly rows.
    """
    filters = dict(filters or {})
    columns = {*group_by, *filters, *also} - {"bucket"}
    totals = {f"t_{name}": Sum(name) for name in sums}

    async def read(span: Span) -> list[tuple[Any, ...]]:
        qs: QuerySet[Any] = span.table.filter(
            bucket__gte=span.since, bucket__lt=span.until, **filters
        )
        if narrow is not None:
            qs = narrow(qs)
        query = qs.annotate(**totals)
        if group_by:
            query = query.group_by(*group_by)
        return await _raw(query.values(*group_by, *totals), [*group_by, *totals])

    pieces = spans(
        kind, columns, since, until, now=now, coarsest="day" if "bucket" in group_by else "week"
    )
    parts = await asyncio.gather(*(read(s) for s in pieces))
    n, convert = len(group_by), [_converter(s) for s in sums]
    bucket = group_by.index("bucket") if "bucket" in group_by else None
    merged: dict[tuple[Any, ...], list[Any]] = {}
    for rows in parts:
        for r in rows:
            values = [c(v) for c, v in zip(convert, r[n:], strict=True)]
            seen = merged.get(r[:n])
            if seen is None:
                merged[r[:n]] = values
            else:
                for i, v in enumerate(values):
                    seen[i] += v
    out = [
        dict(zip(group_by, key, strict=True)) | dict(zip(sums, values, strict=True))
        for key, values in merged.items()
    ]
    if bucket is not None:
        # Raw rows: SQLite returns its text; every table's bucket converts alike.
        for row in out:
            row["bucket"] = _BUCKET.to_python_value(row["bucket"])
    return out


#: How a bucket column converts a raw value (the same field on every rollup table).
_BUCKET = UsageRollup._meta.fields_map["bucket"]


async def _raw(query: Any, names: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows of a ``values(*names)`` query as the driver returns them, as tuples in
    ``names`` order: Tortoise would convert every value through its field (~15 us a row), and
    these are a few ints, floats and decimals per group, converted once by ``grouped``."""
    query._choose_db_if_not_chosen()
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    _, rows = await query._db.execute_query(sql, params)
    if rows and list(rows[0].keys()) == list(names):
        # The usual case (columns selected in ``names`` order): one C-level copy per row,
        # not a name lookup per value (18 -> 3 ms for the 8,000 rows of analytics by key 30 d).
        return [tuple(r) for r in rows]
    return [tuple(r[name] for name in names) for r in rows]


async def histograms(
    kind: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    group_by: str,
    filters: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> dict[Any, dict[str, int]]:
    """Latency histograms per ``group_by`` value over the window, merged in Python (one small
    JSON document per rollup row read)."""
    filters = dict(filters or {})
    out: dict[Any, dict[str, int]] = {}
    for span in spans(kind, {group_by, *filters, "latency_hist"}, since, until, now=now):
        rows = await span.table.filter(
            bucket__gte=span.since,
            bucket__lt=span.until,
            latency_hist__not_isnull=True,
            **filters,
        ).values_list(group_by, "latency_hist")
        for value, hist in rows:
            histogram.merge(out.setdefault(value, {}), hist or {})
    return out


def both(*filters: Mapping[str, Any]) -> dict[str, Any] | None:
    """Equality filters that must all hold, as one; None when two disagree (nothing matches)."""
    out: dict[str, Any] = {}
    for f in filters:
        for name, value in f.items():
            if name in out and out[name] != value:
                return None
            out[name] = value
    return out
