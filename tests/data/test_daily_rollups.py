"""Daily rollups agree with the hourly ones, and long windows read them with the same totals.

The log writer adds each flush to the hourly and the daily tables; ``daily.rebuild`` (the
migration's backfill) derives the daily tables from the hourly ones. Both must give the same
rows, histograms included. A window read through ``windows.grouped`` (hourly edges, daily
middle) must equal the same window summed over the hourly rows alone. SQLite by default,
PostgreSQL in the suite's second pass.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from tortoise import connections

from backend.data import daily, windows
from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.daily import ModelDaily, UsageDaily, UserDaily
from backend.data.models.logs import KeyRollup, UsageRollup

T0 = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)


def _records(n: int = 240, every: dt.timedelta = dt.timedelta(minutes=24)) -> list[LogRecord]:
    """Requests every 24 minutes (four days): users, apps, models, tags, keys, one priced
    model and one without a price, some superseded attempts and errors."""
    out = []
    for i in range(n):
        user = i % 3 + 1
        out.append(
            LogRecord(
                f"req-{i}",
                T0 - every * i,
                "/v1/chat/completions",
                status=502 if i % 11 == 0 else 200,
                key_prefix=f"sb-key{user}",
                user_id=None if i % 5 == 0 else user,
                app_id=7 if i % 5 == 0 else None,
                org_id=1 + i % 2,
                actual_model="openai/gpt-4o" if i % 4 else "acme/unpriced",
                provider="openai" if i % 4 else "acme",
                input_tokens=10 + i,
                output_tokens=i % 7,
                cached_tokens=i % 3,
                cost_usd=None if i % 4 == 0 else Decimal("0.00012345") * (i + 1),
                latency_ms=float(30 + (i * 37) % 900),
                superseded=i % 13 == 0,
                tags=("team-a",) if i % 2 else ("team-a", "batch"),
            )
        )
    return out


async def _write(records: list[LogRecord], per_flush: int = 50) -> None:
    writer = LogWriter(LocalBus())
    for start in range(0, len(records), per_flush):
        for r in records[start : start + per_flush]:
            writer.submit(r)
        assert await writer.flush()


async def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for t in daily.TABLES:
        fields = [f for f in t.model._meta.db_fields if f != "id"]
        rows = await t.model.all().values_list(*fields)
        out[t.model._meta.db_table] = sorted(
            (
                tuple(
                    dt_utc(v)
                    if isinstance(v, dt.datetime)
                    else Decimal(str(v))
                    if f == "cost_usd"
                    else tuple(sorted(v.items()))
                    if isinstance(v, dict)
                    else v
                    for f, v in zip(fields, row, strict=True)
                )
                for row in rows
            ),
            key=repr,
        )
    return out


def dt_utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


async def test_writer_and_rebuild_agree(db: str) -> None:
    await _write(_records())
    written = await _snapshot()
    assert written["usage_daily"] and written["key_daily"] and written["tag_daily"]
    await daily.rebuild(connections.get("default"))
    assert await _snapshot() == written


async def test_daily_totals_equal_the_hourly_ones(db: str) -> None:
    records = _records()
    await _write(records)
    billed = [r for r in records if not r.superseded]
    got = await ModelDaily.all().values_list("requests", "cost_usd", "latency_hist")
    assert sum(r[0] for r in got) == len(billed)
    assert sum(Decimal(str(r[1])) for r in got) == sum(r.cost_usd or 0 for r in billed)
    assert sum(sum(h.values()) for _, _, h in got) == len(billed)
    users = await UserDaily.all().values_list("user_id", "requests")
    assert sum(n for u, n in users if u == 2) == sum(1 for r in billed if r.user_id == 2)
    assert await UsageDaily.all().count() >= await ModelDaily.all().count()


@pytest.mark.parametrize(
    ("since", "until", "now", "tables"),
    [
        # Up to two days: hourly only (the narrow hourly table has organization and model).
        ("2026-03-09T10:00", "2026-03-10T13:00", None, ["model_hourly"]),
        # Longer: hourly edges, whole days in between.
        (
            "2026-03-06T10:00",
            "2026-03-10T13:00",
            None,
            ["model_hourly", "model_daily", "model_hourly"],
        ),
        # Ending after now: the last day is read whole from the daily table.
        (
            "2026-03-06T10:00",
            "2026-03-10T13:00",
            "2026-03-10T12:30",
            ["model_hourly", "model_daily"],
        ),
        # Day-aligned: daily only.
        ("2026-03-06T00:00", "2026-03-10T00:00", None, ["model_daily"]),
    ],
)
def test_spans(since: str, until: str, now: str | None, tables: list[str]) -> None:
    check_spans({"org_id", "model"}, since, until, now, tables)


@pytest.mark.parametrize(
    ("since", "until", "now", "tables"),
    [
        # Three weeks and a bit (2026-03-02 and -09 are Mondays): hours, days, weeks, days, hours.
        (
            "2026-02-18T10:00",
            "2026-03-11T13:00",
            None,
            ["usage_rollups", "user_daily", "user_weekly", "user_daily", "usage_rollups"],
        ),
        # Ending after now: this week's row is this week so far.
        (
            "2026-02-18T10:00",
            "2026-03-11T13:00",
            "2026-03-11T12:30",
            ["usage_rollups", "user_daily", "user_weekly"],
        ),
        # Less than a week: days only.
        ("2026-03-03T00:00", "2026-03-08T00:00", None, ["user_daily"]),
    ],
)
def test_weekly_spans(since: str, until: str, now: str | None, tables: list[str]) -> None:
    check_spans({"user_id"}, since, until, now, tables)


def check_spans(
    columns: set[str], since: str, until: str, now: str | None, tables: list[str]
) -> None:
    def t(s: str) -> dt.datetime:
        return dt.datetime.fromisoformat(s).replace(tzinfo=dt.UTC)

    got = windows.spans("usage", columns, t(since), t(until), now=None if now is None else t(now))
    assert [s.table._meta.db_table for s in got] == tables
    # Contiguous, covering the window (an open end reaches the next midnight or Monday).
    assert got[0].since == t(since)
    assert all(a.until == b.since for a, b in itertools.pairwise(got))
    assert got[-1].until >= t(until)


async def test_long_windows_read_like_hourly(db: str) -> None:
    await _write(_records())
    since = (T0 - dt.timedelta(days=3, hours=7)).replace(minute=0)
    until = (T0 - dt.timedelta(hours=5)).replace(minute=0)
    sums = ("requests", "errors", "cost_usd", "unknown_cost_requests", "input_tokens")
    for group in (("model",), ("user_id",), ("org_id", "provider")):
        got = await windows.grouped(
            "usage", since, until, group_by=group, sums=sums, filters={"org_id": 1}
        )
        rows = await UsageRollup.filter(bucket__gte=since, bucket__lt=until, org_id=1).values(
            *group, *sums
        )
        want: dict[tuple[Any, ...], dict[str, Any]] = {}
        for r in rows:
            w = want.setdefault(tuple(r[g] for g in group), dict.fromkeys(sums, 0))
            for s in sums:
                w[s] += Decimal(str(r[s])) if s == "cost_usd" else r[s]
        assert {tuple(r[g] for g in group): {s: r[s] for s in sums} for r in got} == want
    keys = await windows.grouped("key", since, until, group_by=("key_prefix",), sums=("requests",))
    hourly = await KeyRollup.filter(bucket__gte=since, bucket__lt=until).values_list(
        "key_prefix", "requests"
    )
    assert {r["key_prefix"]: r["requests"] for r in keys} == {
        p: sum(n for q, n in hourly if q == p) for p, _ in hourly
    }
    # Filters that cannot both hold match nothing.
    assert windows.both({"user_id": 1}, {"user_id": 2}) is None


async def test_weeks_read_like_hours(db: str) -> None:
    """Four weeks of traffic every 3 hours: a 24-day window through user_weekly and key_weekly
    equals the same window summed over the hourly rows."""
    await _write(_records(224, dt.timedelta(hours=3)), per_flush=40)
    since = (T0 - dt.timedelta(days=24, hours=5)).replace(minute=0)
    until = (T0 - dt.timedelta(hours=2)).replace(minute=0)
    used = windows.spans("usage", {"user_id"}, since, until)
    assert "user_weekly" in [s.table._meta.db_table for s in used]
    sums = ("requests", "errors", "cost_usd", "input_tokens")
    got = await windows.grouped("usage", since, until, group_by=("user_id",), sums=sums)
    rows = await UsageRollup.filter(bucket__gte=since, bucket__lt=until).values("user_id", *sums)
    want: dict[int, dict[str, Any]] = {}
    for r in rows:
        w = want.setdefault(r["user_id"], dict.fromkeys(sums, 0))
        for s in sums:
            w[s] += Decimal(str(r[s])) if s == "cost_usd" else r[s]
    assert {r["user_id"]: {s: r[s] for s in sums} for r in got} == want
    keys = await windows.grouped("key", since, until, group_by=("key_prefix",), sums=("requests",))
    hourly = await KeyRollup.filter(bucket__gte=since, bucket__lt=until).values_list(
        "key_prefix", "requests"
    )
    assert {r["key_prefix"]: r["requests"] for r in keys} == {
        p: sum(n for q, n in hourly if q == p) for p, _ in hourly
    }
