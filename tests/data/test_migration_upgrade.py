"""Every migration applies to a database that already holds rows: a column added NOT NULL needs a
database default (a Python ``default=`` is not in the table, and SQLite and PostgreSQL refuse such
a column on a table with rows). The tables later migrations change get one row each at 0002 (the
schema of the first release with users), filled through their own column metadata, then the
chain runs to the end and the rows read back through today's models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate as run_migrations

from backend.data.db import close_db, init_db, tortoise_config
from backend.data.models.keys import ApiKey
from backend.data.models.logs import MinuteStat, RequestLog, UsageRollup
from backend.data.models.tenancy import App, Organization, User
from tests.dbutil import create_database, drop_database

T0 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
# Parents first: a child's foreign keys may point at them.
TABLES = (
    "organizations",
    "users",
    "apps",
    "api_keys",
    "usage_rollups",
    "minute_stats",
    "request_logs",
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[str]:
    url = await create_database(tmp_path)
    try:
        yield url
    finally:
        await close_db()
        await drop_database(url)


async def _required_columns(conn: Any, pg: bool, table: str) -> list[tuple[str, str]]:
    """(name, type) of the NOT NULL columns without a database default, key excluded."""
    if pg:
        rows = await conn.execute_query_dict(
            "SELECT column_name AS name, data_type AS type FROM information_schema.columns"
            " WHERE table_name = $1 AND is_nullable = 'NO' AND column_default IS NULL",
            [table],
        )
        return [(r["name"], r["type"]) for r in rows if r["name"] != "id"]
    rows = await conn.execute_query_dict(f"PRAGMA table_info({table})")
    return [
        (r["name"], r["type"])
        for r in rows
        if r["notnull"] and r["dflt_value"] is None and not r["pk"]
    ]


def _value(sql_type: str) -> Any:
    t = sql_type.lower()
    if "time" in t or "date" in t:
        return T0
    if "bool" in t:
        return False
    if any(k in t for k in ("int", "numeric", "decimal", "real", "double", "float")):
        return 1
    if "json" in t:
        return "{}"
    # "1" fits every text column: short (varchar(10)), and read back as a number where SQLite
    # keeps decimals as text.
    return "1"


async def test_every_migration_applies_over_existing_rows(db: str) -> None:
    await run_migrations(config=tortoise_config(db), target="models.0002_error_report_org")
    await Tortoise.close_connections()
    pg = db.startswith("postgres")
    await Tortoise.init(config=tortoise_config(db))
    try:
        conn = Tortoise.get_connection("default")
        for table in TABLES:
            row = {n: _value(t) for n, t in await _required_columns(conn, pg, table)}
            marks = [f"${i}" if pg else "?" for i in range(1, len(row) + 1)]
            await conn.execute_query(
                f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(marks)})",
                list(row.values()),
            )
    finally:
        await Tortoise.close_connections()
    await run_migrations(config=tortoise_config(db))  # to the newest
    await Tortoise.close_connections()
    await init_db(db)
    org = await Organization.get()
    assert org.sso_only is False
    assert (await User.all().count(), await App.all().count()) == (1, 1)
    key = await ApiKey.get()
    assert key.admin_limits == {} and key.cap_period == "monthly"
    assert (await App.get()).cap_period == "monthly"
    assert (await UsageRollup.get()).unknown_cost_requests == 0
    assert (await MinuteStat.get()).unknown_cost_requests == 0
    assert (await RequestLog.get()).reasoning_tokens == 0
