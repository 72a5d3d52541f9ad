"""Migration 0002 gives existing error reports the organization they were made under, as far as
it can tell: a gateway report takes its request's (the log row's ``org_id``), any other report the
reporting user's current organization; a client report's request id proves nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate as run_migrations

from backend.data.db import close_db, init_db, tortoise_config
from backend.data.models.logs import ErrorReport, RequestLog
from backend.data.models.tenancy import Organization, User
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


async def test_backfill_from_the_request_then_the_users_org(db: str) -> None:
    await _migrate(db, "models.0001_initial")
    conn = None
    await Tortoise.init(config=tortoise_config(db))
    try:
        conn = Tortoise.get_connection("default")
        acme = await Organization.create(name="Acme", slug="acme")
        globex = await Organization.create(name="Globex", slug="globex")
        # Moved from Acme to Globex after the request below.
        user = await User.create(name="M", email="m@example.com", organization=globex)
        await RequestLog.create(
            request_id="req-acme",
            created_at=T0,
            user_id=user.id,
            org_id=acme.id,
            endpoint="/v1/chat/completions",
            status=502,
        )
        rows = [
            ("gateway", "req-acme", user.id),  # its request was made under Acme
            ("client", "req-acme", user.id),  # a client-chosen id: the user's org
            ("gateway", "req-unknown", user.id),  # no log row left: the user's org
            ("gateway", None, None),  # nothing to go by
        ]
        for i, (source, request_id, user_id) in enumerate(rows):
            # Raw SQL: the model has a column this schema does not have yet.
            await conn.execute_query(
                "INSERT INTO error_reports (created_at, source, type, error, user_id, request_id)"
                f" VALUES ({', '.join(['$' + str(n) for n in range(1, 7)])})"
                if db.startswith("postgres")
                else "INSERT INTO error_reports"
                " (created_at, source, type, error, user_id, request_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [T0 + dt.timedelta(seconds=i), source, "t", f"report {i}", user_id, request_id],
            )
    finally:
        await Tortoise.close_connections()
    await _migrate(db)
    await init_db(db)
    got = [r.org_id for r in await ErrorReport.all().order_by("id")]
    assert got == [acme.id, globex.id, globex.id, None]
