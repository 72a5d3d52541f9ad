"""Every rollup row holds exactly the sums of its requests, whatever way the writer adds them up.

Records of every kind (errors, superseded attempts, cache hits, unpriced answers, tags, requests
without a key, user or organization, a model name longer than its column, timestamps on minute
and hour edges) go through the writer in three flushes, one small enough to land
in a single chunk and one over several (``log_writer.CHUNK``); each hourly and per-minute
table must then equal the totals this test computes record by record, the straightforward
way, and ``gateway_logs`` must hold every record. SQLite by default, PostgreSQL in the suite's
second pass.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from backend.data import histogram, log_writer
from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.logs import (
    KeyRollup,
    MinuteStat,
    OrgMinuteStat,
    RequestLog,
    TagRollup,
    UsageRollup,
)

T0 = dt.datetime(2026, 3, 10, 11, 58, 59, 999_999, tzinfo=dt.UTC)
LONG_MODEL = "m" * 500


def _records(n: int, first: int) -> list[LogRecord]:
    out = []
    for j in range(n):
        i = first + j
        when = T0 + dt.timedelta(seconds=7 * i) + dt.timedelta(microseconds=i % 2)
        priced = i % 4 != 0
        out.append(
            LogRecord(
                f"sum-{i}",
                when,
                "/v1/chat/completions",
                status=(200, 200, 429, 502, 200, 400)[i % 6],
                key_prefix=None if i % 9 == 0 else f"sb-k{i % 4}",
                user_id=None if i % 7 == 0 else i % 5 + 1,
                app_id=3 if i % 7 == 0 else None,
                org_id=None if i % 8 == 0 else i % 3 + 1,
                requested_model="alias",
                actual_model=None if i % 10 == 0 else (LONG_MODEL if i % 13 == 0 else "o/m"),
                provider="openai" if i % 2 else "anthropic",
                input_tokens=i % 17 * 3,
                output_tokens=0 if i % 6 == 4 else i % 11,
                cached_tokens=i % 5,
                cost_usd=Decimal(f"0.0000{i % 9 + 1}3") if priced else None,
                latency_ms=(0.4, 1.0, 2.5, 130.0, 99_999.0, 250_000.0)[i % 6] + i / 1000,
                superseded=i % 12 == 11,
                cache_hit=i % 15 == 14,
                tags=(("a",), (), ("a", "b"))[i % 3],
            )
        )
    return out


def _utc(t: dt.datetime) -> dt.datetime:
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _expected(records: list[LogRecord]) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Each table's rows, summed one record at a time."""
    limit = UsageRollup._meta.fields_map["model"].max_length
    tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {
        name: {} for name in ("usage", "key", "tag", "minute", "org_minute")
    }

    def add(table: str, key: tuple[Any, ...], values: dict[str, Any]) -> None:
        row = tables[table].setdefault(key, {})
        for name, v in values.items():
            if name == "latency_hist":
                hist = row.setdefault(name, {})
                hist[v] = hist.get(v, 0) + 1
            else:
                row[name] = row.get(name, 0) + v

    for r in records:
        if r.superseded:
            continue
        t = _utc(r.created_at)
        hour, minute = (
            t.replace(minute=0, second=0, microsecond=0),
            t.replace(second=0, microsecond=0),
        )
        user, app, org = r.user_id or 0, r.app_id or 0, r.org_id or 0
        model = r.actual_model or r.requested_model or ""
        if len(model) > limit:
            model = model[: limit - 1] + "\u2026"
        cost = r.cost_usd or Decimal(0)
        common = {
            "requests": 1,
            "errors": int(r.status >= 400),
            "cost_usd": cost,
            "unknown_cost_requests": int(r.unknown_cost),
        }
        tokens = {"input_tokens": r.input_tokens, "output_tokens": r.output_tokens}
        full = {**common, **tokens, "cached_tokens": r.cached_tokens}
        bucket = histogram.bucket_key(r.latency_ms)
        add(
            "usage",
            (hour, user, app, org, model, r.provider),
            {**full, "latency_ms_sum": r.latency_ms, "latency_hist": bucket},
        )
        if r.key_prefix:
            add(
                "key",
                (hour, org, user, app, r.key_prefix),
                {**full, "latency_ms_sum": r.latency_ms},
            )
        for tag in r.tags:
            add("tag", (hour, org, user, app, tag), {**common, **tokens})
        minute_row = {**common, "tokens": r.input_tokens + r.output_tokens, "latency_hist": bucket}
        add("minute", (minute,), minute_row)
        if org:
            add("org_minute", (minute, org), minute_row)
    return tables


