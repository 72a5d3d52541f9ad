"""The log writer's daily and narrow rollups (``models.daily``), summed from a flush's hourly batch.

A flush already groups its requests into hourly rollup keys (usage, key, tag). Each daily table
is that batch with the hour replaced by its day and, for the narrow tables, some key columns
dropped (``model_hourly`` keeps the hour); the totals of keys that meet are added (histograms
merged). So the daily rows cost one
pass over the flush's hourly keys (not its requests) and two statements per table
(``rollups.upsert_totals``), in the transaction that writes the hourly rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.models import Model

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
from backend.data.rollups import upsert_totals

Key = tuple[Any, ...]
Batch = dict[Key, dict[str, Any]]
Merge = Callable[[dict[str, Any] | None, dict[str, Any]], dict[str, Any]]
Encoders = Callable[[type[Model]], dict[str, Callable[[Any], Any]]]


@dataclass(frozen=True)
class Daily:
    model: type[Model]
    #: the hourly batch it is summed from: usage | key | tag
    source: str
    #: the table's key columns (``bucket`` first) and their positions in the source key
    key_fields: tuple[str, ...]
    picks: tuple[int, ...]
    hist: bool
    #: What a row sums: day, week (ISO, from Monday) or hour (a narrow hourly table).
    period: str = "day"


#: Source keys: usage (bucket, user, app, org, model, provider); key and tag (bucket, org,
#: user, app, key prefix | tag), as in ``batch``.
TABLES = (
    Daily(
        UsageDaily,
        "usage",
        ("bucket", "user_id", "app_id", "org_id", "model", "provider"),
        (0, 1, 2, 3, 4, 5),
        True,
    ),
    Daily(ModelDaily, "usage", ("bucket", "org_id", "model", "provider"), (0, 3, 4, 5), True),
    Daily(UserDaily, "usage", ("bucket", "org_id", "user_id", "app_id"), (0, 3, 1, 2), False),
    Daily(
        KeyDaily,
        "key",
        ("bucket", "org_id", "user_id", "app_id", "key_prefix"),
        (0, 1, 2, 3, 4),
        False,
    ),
    Daily(
        TagDaily, "tag", ("bucket", "org_id", "user_id", "app_id", "tag"), (0, 1, 2, 3, 4), False
    ),
    Daily(TagOrgDaily, "tag", ("bucket", "org_id", "tag"), (0, 1, 4), False),
    Daily(
        ModelHourly, "usage", ("bucket", "org_id", "model", "provider"), (0, 3, 4, 5), True, "hour"
    ),
    Daily(
        UserWeekly, "usage", ("bucket", "org_id", "user_id", "app_id"), (0, 3, 1, 2), False, "week"
    ),
    Daily(
        KeyWeekly,
        "key",
        ("bucket", "org_id", "user_id", "app_id", "key_prefix"),
        (0, 1, 2, 3, 4),
        False,
        "week",
    ),
)


def day(bucket: dt.datetime) -> dt.datetime:
    """The UTC midnight that starts ``bucket``'s day."""
    return bucket.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def week(bucket: dt.datetime) -> dt.datetime:
    """Monday 00:00 UTC of ``bucket``'s ISO week."""
    midnight = day(bucket)
    return midnight - dt.timedelta(days=midnight.weekday())


_PERIODS: dict[str, Callable[[dt.datetime], dt.datetime]] = {
    "day": day,
    "week": week,
    "hour": lambda bucket: bucket,
}


def coarsen(batch: Batch, picks: tuple[int, ...], hist: bool, period: str = "day") -> Batch:
    """``batch`` re-keyed to ``period`` (an hourly batch stays hourly) and the picked columns,
    totals added per new key."""
    out: Batch = {}
    start = _PERIODS[period]
    #: A flush's keys share a few hours: each hour's start computed once.
    starts: dict[dt.datetime, dt.datetime] = {}
    for key, totals in batch.items():
        begins = starts.get(key[0])
        if begins is None:
            begins = starts[key[0]] = start(key[0])
        new = (begins, *(key[i] for i in picks[1:]))
        agg = out.get(new)
        if agg is None:
            agg = {k: v for k, v in totals.items() if k != "latency_hist"}
            if hist:
                agg["latency_hist"] = dict(totals.get("latency_hist") or {})
            out[new] = agg
            continue
        for name, value in totals.items():
            if name == "latency_hist":
                if hist:
                    histogram.merge(agg["latency_hist"], value or {})
            else:
                agg[name] += value
    return out


async def write(
    conn: Any,
    batches: dict[str, Batch],
    *,
    add: Merge,
    add_with_hist: Merge,
    encoders: Encoders,
) -> None:
    """Add a flush's hourly ``batches`` (by source) to every daily table."""
    for t in TABLES:
        batch = batches.get(t.source)
        if not batch:
            continue
        rows = coarsen(batch, t.picks, t.hist, t.period)
        if len(batch) > 100:
            await asyncio.sleep(0)  # a step of its own: ~2 µs a key
        await upsert_totals(
            conn,
            t.model,
            t.key_fields,
            rows,
            add_with_hist if t.hist else add,
            encoders,
        )


