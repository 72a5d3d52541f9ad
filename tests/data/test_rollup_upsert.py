"""Rollups are written in a fixed number of statements per flush (``data/rollups.py``), exactly.

Many keys in one flush, rows that already exist added to (decimals exact on SQLite, which keeps
them as text), rows the batch creates, and the statement count: one SELECT and one upsert per
rollup table, not two per key. SQLite by default, PostgreSQL in the suite's second pass.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from tortoise import connections

from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.logs import MinuteStat, UsageRollup

USERS = 300


def _record(i: int, user: int, when: dt.datetime, cost: str) -> LogRecord:
    return LogRecord(
        f"req-{i}",
        when,
        "/v1/chat/completions",
        user_id=user,
        org_id=7,
        actual_model="openai/gpt-4o-mini",
        provider="openai",
        input_tokens=10,
        output_tokens=5,
        cost_usd=Decimal(cost),
        latency_ms=12.5,
    )


class _Counting:
    """Counts the statements the writer sends (wraps the connection's methods)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        # The client's class and its subclasses (the transaction wrapper is one).
        classes = [type(connections.get("default"))]
        for cls in classes:
            classes.extend(cls.__subclasses__())
        for cls in classes:
            for name in ("execute_query", "execute_many", "execute_insert", "execute_query_dict"):
                if name in vars(cls):
                    monkeypatch.setattr(cls, name, self._wrap(vars(cls)[name]))

    def _wrap(self, original: Any) -> Any:
        async def counted(client: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            self.statements.append(query)
            return await original(client, query, *args, **kwargs)

        return counted

    def touching(self, table: str) -> list[str]:
        return [q for q in self.statements if f'"{table}"' in q]


async def test_a_flush_over_many_keys_is_two_statements_per_rollup_table(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = LogWriter(LocalBus())
    when = dt.datetime(2026, 12, 6, 10, 15, 30, tzinfo=dt.UTC)
    # A first flush: one request per user, so every rollup row exists afterwards.
    for user in range(1, USERS + 1):
        writer.submit(_record(user, user, when, "0.00000001"))
    assert await writer.flush()
    # The second flush adds to every one of them, and to a user never seen before.
    counting = _Counting(monkeypatch)
    for user in range(1, USERS + 2):
        writer.submit(_record(10_000 + user, user, when, "0.10000001"))
        writer.submit(_record(20_000 + user, user, when, "0.2"))
    assert await writer.flush()

    on_usage = counting.touching("usage_rollups")
    assert len(on_usage) == 2, on_usage  # one SELECT, one INSERT ... ON CONFLICT executemany
    assert sum(q.lstrip().upper().startswith("SELECT") for q in on_usage) == 1
    assert len(counting.touching("minute_stats")) == 2

    rows = {r["user_id"]: r for r in await UsageRollup.all().values()}
    assert len(rows) == USERS + 1
    # Exact decimals: 0.00000001 + 0.10000001 + 0.2 (no float rounding on the way).
    assert Decimal(rows[1]["cost_usd"]) == Decimal("0.30000002")
    assert rows[1]["requests"] == 3 and rows[1]["input_tokens"] == 30
    assert rows[USERS + 1]["requests"] == 2
    assert Decimal(rows[USERS + 1]["cost_usd"]) == Decimal("0.30000001")
    minute = await MinuteStat.get(bucket=when.replace(second=0))
    assert minute.requests == USERS + 2 * (USERS + 1)
    assert sum(minute.latency_hist.values()) == minute.requests