async def _stored(model: Any, key: tuple[str, ...], totals: tuple[str, ...]) -> dict[Any, Any]:
    out = {}
    for row in await model.all().values(*key, *totals):
        k = tuple(_utc(row[n]) if n == "bucket" else row[n] for n in key)
        values = {n: row[n] for n in totals}
        values["cost_usd"] = Decimal(str(values["cost_usd"]))
        if "latency_ms_sum" in values:
            values["latency_ms_sum"] = round(values["latency_ms_sum"], 6)
        out[k] = values
    return out


def _rounded(rows: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    for values in rows.values():
        if "latency_ms_sum" in values:
            values["latency_ms_sum"] = round(values["latency_ms_sum"], 6)
    return rows


def _diff(got: dict[Any, Any], want: dict[Any, Any]) -> list[str]:
    """The keys and totals that differ (empty: the tables agree)."""
    out = [f"missing {k}" for k in want.keys() - got.keys()]
    out += [f"extra {k}" for k in got.keys() - want.keys()]
    for k in want.keys() & got.keys():
        out += [
            f"{k} {n}: {got[k].get(n)!r} != {v!r}"
            for n in want[k].keys() | got[k].keys()
            if got[k].get(n) != (v := want[k].get(n))
        ]
    return out


TOTALS = ("requests", "errors", "cost_usd", "unknown_cost_requests")
TOKENS = ("input_tokens", "output_tokens")


async def test_every_rollup_equals_its_requests_summed(db: str) -> None:
    writer = LogWriter(LocalBus())
    records = _records(40, 0) + _records(log_writer.CHUNK * 2 + 17, 40) + _records(25, 2000)
    for part in (records[:40], records[40:-25], records[-25:]):
        for r in part:
            writer.submit(r)
        assert await writer.flush()
    assert writer.written == len(records) and not writer.pending

    want = _expected(records)
    assert await RequestLog.all().count() == len(records)
    ids = set(await RequestLog.all().values_list("request_id", flat=True))
    assert ids == {r.request_id for r in records}
    usage_key = ("bucket", "user_id", "app_id", "org_id", "model", "provider")
    got = await _stored(
        UsageRollup,
        usage_key,
        (*TOTALS, *TOKENS, "cached_tokens", "latency_ms_sum", "latency_hist"),
    )
    assert not _diff(got, _rounded(want["usage"]))
    key_key = ("bucket", "org_id", "user_id", "app_id", "key_prefix")
    got = await _stored(KeyRollup, key_key, (*TOTALS, *TOKENS, "cached_tokens", "latency_ms_sum"))
    assert not _diff(got, _rounded(want["key"]))
    tag_key = ("bucket", "org_id", "user_id", "app_id", "tag")
    assert not _diff(await _stored(TagRollup, tag_key, (*TOTALS, *TOKENS)), want["tag"])
    minute = (*TOTALS, "tokens", "latency_hist")
    assert not _diff(await _stored(MinuteStat, ("bucket",), minute), want["minute"])
    assert not _diff(await _stored(OrgMinuteStat, ("bucket", "org_id"), minute), want["org_minute"])
    # The data spans hour edges, so several buckets of each table are checked.
    assert len({k[0] for k in want["usage"]}) >= 2 and len(want["minute"]) >= 10
