"""Test databases: a temp SQLite file by default, a fresh PostgreSQL database when the suite runs
with ``DATABASE_URL=postgres://...`` (CI's second pass). Never a fake server.

Migrating a fresh database costs ~2 s of CPU (thirteen migrations, their backfills and Tortoise's
state replay) and the suite makes ~150 of them per pass, so ``migrate_fresh`` copies an empty
database that was migrated once: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL. The template's name carries a digest of the migrations and Tortoise's version, so a
changed migration never reuses a stale one. Tests of migrations themselves call ``migrate``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import tortoise

from backend.data.db import close_db, init_db, migrate

MIGRATIONS = Path(__file__).resolve().parents[1] / "backend" / "data" / "migrations"


def _pg_admin_dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _is_pg(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


async def create_database(tmp_dir: Path) -> str:
    base = os.environ.get("DATABASE_URL", "")
    if _is_pg(base):
        name = f"sbtest_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(_pg_admin_dsn(base))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        head, _, _ = base.rpartition("/")
        return f"{head}/{name}"
    return f"sqlite:///{tmp_dir / f'sb-{uuid.uuid4().hex[:8]}.sqlite3'}"


@asynccontextmanager
async def initialised_database(tmp_dir: Path) -> AsyncIterator[str]:
    """A fresh migrated database (``create_database``) with Tortoise initialised on it; closed
    and dropped afterwards. Its URL is what the block gets."""
    url = await create_database(tmp_dir)
    await migrate_fresh(url)
    await init_db(url)
    try:
        yield url
    finally:
        await close_db()
        await drop_database(url)


async def drop_database(url: str) -> None:
    if not _is_pg(url):
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


def schema_digest() -> str:
    """What a migrated empty database depends on: every migration file and Tortoise's version."""
    h = hashlib.sha256(tortoise.__version__.encode())
    for path in sorted(MIGRATIONS.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


async def _sqlite_template() -> Path:
    template = Path(tempfile.gettempdir()) / f"sbtest-template-{schema_digest()}.sqlite3"
    if not template.exists():
        # Built beside and renamed into place, so a concurrent worker never copies a half file.
        partial = template.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp")
        await migrate(f"sqlite:///{partial}")
        os.replace(partial, template)
    return template


async def _pg_template(base: str) -> str:
    name = f"sbtest_tpl_{schema_digest()}"
    conn = await asyncpg.connect(_pg_admin_dsn(base))
    try:
        # One builder at a time across test processes; the others wait and then find it made.
        await conn.execute("SELECT pg_advisory_lock(hashtext('switchboard-test-template'))")
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            stale = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'sbtest\\_tpl\\_%'"
            )
            for row in stale:
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
            partial = f"{name}_partial"
            await conn.execute(f'DROP DATABASE IF EXISTS "{partial}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{partial}"')
            head, _, _ = base.rpartition("/")
            await migrate(f"{head}/{partial}")
            await conn.execute(f'ALTER DATABASE "{partial}" RENAME TO "{name}"')
    finally:
        await conn.close()
    return name


async def migrate_fresh(url: str) -> None:
    """Bring a database made by ``create_database`` to the current schema, from the template
    when it is still empty; any other database is migrated in place."""
    if _is_pg(url):
        name = url.rpartition("/")[2]
        base = os.environ.get("DATABASE_URL", "")
        if name.startswith("sbtest_") and _is_pg(base) and not await _has_tables(url):
            template = await _pg_template(base)
            conn = await asyncpg.connect(_pg_admin_dsn(base))
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            finally:
                await conn.close()
            return
    elif (path := _empty_sqlite_file(url)) is not None:
        template = await _sqlite_template()
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)
        return
    await migrate(url)


def _empty_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist yet or is empty, else None."""
    if not url.startswith("sqlite:") or ":memory:" in url:
        return None
    path = Path("/" + url.split(":", 1)[1].lstrip("/").split("?", 1)[0])
    return path if not path.exists() or path.stat().st_size == 0 else None


async def _has_tables(url: str) -> bool:
    conn = await asyncpg.connect(_pg_admin_dsn(url))
    try:
        return bool(
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        )
    finally:
        await conn.close()
