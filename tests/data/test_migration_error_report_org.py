"""Migration 0002 gives existing error reports the organization they were made under, as far as
it can tell: a gateway report takes its request's (the log row's ``org_id``), any other report the
reporting user's current organization; a client report's request id proves nothing.
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
from backend.data.models.logs import ErrorReport
from tests.dbutil import create_database, drop_database

T0 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[str]:
    url = await create_database(tmp_path)
    try:
        yield url
    finally:
        await close_db()
        await drop_database(url)


async def _migrate(url: str, target: str | None = None) -> None:
    await run_migrations(config=tortoise_config(url), target=target)
    await Tortoise.close_connections()


async def _insert(conn: Any, db: str, table: str, row: dict[str, Any]) -> None:
    """Raw SQL: the models have columns later migrations add, which this schema lacks."""
    marks = [f"${n}" if db.startswith("postgres") else "?" for n in range(1, len(row) + 1)]
    await conn.execute_query(
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(marks)})", list(row.values())
    )


async def test_backfill_from_the_request_then_the_users_org(db: str) -> None:
    await _migrate(db, "models.0001_initial")
    conn = None
    await Tortoise.init(config=tortoise_config(db))
    acme, globex, user = 1, 2, 1
    try:
        conn = Tortoise.get_connection("default")
        for org_id, name in ((acme, "acme"), (globex, "globex")):
            org = {"id": org_id, "name": name, "slug": name, "cap_period": "monthly"}
            org |= {"rollover": False, "dlp_enabled": False, "created_at": T0}
            await _insert(conn, db, "organizations", org)
        # Moved from Acme to Globex after the request below.
        await _insert(
            conn,
            db,
            "users",
            {"id": user, "name": "M", "email": "m@example.com", "status": "active"}
            | {"role": "member", "organization_id": globex, "created_at": T0},
        )
        log = {"request_id": "req-acme", "created_at": T0, "user_id": user, "org_id": acme}
        log |= {"endpoint": "/v1/chat/completions", "status": 502, "input_tokens": 0}
        log |= {"output_tokens": 0, "cached_tokens": 0, "latency_ms": 0.0, "streamed": False}
        log |= {"attempts": 1, "superseded": False, "cache_hit": False}
        await _insert(conn, db, "request_logs", log)
        rows = [
            ("gateway", "req-acme", user),  # its request was made under Acme
            ("client", "req-acme", user),  # a client-chosen id: the user's org
            ("gateway", "req-unknown", user),  # no log row left: the user's org
            ("gateway", None, None),  # nothing to go by
        ]
        for i, (source, request_id, user_id) in enumerate(rows):
            await _insert(
                conn,
                db,
                "error_reports",
                {"created_at": T0 + dt.timedelta(seconds=i), "source": source, "type": "t"}
                | {"error": f"report {i}", "user_id": user_id, "request_id": request_id},
            )
    finally:
        await Tortoise.close_connections()
    await _migrate(db)
    await init_db(db)
    got = [r.org_id for r in await ErrorReport.all().order_by("id")]
    assert got == [acme, globex, globex, None]
