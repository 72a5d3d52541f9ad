"""Spend counters in the database (``SpendCounter``): read at startup, upserted by ``flush``.

Two ways to write, one per budget: ``store_counters`` (``LocalBudget``, the only process that
counts, writes its absolute values) and ``add_counters`` (``RedisBudget``: every process adds
the spend it settled since its last flush, so the row is the sum over processes; see README.md
"Redis restarts"). Both run under ``counters_lock``, which ``RedisBudget`` also holds while it
seeds Redis, so a seed never reads a row between another flush's write and its bookkeeping.

Settled spend in a period only ever grows, so a write keeps the larger of the stored and the new
value. That makes flushing safe when several processes copy the same Redis counter at slightly
different moments: a late writer holding an older, smaller number cannot lower the row. On
PostgreSQL the read-compare-write runs under a transaction-scoped advisory lock, so two flushes
never interleave; SQLite serialises writers itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from backend.budget.base import from_units, to_units
from backend.budget.caps import Scope
from backend.data.models.logs import SpendCounter

CounterKey = tuple[Scope, dt.datetime]
#: Arbitrary constant naming the advisory lock that serialises counter flushes on PostgreSQL.
_FLUSH_LOCK_ID = 0x5B_5E_4D_C0_17


@contextlib.asynccontextmanager
async def counters_lock() -> AsyncIterator[Any]:
    """A transaction that holds the counters' lock (PostgreSQL: an advisory lock, released at
    commit; SQLite: the database's own write lock, one process)."""
    async with in_transaction() as conn:
        if conn.capabilities.dialect == "postgres":
            await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_FLUSH_LOCK_ID])
        yield conn


async def load_counters(since: dt.datetime, conn: Any = None) -> dict[CounterKey, int]:
    """Spend (units) of every counter whose period started at or after ``since``."""
    query = SpendCounter.filter(period_start__gte=since)
    rows = await (query.using_db(conn) if conn is not None else query)
    return {
        ((row.scope, row.scope_id), row.period_start): to_units(Decimal(row.spent_usd))
        for row in rows
    }


async def store_counters(values: Iterable[tuple[CounterKey, int]]) -> None:
    """Upsert counters, never lowering a stored value."""
    wanted: dict[CounterKey, int] = {}
    for key, units in values:
        wanted[key] = max(units, wanted.get(key, 0))
    if not wanted:
        return
    async with counters_lock() as conn:
        stored = await _stored(conn, wanted)
        rows = [
            SpendCounter(
                scope=scope[0], scope_id=scope[1], period_start=start, spent_usd=from_units(units)
            )
            for (scope, start), units in wanted.items()
            if units > stored.get((scope, start), -1)
        ]
        if rows:
            await SpendCounter.bulk_create(
                rows,
                on_conflict=["scope", "scope_id", "period_start"],
                update_fields=["spent_usd"],
                using_db=conn,
            )


async def add_counters(conn: Any, deltas: Mapping[CounterKey, int]) -> None:
    """Add units to counters, inside ``counters_lock`` (the read-add-write is not atomic)."""
    if not deltas:
        return
    stored = await _stored(conn, deltas)
    rows = [
        SpendCounter(
            scope=scope[0],
            scope_id=scope[1],
            period_start=start,
            spent_usd=from_units(stored.get((scope, start), 0) + units),
        )
        for (scope, start), units in deltas.items()
        if units
    ]
    if rows:
        await SpendCounter.bulk_create(
            rows,
            on_conflict=["scope", "scope_id", "period_start"],
            update_fields=["spent_usd"],
            using_db=conn,
        )


async def _stored(conn: Any, keys: Iterable[CounterKey]) -> dict[CounterKey, int]:
    keys = list(keys)
    ids = {scope[1] for scope, _ in keys}
    starts = {start for _, start in keys}
    existing = await SpendCounter.filter(scope_id__in=ids, period_start__in=starts).using_db(conn)
    return {
        ((row.scope, row.scope_id), row.period_start): to_units(Decimal(row.spent_usd))
        for row in existing
    }
