"""Test databases: a temp SQLite file by default, a fresh PostgreSQL database when the suite runs
with ``DATABASE_URL=postgres://...`` (CI's second pass). Never a fake server."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg


def _pg_admin_dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


async def create_database(tmp_dir: Path) -> str:
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://")):
        name = f"sbtest_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(_pg_admin_dsn(base))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        head, _, _ = base.rpartition("/")
        return f"{head}/{name}"
    return f"sqlite:///{tmp_dir / f'sb-{uuid.uuid4().hex[:8]}.sqlite3'}"


async def drop_database(url: str) -> None:
    if not url.startswith(("postgres://", "postgresql://")):
        return
    base = os.environ["DATABASE_URL"]
    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(_pg_admin_dsn(base))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def redis_url() -> str | None:
    return os.environ.get("REDIS_URL") or None
