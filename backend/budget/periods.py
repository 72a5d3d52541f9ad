"""Cap periods in UTC: the day (00:00 UTC), the ISO week (from Monday 00:00 UTC) and the calendar
month (1st 00:00 UTC).

Pure functions of ``now``; a naive datetime is taken to be UTC already. Every result is an aware
UTC datetime, so counters keyed by a period start compare equal whatever clock produced them.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

PeriodKind = Literal["daily", "weekly", "monthly"]
PERIOD_KINDS: tuple[PeriodKind, ...] = ("daily", "weekly", "monthly")

_DAY = dt.timedelta(days=1)
_WEEK = dt.timedelta(days=7)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC)


def period_kind(value: str | None) -> PeriodKind:
    """Normalise a stored ``cap_period``: anything but ``daily`` or ``weekly`` is monthly (the
    default)."""
    if value == "weekly":
        return "weekly"
    if value == "daily":
        return "daily"
    return "monthly"


def period_start(kind: PeriodKind, now: dt.datetime) -> dt.datetime:
    """Start of the period containing ``now``."""
    utc = as_utc(now)
    if kind == "daily":
        return dt.datetime(utc.year, utc.month, utc.day, tzinfo=dt.UTC)
    if kind == "weekly":
        monday = utc.date() - dt.timedelta(days=utc.weekday())
        return dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)
    if kind == "monthly":
        return dt.datetime(utc.year, utc.month, 1, tzinfo=dt.UTC)
    raise ValueError(f"unknown period kind {kind!r}")


def next_period_start(kind: PeriodKind, now: dt.datetime) -> dt.datetime:
    """Start of the period after the one containing ``now`` (when a cap resets)."""
    start = period_start(kind, now)
    if kind == "daily":
        return start + _DAY
    if kind == "weekly":
        return start + _WEEK
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def previous_period_start(kind: PeriodKind, now: dt.datetime) -> dt.datetime:
    """Start of the period before the one containing ``now`` (whose unused cap may roll over)."""
    start = period_start(kind, now)
    if kind == "daily":
        return start - _DAY
    if kind == "weekly":
        return start - _WEEK
    if start.month == 1:
        return start.replace(year=start.year - 1, month=12)
    return start.replace(month=start.month - 1)


def earliest_relevant_start(now: dt.datetime) -> dt.datetime:
    """Oldest period start any cap can still read at ``now`` (a previous week or month)."""
    return min(previous_period_start(kind, now) for kind in PERIOD_KINDS)
