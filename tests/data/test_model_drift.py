"""The migrations describe the models exactly: Tortoise's autodetector (what ``makemigrations``
runs) finds nothing to write. A model change without its migration fails here, with the
operations the missing migration needs, instead of at a customer's ``switchboard migrate``."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from backend.data.db import tortoise_config
from tests.dbutil import migrate_fresh


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


def _sqlite_shape(path: Path) -> dict[str, Any]:
    """Columns, unique constraints and indexes of every table, by what they cover (names aside)."""
    db = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'tortoise_migrations'"
            )
        ]
        shape: dict[str, Any] = {}
        for table in tables:
            columns = sorted(
                (name, kind.upper(), bool(notnull), bool(pk))
                for _, name, kind, notnull, _, pk in db.execute(f'PRAGMA table_info("{table}")')
            )
            indexes = sorted(
                (
                    bool(unique),
                    tuple(r[2] for r in db.execute(f'PRAGMA index_info("{name}")')),
                )
                for _, name, unique, *_ in db.execute(f'PRAGMA index_list("{table}")')
            )
            shape[table] = {"columns": columns, "indexes": indexes}
        return shape
    finally:
        db.close()


async def test_migrated_sqlite_schema_equals_the_models(tmp_path: Path) -> None:
    """A database built by the migrations has the tables, columns, unique constraints and
    indexes of one generated straight from the models (a table rebuilt by a migration once lost
    its unique constraints and indexes on SQLite)."""
    migrated, generated = tmp_path / "migrated.sqlite3", tmp_path / "generated.sqlite3"
    await migrate_fresh(f"sqlite:///{migrated}")  # the migrations, run once per digest
    await Tortoise.init(config=tortoise_config(f"sqlite:///{generated}"))
    try:
        await Tortoise.generate_schemas()
    finally:
        await Tortoise.close_connections()
    want, got = _sqlite_shape(generated), _sqlite_shape(migrated)
    assert sorted(got) == sorted(want)
    assert {t: got[t] for t in want if got[t] != want[t]} == {
        t: want[t] for t in want if got[t] != want[t]
    }
