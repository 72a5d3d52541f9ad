"""The migrations describe the models exactly: Tortoise's autodetector (what ``makemigrations``
runs) finds nothing to write. A model change without its migration fails here, with the
operations the missing migration needs, instead of at a customer's ``switchboard migrate``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from backend.data.db import tortoise_config


@pytest.fixture
async def models(tmp_path: Path) -> AsyncIterator[dict[str, dict]]:
    # The autodetector reads the models and the migration files; it never touches the database.
    config = tortoise_config(f"sqlite://{tmp_path / 'drift.sqlite3'}")
    await Tortoise.init(config=config)
    try:
        yield config["apps"]
    finally:
        await Tortoise.close_connections()


async def test_makemigrations_finds_nothing_to_write(models: dict[str, dict]) -> None:
    writers = await MigrationAutodetector(Tortoise.apps, models).changes()
    missing = [f"{w.app_label}: {op.describe()}" for w in writers for op in w.operations]
    assert missing == [], "models differ from their migrations; run makemigrations:\n" + "\n".join(
        missing
    )
