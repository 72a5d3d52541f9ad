"""Cap periods: ISO weeks and calendar months in UTC, across month and year boundaries."""

from __future__ import annotations

import datetime as dt

import pytest
from budget_helpers import at
from hypothesis import given
from hypothesis import strategies as st

from backend.budget.periods import (
    earliest_relevant_start,
    next_period_start,
    period_kind,
    period_start,
    previous_period_start,
)


@pytest.mark.parametrize(
    ("now", "start", "nxt", "prev"),
    [
        # A Wednesday.
        (at(2025, 1, 8, 15, 30), at(2025, 1, 6), at(2025, 1, 13), at(2024, 12, 30)),
        # Monday 00:00 starts its own week; the last microsecond of Sunday is the week before.
        (at(2025, 1, 13), at(2025, 1, 13), at(2025, 1, 20), at(2025, 1, 6)),
        (
            at(2025, 1, 12, 23, 59, 59) + dt.timedelta(microseconds=999_999),
            at(2025, 1, 6),
            at(2025, 1, 13),
            at(2024, 12, 30),
        ),
        # New Year's Day 2026 is a Thursday: its ISO week began in 2025.
        (at(2026, 1, 1, 9), at(2025, 12, 29), at(2026, 1, 5), at(2025, 12, 22)),
        # 2021-01-03 (Sunday) is in ISO week 53 of 2020.
        (at(2021, 1, 3, 12), at(2020, 12, 28), at(2021, 1, 4), at(2020, 12, 21)),
    ],
)
def test_iso_week(
    now: dt.datetime, start: dt.datetime, nxt: dt.datetime, prev: dt.datetime
) -> None:
    assert period_start("weekly", now) == start
    assert next_period_start("weekly", now) == nxt
    assert previous_period_start("weekly", now) == prev
    assert start.weekday() == 0
    assert start.isocalendar()[:2] == now.isocalendar()[:2]


@pytest.mark.parametrize(
    ("now", "start", "nxt", "prev"),
    [
        (at(2025, 3, 15, 8), at(2025, 3, 1), at(2025, 4, 1), at(2025, 2, 1)),
        (at(2025, 12, 31, 23, 59, 59), at(2025, 12, 1), at(2026, 1, 1), at(2025, 11, 1)),
        (at(2026, 1, 1), at(2026, 1, 1), at(2026, 2, 1), at(2025, 12, 1)),
        (at(2024, 2, 29, 12), at(2024, 2, 1), at(2024, 3, 1), at(2024, 1, 1)),
    ],
)
def test_calendar_month(
    now: dt.datetime, start: dt.datetime, nxt: dt.datetime, prev: dt.datetime
) -> None:
    assert period_start("monthly", now) == start
    assert next_period_start("monthly", now) == nxt
    assert previous_period_start("monthly", now) == prev


def test_periods_are_utc_whatever_the_input_zone() -> None:
    # Monday 01:00 at UTC+2 is still Sunday in UTC: the previous week.
    plus_two = dt.timezone(dt.timedelta(hours=2))
    now = dt.datetime(2026, 1, 5, 1, 0, tzinfo=plus_two)
    assert period_start("weekly", now) == at(2025, 12, 29)
    assert period_start("weekly", now).tzinfo == dt.UTC
    # 1 March 00:30 at UTC+1 is still February in UTC.
    march = dt.datetime(2025, 3, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert period_start("monthly", march) == at(2025, 2, 1)
    # Naive datetimes are taken as UTC.
    assert period_start("weekly", dt.datetime(2025, 1, 8)) == at(2025, 1, 6)


def test_period_kind_and_horizon() -> None:
    assert period_kind("weekly") == "weekly"
    assert period_kind("monthly") == "monthly"
    assert period_kind("daily") == "daily"
    assert period_kind("fortnightly") == "monthly"
    assert period_kind(None) == "monthly"
    # On 3 March the oldest readable period is the previous month (1 Feb), older than last week.
    assert earliest_relevant_start(at(2025, 3, 3, 10)) == at(2025, 2, 1)
    # On 31 March the previous week (24 March) is younger than the previous month (1 Feb).
    assert earliest_relevant_start(at(2025, 3, 31)) == at(2025, 2, 1)
    with pytest.raises(ValueError, match="unknown period kind"):
        period_start("hourly", at(2025, 1, 1))  # type: ignore[arg-type]
    # A day runs from 00:00 UTC; the previous one is the day before.
    assert period_start("daily", at(2025, 3, 1, 23, 59)) == at(2025, 3, 1)
    assert next_period_start("daily", at(2025, 12, 31, 5)) == at(2026, 1, 1)
    assert previous_period_start("daily", at(2025, 3, 1, 5)) == at(2025, 2, 28)


moments = st.datetimes(
    min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)


@given(moments)
def test_week_properties(now: dt.datetime) -> None:
    start = period_start("weekly", now)
    assert start <= now < next_period_start("weekly", now) == start + dt.timedelta(days=7)
    assert (start.weekday(), start.hour, start.minute, start.second, start.microsecond) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert start.isocalendar()[:2] == now.isocalendar()[:2]
    assert next_period_start("weekly", previous_period_start("weekly", now)) == start


@given(moments)
def test_month_properties(now: dt.datetime) -> None:
    start = period_start("monthly", now)
    nxt = next_period_start("monthly", now)
    assert start <= now < nxt
    assert (start.year, start.month, start.day, start.hour) == (now.year, now.month, 1, 0)
    assert nxt.day == 1 and nxt == period_start("monthly", nxt)
    assert (nxt - dt.timedelta(microseconds=1)).month == now.month
    assert next_period_start("monthly", previous_period_start("monthly", now)) == start
