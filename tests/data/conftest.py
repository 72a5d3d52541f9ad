"""The data layer's tests share one fixture: a fresh, migrated database with Tortoise
initialised on it (SQLite, or PostgreSQL when ``DATABASE_URL`` names one), dropped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.dbutil import initialised_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[str]:
    async with initialised_database(tmp_path) as url:
        yield url
