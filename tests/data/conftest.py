"""The data layer's tests share one fixture: a fresh, migrated database with Tortoise
initialised on it (SQLite, or PostgreSQL when ``DATABASE_URL`` names one), dropped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.data.db import close_db, init_db
from tests.dbutil import create_database, drop_database, migrate_fresh


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[str]:
    url = await create_database(tmp_path)
    await migrate_fresh(url)
    await init_db(url)
    try:
        yield url
    finally:
        await close_db()
        await drop_database(url)
