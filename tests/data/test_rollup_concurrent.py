"""Two writers flushing at once (two gateway processes on one database) lose no request from
the rollups.

A rollup upsert reads a row's totals, adds the flush's and writes the sum back. On PostgreSQL
two transactions can do that to one row at the same time: both read the same old totals, and
the later upsert overwrites the earlier one's additions. ``rollups._existing`` takes a
transaction-scoped advisory lock per table first. Two ``LogWriter`` flushes run concurrently
here, each in its own pooled connection, for rounds of requests on the same keys; every
table must count them all. On SQLite (one connection, one writer) that test passes trivially;
it is meant for the suite's PostgreSQL pass. And one writer's ``flush()`` called twice at once
writes each record once (it failed with "pop from an empty deque" before flushes were
serialised).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.daily import UsageDaily
from backend.data.models.logs import KeyRollup, MinuteStat, UsageRollup

T0 = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)
ROUNDS = 12
PER_FLUSH = 5


def _record(name: str) -> LogRecord:
    return LogRecord(
        name,
        T0,
        "/v1/chat/completions",
        key_prefix="sb-shared",
        user_id=1,
        org_id=1,
        actual_model="openai/gpt-4o-mini",
        provider="openai",
        input_tokens=10,
        output_tokens=5,
        cost_usd=Decimal("0.001"),
        latency_ms=12.0,
    )


async def test_concurrent_flushes_add_up(db: str) -> None:
    writers = [LogWriter(LocalBus()), LogWriter(LocalBus())]
    for n in range(ROUNDS):
        for w, writer in enumerate(writers):
            for i in range(PER_FLUSH):
                writer.submit(_record(f"r{n}-w{w}-{i}"))
        assert all(await asyncio.gather(*(w.flush() for w in writers)))
    total = ROUNDS * PER_FLUSH * len(writers)
    assert sum(w.written for w in writers) == total
    for model in (UsageRollup, KeyRollup, MinuteStat, UsageDaily):
        rows = await model.all().values("requests", "cost_usd")
        assert [r["requests"] for r in rows] == [total], model.__name__
        assert Decimal(str(rows[0]["cost_usd"])) == Decimal("0.001") * total, model.__name__


async def test_one_writer_flushed_twice_at_once_writes_each_record_once(db: str) -> None:
    # A flush yields to the loop between taking its records and removing them from the queue
    # (it sums and encodes them in chunks): a second flush must not take the same records.
    writer = LogWriter(LocalBus())
    for i in range(250):
        writer.submit(_record(f"once-{i}"))
    assert all(await asyncio.gather(writer.flush(), writer.flush()))
    assert writer.written == 250 and not writer.pending
    assert await UsageRollup.all().values_list("requests", flat=True) == [250]