#: (table, hourly table it sums, key columns after ``bucket``, histogram, period)
_REBUILD = (
    (
        "usage_daily",
        "usage_rollups",
        ("user_id", "app_id", "org_id", "model", "provider"),
        True,
        "day",
    ),
    ("model_daily", "usage_rollups", ("org_id", "model", "provider"), True, "day"),
    ("user_daily", "usage_rollups", ("org_id", "user_id", "app_id"), False, "day"),
    ("key_daily", "key_rollups", ("org_id", "user_id", "app_id", "key_prefix"), False, "day"),
    ("tag_daily", "tag_rollups", ("org_id", "user_id", "app_id", "tag"), False, "day"),
    ("tag_org_daily", "tag_rollups", ("org_id", "tag"), False, "day"),
    ("model_hourly", "usage_rollups", ("org_id", "model", "provider"), True, "hour"),
    ("user_weekly", "usage_rollups", ("org_id", "user_id", "app_id"), False, "week"),
    ("key_weekly", "key_rollups", ("org_id", "user_id", "app_id", "key_prefix"), False, "week"),
)
_TOTALS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "unknown_cost_requests",
    "latency_ms_sum",
)
_TAG_TOTALS = ("requests", "errors", "input_tokens", "output_tokens", "unknown_cost_requests")


def _rebuild_sql(
    pg: bool, daily: str, hourly: str, keys: tuple[str, ...], hist: bool, period: str = "day"
) -> str:
    if period == "hour":
        day = "bucket"
    elif pg:
        day = f"(date_trunc('{period}', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    elif period == "week":
        # Monday of the ISO week: %w is 0 on Sunday.
        day = (
            "(date(substr(bucket, 1, 10), '-' || ((CAST(strftime('%w', substr(bucket, 1, 10))"
            " AS INTEGER) + 6) % 7) || ' days') || ' 00:00:00+00:00')"
        )
    else:
        day = "(substr(bucket, 1, 10) || ' 00:00:00+00:00')"
    if pg:
        cost = "sum(cost_usd)"
    else:
        # SQLite keeps decimals as text: add them as integer 1e-8 units, exactly.
        units = "sum(CAST(round(CAST(cost_usd AS REAL) * 100000000) AS INTEGER))"
        cost = f"printf('%d.%08d', {units} / 100000000, {units} % 100000000)"
    totals = _TAG_TOTALS if daily.startswith("tag_") else _TOTALS
    cols = ", ".join(keys)
    sums = ", ".join(f"sum({x}) AS s_{x}" for x in totals)
    t = f"SELECT {day} AS day, {cols}, {sums}, {cost} AS cost FROM {hourly} GROUP BY {day}, {cols}"
    target = f"INSERT INTO {daily} (bucket, {cols}, {', '.join(totals)}, cost_usd" + (
        ", latency_hist)" if hist else ")"
    )
    out = ", ".join(["t.day", *(f"t.{k}" for k in keys), *(f"t.s_{x}" for x in totals), "t.cost"])
    # Day by day, as the writer appends them: a day's rows stay together on disk.
    if not hist:
        return f"WITH t AS ({t}) {target} SELECT {out} FROM t ORDER BY t.day"
    if pg:
        each, bucket = "jsonb_each_text(latency_hist) AS j(b, n)", "j.b"
        count, agg = "sum(j.n::bigint)", "jsonb_object_agg(b, n)"
    else:
        each, bucket = "json_each(latency_hist) AS j", "j.key"
        count, agg = "sum(j.value)", "json_group_object(b, n)"
    parts = (
        f"SELECT {day} AS day, {cols}, {bucket} AS b, {count} AS n FROM {hourly}, {each}"
        f" WHERE latency_hist IS NOT NULL GROUP BY {day}, {cols}, {bucket}"
    )
    h = f"SELECT day, {cols}, {agg} AS hist FROM p GROUP BY day, {cols}"
    on = " AND ".join(f"h.{k} = t.{k}" for k in ("day", *keys))
    return (
        f"WITH t AS ({t}), p AS ({parts}), h AS ({h}) {target}"
        f" SELECT {out}, h.hist FROM t LEFT JOIN h ON {on} ORDER BY t.day"
    )


async def rebuild(conn: Any, tables: Sequence[str] | None = None) -> None:
    """Recompute the daily and narrow tables (``tables``; None: all) from the hourly rollups:
    the migrations' backfill; tests that write hourly rows directly call it too."""
    pg = conn.capabilities.dialect == "postgres"
    for table, hourly, keys, hist, period in _REBUILD:
        if tables is not None and table not in tables:
            continue
        await conn.execute_script(f"DELETE FROM {table}")
        await conn.execute_script(_rebuild_sql(pg, table, hourly, keys, hist, period))
