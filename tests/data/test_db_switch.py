"""One process, SQLite and then PostgreSQL: writes on the second database use its own dialect.

Tortoise caches a model's INSERT by connection name, so after SQLite's "default" a PostgreSQL
"default" was sent SQLite's ``?`` placeholders ("syntax error at or near ','"): the benchmark's
dashboard seed lost its whole PostgreSQL half to it. ``init_db`` starts a fresh cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend.data.db import close_db, init_db
from backend.data.models.tenancy import Organization
from tests.dbutil import initialised_database, migrate_fresh

PG = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


@pytest.mark.skipif(not PG, reason="needs DATABASE_URL=postgres://... (CI's PostgreSQL pass)")
async def test_postgres_after_sqlite_in_one_process(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'first.sqlite3'}"
    await migrate_fresh(sqlite_url)
    await init_db(sqlite_url)
    try:
        await Organization.create(name="On SQLite", slug="on-sqlite")
    finally:
        await close_db()

    async with initialised_database(tmp_path):  # DATABASE_URL's server: PostgreSQL
        made = await Organization.create(name="On PostgreSQL", slug="on-postgres")
        made.name = "Renamed"
        await made.save()
        assert [o.name for o in await Organization.all()] == ["Renamed"]
        await made.delete()
        assert await Organization.all().count() == 0
