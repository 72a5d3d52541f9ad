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
    ModelDaily,
    ModelHourly,
    TagDaily,
    TagOrgDaily,
    UsageDaily,
    UserDaily,
)
from backend.data.models.logs import KeyRollup, TagRollup, UsageRollup

HOURLY_UP_TO = dt.timedelta(hours=48)
DAY = dt.timedelta(days=1)
CENT = Decimal("0.00000001")

Tables = list[tuple[type[Model], frozenset[str]]]
_USAGE = frozenset({"org_id", "user_id", "app_id", "model", "provider", "latency_hist"})
_BY_MODEL = frozenset({"org_id", "model", "provider", "latency_hist"})
_BY_USER = frozenset({"org_id", "user_id", "app_id"})

#: kind -> (hourly tables, daily tables), each narrowest first with its key columns (``bucket``
#: aside; ``latency_hist`` where the table keeps one).
FAMILIES: dict[str, tuple[Tables, Tables]] = {
    "usage": (
        [(ModelHourly, _BY_MODEL), (UsageRollup, _USAGE)],
        [(ModelDaily, _BY_MODEL), (UserDaily, _BY_USER), (UsageDaily, _USAGE)],
    ),
    "key": (
        [(KeyRollup, frozenset({"org_id", "user_id", "app_id", "key_prefix"}))],
        [(KeyDaily, frozenset({"org_id", "user_id", "app_id", "key_prefix"}))],
    ),
    "tag": (
        [(TagRollup, frozenset({"org_id", "user_id", "app_id", "tag"}))],
        [
            (TagOrgDaily, frozenset({"org_id", "tag"})),
            (TagDaily, frozenset({"org_id", "user_id", "app_id", "tag"})),
        ],
    ),
}


@dataclass(frozen=True, slots=True)
class Span:
    """Read ``table``'s rows with ``since <= bucket < until``."""

    table: type[Model]
    since: dt.datetime
    until: dt.datetime


def _narrowest(tables: Tables, columns: Iterable[str]) -> type[Model]:
    wanted = set(columns) - {"bucket"}
    for table, has in tables:
        if wanted <= has:
            return table
    raise ValueError(f"no rollup table has {sorted(wanted)}")


def daily_table(kind: str, columns: Iterable[str]) -> type[Model]:
    """The narrowest daily table of ``kind`` with every one of ``columns``."""
    return _narrowest(FAMILIES[kind][1], columns)


def hourly_table(kind: str, columns: Iterable[str]) -> type[Model]:
    """The narrowest hourly table of ``kind`` with every one of ``columns``."""
    return _narrowest(FAMILIES[kind][0], columns)


def _midnight(t: dt.datetime) -> dt.datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def spans(
    kind: str,
    columns: Iterable[str],
    since: dt.datetime,
    until: dt.datetime,
    *,
    now: dt.datetime | None = None,
) -> list[Span]:
    """The pieces of ``[since, until)`` (aware, whole hours) and the table each is read from.

    ``columns``: what the query groups and filters by (beside the bucket). ``now``: the
    gateway's clock, when the window may reach it (see the module docstring).
    """
    hourly = hourly_table(kind, columns)
    since, until = since.astimezone(dt.UTC), until.astimezone(dt.UTC)
    if until <= since:
        return []
    if until - since <= HOURLY_UP_TO:
        return [Span(hourly, since, until)]
    daily = daily_table(kind, columns)
    first = _midnight(since) + (DAY if _midnight(since) != since else dt.timedelta(0))
    last = _midnight(until)
    if now is not None and until >= now.astimezone(dt.UTC) and last != until:
        last = until = last + DAY  # nothing after now: today's row is today so far
    out = []
    if since < first:
        out.append(Span(hourly, since, first))
    if first < last:
        out.append(Span(daily, first, last))
    if last < until:
        out.append(Span(hourly, last, until))
    return out


Row = dict[str, Any]


def _number(name: str, value: Any) -> Any:
    if name == "cost_usd":
        return Decimal(str(value or 0)).quantize(CENT)  # SQLite sums decimal text as floats
    if name == "latency_ms_sum":
        return float(value or 0)
    return int(value or 0)


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
    is read from (``spans``), added up across them.

    ``filters``: column -> value (equality); ``narrow``: any further lookups, on the columns
    named in ``also``. A ``bucket`` in ``group_by`` is the row's bucket as stored: an hour, or
    a day's midnight on daily rows (callers that group by day truncate it themselves).
    """
    filters = dict(filters or {})
    columns = {*group_by, *filters, *also} - {"bucket"}
    merged: dict[tuple[Any, ...], Row] = {}
    for span in spans(kind, columns, since, until, now=now):
        qs: QuerySet[Any] = span.table.filter(
            bucket__gte=span.since, bucket__lt=span.until, **filters
        )
        if narrow is not None:
            qs = narrow(qs)
        totals = {f"t_{name}": Sum(name) for name in sums}
        query = qs.annotate(**totals)
        if group_by:
            query = query.group_by(*group_by)
        for r in await query.values(*group_by, *totals):
            key = tuple(r[g] for g in group_by)
            row = merged.get(key)
            if row is None:
                merged[key] = row = {g: r[g] for g in group_by} | {s: _number(s, 0) for s in sums}
            for s in sums:
                row[s] += _number(s, r[f"t_{s}"])
    return list(merged.values())


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
