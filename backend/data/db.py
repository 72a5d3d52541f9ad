"""Database connection: Tortoise config from ``DATABASE_URL``, migrations, init and close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

from backend.data.models import MODEL_MODULES

MIGRATIONS_MODULE = "backend.data.migrations"


def tortoise_url(database_url: str) -> str:
    """Accept ``sqlite:///path``, ``sqlite://path``, ``postgres(ql)://``, return Tortoise's form."""
    if database_url.startswith("sqlite:"):
        path = database_url.split(":", 1)[1].lstrip("/")
        if database_url.startswith("sqlite:///"):
            path = "/" + path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite://{path}"
    if database_url.startswith("postgresql://"):
        return "postgres://" + database_url[len("postgresql://") :]
    return database_url


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": tortoise_url(database_url)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def _open_first(config: dict[str, Any]) -> None:
    """Open the connection once outside Tortoise's query lock, so a database that cannot be
    opened is an error here. Tortoise's SQLite client opens it lazily inside that lock and does
    not release it when opening fails (a file that is not a database); the migration recorder
    swallows that first error and its next statement waits on the lock forever."""
    from tortoise.connection import get_connection

    await Tortoise.init(config=config)
    await get_connection("default").create_connection(with_db=True)


async def migrate(database_url: str) -> None:
    """Apply Tortoise's built-in migrations (idempotent)."""
    from tortoise.migrations.api import migrate as run_migrations

    config = tortoise_config(database_url)
    try:
        await _open_first(config)
        await run_migrations(config=config)
    finally:
        # Also after a failure: an open aiosqlite connection is a non-daemon thread, and the
        # process would not exit until it closed.
        await Tortoise.close_connections()


async def init_db(database_url: str) -> None:
    # Tortoise 1.x keeps its context in a contextvar set by the task that calls init (the app's
    # lifespan); request tasks need the process-wide fallback to see it.
    # Tortoise caches each model's INSERT/DELETE statements by connection name, not by dialect:
    # a process that opens SQLite and then PostgreSQL as "default" (the benchmark's seed does)
    # would send SQLite's "?" placeholders to PostgreSQL. A fresh init starts a fresh cache.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()
