"""Fill a fresh gateway database with ``db_scale.py``'s population, fast, on SQLite or PostgreSQL.

1. the gateway's own migrations (``backend.data.db.migrate``), so the schema is the code's;
2. tenants through Tortoise's insert statement (a few thousand rows), sessions for a
   super_admin, the biggest organization's org_admin and the busiest member;
3. pick tables, then ``request_logs`` one ``INSERT ... SELECT`` per day (``dbsql``) with its
   secondary indexes dropped and rebuilt after (as fast as a bulk load gets), then DLP
   activity, error reports, audit entries and the rollups from the log, keys' last use;
4. ``ANALYZE`` where the product's database would have statistics: PostgreSQL's autovacuum
   analyzes a growing table by itself; SQLite has none unless someone runs it (see README).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from benchkit import dbpop, dbsql

Progress = Callable[[str], None]
#: An audit entry's detail, as SQL text.
AUDIT_DETAIL = '\'{"fields": ["name"]}\''


@dataclass
class Seeded:
    rows: int
    seconds: float
    tokens: dict[str, str]  # role -> session token
    facts: dict[str, Any]  # ids the queries use (busy user, big org, a key prefix...)


class Raw:
    """The few calls the seed needs, on sqlite3 or asyncpg (no ORM per row)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.d = dbsql.Dialect("postgres" if url.startswith("postgres") else "sqlite")
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def open(self) -> Raw:
        if self.d.pg:
            import asyncpg

            self._pg = await asyncpg.connect(self.url.replace("postgres://", "postgresql://", 1))
            await self._pg.execute("SET TIME ZONE 'UTC'")
            await self._pg.execute("SET maintenance_work_mem = '1GB'")
            await self._pg.execute("SET work_mem = '512MB'")
            await self._pg.execute("SET synchronous_commit = off")
        else:
            path = self.url.split(":", 1)[1].lstrip("/")
            self._sqlite = sqlite3.connect("/" + path, isolation_level=None)
            self._sqlite.execute("PRAGMA synchronous = OFF")
            self._sqlite.execute("PRAGMA cache_size = -262144")  # 256 MiB for index builds
            self._sqlite.execute("PRAGMA temp_store = MEMORY")
        return self

    async def execute(self, sql: str, *params: Any) -> None:
        if self._pg is not None:
            await self._pg.execute(sql, *params)
        else:
            assert self._sqlite is not None
            self._sqlite.execute(sql, params)  # blocking: nothing else runs meanwhile

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._pg is not None:
            await self._pg.executemany(sql, rows)
        else:
            assert self._sqlite is not None
            self._sqlite.executemany(sql, rows)

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self._pg is not None:
            return [tuple(r) for r in await self._pg.fetch(sql, *params)]
        assert self._sqlite is not None
        return list(self._sqlite.execute(sql, params).fetchall())

    async def columns(self) -> dict[str, set[str]]:
        """table -> its columns, for every table of the schema."""
        if self._pg is not None:
            rows = await self.fetch(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public'"
            )
        else:
            rows = await self.fetch(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p"
                " WHERE m.type = 'table'"
            )
        out: dict[str, set[str]] = {}
        for table, column in rows:
            out.setdefault(table, set()).add(column)
        return out

    async def indexes(self, table: str) -> list[tuple[str, str]]:
        """(name, CREATE statement) of ``table``'s secondary indexes (not the primary key)."""
        if self._pg is not None:
            return [
                (n, s)
                for n, s in await self.fetch(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1"
                    " AND indexname NOT LIKE '%_pkey'",
                    table,
                )
            ]
        return await self.fetch(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL",
            table,
        )

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()


async def _tortoise_rows(model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert with Tortoise's own statement, defaults and conversions (no instance per row)."""
    from tortoise import connections

    conn = connections.get("default")
    executor = conn.executor_class(model=model, db=conn)
    fields = model._meta.fields_map
    columns = executor.regular_columns_all
    values = []
    for row in rows:
        for name in columns:
            if name not in row:
                default = fields[name].default
                row[name] = default() if callable(default) else default
        values.append([fields[n].to_db_value(row[n], model) for n in columns])
    await conn.execute_many(executor.insert_query_all, values)


async def seed_tenants(url: str, pop: dbpop.Population) -> dict[str, str]:
    """Organizations, users, apps and keys, then three sessions; returns role -> token."""
    from backend.data.db import close_db, init_db
    from backend.data.models.keys import ApiKey
    from backend.data.models.tenancy import App, Organization, User
    from backend.security.sessions import issue_token

    await init_db(url)
    try:
        t = pop.tenants
        now = pop.now - dt.timedelta(days=dbpop.DAYS + 1)
        await _tortoise_rows(Organization, [{**o, "created_at": now} for o in t.orgs])
        super_id = len(t.users) + 1
        users = [{**u, "created_at": now} for u in t.users]
        users.append(
            {
                "id": super_id,
                "name": "Super Admin",
                "email": "root@bench.example",
                "role": "super_admin",
                "organization_id": None,
                "created_at": now,
            }
        )
        await _tortoise_rows(User, users)
        await _tortoise_rows(App, [{**a, "created_at": now} for a in t.apps])
        await _tortoise_rows(
            ApiKey,
            [
                {
                    "id": k["id"],
                    "prefix": k["prefix"],
                    "name": f"key {k['id']}",
                    "key_hash": hashlib.sha256(str(k["prefix"]).encode()).hexdigest(),
                    "user_id": k["user_id"],
                    "app_id": k["app_id"],
                    "created_at": now,
                }
                for k in t.keys
            ],
        )
        if url.startswith("postgres"):
            from tortoise import connections

            conn = connections.get("default")
            for table in ("organizations", "users", "apps", "api_keys"):
                await conn.execute_script(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
        tokens = {}
        for role, uid in (
            ("super_admin", super_id),
            ("org_admin", pop.big_org_admin),
            ("member", pop.busy_user),
        ):
            user = await User.get(id=uid)
            tokens[role], _ = await issue_token(user, "admin", now=pop.now, name=f"db_scale {role}")
        return tokens
    finally:
        await close_db()


async def _timed(raw: Raw, progress: Progress, what: str, sql: str, *params: Any) -> None:
    t = time.perf_counter()
    await raw.execute(sql, *params)
    progress(f"  {what}: {time.perf_counter() - t:.1f} s")


async def seed_logs(raw: Raw, pop: dbpop.Population, progress: Progress) -> None:
    d = raw.d
    for table, (columns, rows) in pop.picks.items():
        await raw.execute(f"DROP TABLE IF EXISTS _sb_{table}")
        await raw.execute(dbsql.pick_table_ddl(d, table, columns))
        marks = ", ".join(d.param(n + 1) for n in range(len(columns)))
        if d.pg:  # pick tables hold text in PostgreSQL; slots are numbers
            rows = [(r[0], *(None if v is None else str(v) for v in r[1:])) for r in rows]
        await raw.executemany(f"INSERT INTO _sb_{table} VALUES ({marks})", rows)
    await raw.execute("DROP TABLE IF EXISTS _sb_hours")
    await raw.execute(
        f"CREATE TABLE _sb_hours (h {d.key}, day BIGINT, start_us BIGINT,"
        " span_us BIGINT, n BIGINT, cum BIGINT)"
    )
    marks = ", ".join(d.param(n + 1) for n in range(6))
    await raw.executemany(f"INSERT INTO _sb_hours VALUES ({marks})", pop.hours)
    await raw.execute("DROP TABLE IF EXISTS _sb_seq")
    await raw.execute(f"CREATE TABLE _sb_seq (k {d.key})")
    top = max(h[4] for h in pop.hours) + 1
    if d.pg:
        await raw.execute(f"INSERT INTO _sb_seq SELECT generate_series(0, {top})")
    else:
        await raw.execute(
            "WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < ?)"
            " INSERT INTO _sb_seq SELECT k FROM s",
            top,
        )
    if d.pg:
        await raw.execute("ANALYZE _sb_hours, _sb_seq, _sb_actor, _sb_model, _sb_status")

    indexes = await raw.indexes("request_logs")
    for name, _ in indexes:
        await raw.execute(f'DROP INDEX "{name}"')
    columns, select = dbsql.log_columns(d)
    insert = f"INSERT INTO request_logs ({', '.join(columns)}) {select}"
    t0 = time.perf_counter()
    done = 0
    days = max(h[1] for h in pop.hours) + 1
    for day in range(days):
        await raw.execute("BEGIN")
        await raw.execute(insert, day)
        await raw.execute("COMMIT")
        done += sum(h[4] for h in pop.hours if h[1] == day)
        if day % 10 == 9 or day == days - 1:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            progress(f"  request_logs: {done:>11,} / {pop.rows:,} ({rate:,.0f} rows/s)")
    t = time.perf_counter()
    for _name, create in indexes:
        await raw.execute(create)
    progress(f"  {len(indexes)} indexes of request_logs rebuilt: {time.perf_counter() - t:.1f} s")


async def seed_side_tables(raw: Raw, pop: dbpop.Population, progress: Progress) -> None:
    d = raw.d
    orgs = ", ".join(str(o) for o in pop.dlp_orgs) or "0"
    rules = (
        "(CASE r.id % 4 WHEN 0 THEN 'email' WHEN 1 THEN 'phone' WHEN 2 THEN 'iban'"
        " ELSE 'secret' END)"
    )
    await _timed(
        raw,
        progress,
        "dlp_activity",
        "INSERT INTO dlp_activity (created_at, kind, scope, org_id, app_id, rule, matches, size,"
        f" request_id, detail) SELECT r.created_at, 'redact', 'org:' || r.org_id, r.org_id,"
        f" r.app_id, {rules}, 1 + r.id % 3, 40 + r.id % 400, r.request_id, ''"
        f" FROM request_logs r WHERE r.org_id IN ({orgs}) AND r.id % 10 = 3",
    )
    await _timed(
        raw,
        progress,
        "error_reports",
        "INSERT INTO error_reports (created_at, source, type, model, error, user_id, org_id,"
        " agent, version, request_id) SELECT r.created_at,"
        " CASE WHEN r.status >= 500 THEN 'gateway' ELSE 'client' END,"
        " coalesce(r.error_type, 'client_error'), r.actual_model,"
        " coalesce(r.error_message, 'the tool call failed'), r.user_id, r.org_id, r.agent_id,"
        " CASE WHEN r.agent_id IS NULL THEN NULL ELSE '1.0.3' END, r.request_id"
        " FROM request_logs r WHERE (r.status >= 500 AND NOT "
        f"({d.is_true('r.superseded')})) OR r.id % 997 = 0",
    )
    span = dbpop.DAYS * 86_400_000_000
    start = pop.hours[0][2]
    actions = "(CASE q.k % 5 WHEN 0 THEN 'user.update' WHEN 1 THEN 'api_key.create' WHEN 2 THEN 'alias.create' WHEN 3 THEN 'settings.update' ELSE 'api_key.revoke' END)"  # noqa: E501
    n_audit = min(20_000, max(100, pop.rows // 500))
    await _timed(
        raw,
        progress,
        "audit_logs",
        f"INSERT INTO audit_logs (created_at, actor_id, action, target, detail)"
        f" SELECT {d.ts(f'{start} + q.k * {span // n_audit}')}, 1 + q.k % 20, {actions},"
        f" 'user:' || (1 + q.k % 2000), {d.json(AUDIT_DETAIL)}"
        f" FROM _sb_seq q WHERE q.k < {n_audit}",
    )


async def seed_rollups(raw: Raw, progress: Progress) -> None:
    from backend.data.models import logs

    columns = await raw.columns()
    models = {
        m._meta.db_table: m
        for m in vars(logs).values()
        if isinstance(m, type) and issubclass(m, logs.Model) and m is not logs.Model
    }
    for r in dbsql.rollups(raw.d, columns):
        given = {"id", *r.keys, *r.totals, *([r.hist] if r.hist else [])}
        model = models.get(r.table)
        defaults: dict[str, int] = {}
        values: list[Any] = []
        for name in sorted(columns[r.table] - given):
            field = model._meta.fields_map.get(name) if model else None
            if field is None or field.null:
                continue
            default = field.default() if callable(field.default) else field.default
            values.append(field.to_db_value(default, model))
            defaults[name] = len(values)
        await raw.execute("BEGIN")
        await _timed(raw, progress, r.table, dbsql.rollup_sql(raw.d, r, defaults), *values)
        await raw.execute("COMMIT")
    await seed_daily(raw, progress)


class _ScriptConn:
    """What ``backend.data.daily.rebuild`` asks of a connection, over the seed's own."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.capabilities = SimpleNamespace(dialect="postgres" if raw.d.pg else "sqlite")

    async def execute_script(self, sql: str) -> None:
        await self.raw.execute(sql)


async def seed_daily(raw: Raw, progress: Progress) -> None:
    """The daily, weekly and narrow hourly tables, summed from the hourly rollups just seeded
    (the migrations' backfill ran on empty tables): without them every window over two days
    would read empty tables and answer from its edge hours only."""
    from backend.data import daily

    await raw.execute("BEGIN")
    t = time.perf_counter()
    await daily.rebuild(_ScriptConn(raw))
    await raw.execute("COMMIT")
    progress(f"  daily, weekly and narrow rollups: {time.perf_counter() - t:.1f} s")


async def seed(url: str, rows: int, progress: Progress, *, analyze_sqlite: bool) -> Seeded:
    """Migrate ``url`` (a fresh database) and fill it; see the module docstring."""
    from backend.data.db import migrate

    t0 = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    pop = dbpop.build(rows, now)
    progress(f"migrating {url.split('@')[-1]}")
    await migrate(url)
    tokens = await seed_tenants(url, pop)
    raw = await Raw(url).open()
    try:
        progress(f"seeding {rows:,} request logs ({raw.d.name})")
        await seed_logs(raw, pop, progress)
        await seed_side_tables(raw, pop, progress)
        await seed_rollups(raw, progress)
        await _timed(
            raw,
            progress,
            "api_keys.last_used_at",
            "UPDATE api_keys SET last_used_at = (SELECT max(r.created_at) FROM request_logs r"
            " WHERE r.key_prefix = api_keys.prefix)",
        )
        for table in pop.picks:
            await raw.execute(f"DROP TABLE _sb_{table}")
        await raw.execute("DROP TABLE _sb_hours")
        await raw.execute("DROP TABLE _sb_seq")
        if raw.d.pg:
            await _timed(raw, progress, "VACUUM ANALYZE", "VACUUM ANALYZE")
        elif analyze_sqlite:
            await _timed(raw, progress, "ANALYZE", "ANALYZE")
        facts = await _facts(raw, pop)
    finally:
        await raw.close()
    return Seeded(rows, time.perf_counter() - t0, tokens, facts)


async def _facts(raw: Raw, pop: dbpop.Population) -> dict[str, Any]:
    """Ids and values the queries filter on, read back from what was written."""
    p = raw.d.param
    busy_key = (
        await raw.fetch(
            f"SELECT prefix FROM api_keys WHERE user_id = {p(1)} ORDER BY id LIMIT 1",
            pop.busy_user,
        )
    )[0][0]
    busy_app = max(
        (a for a in pop.tenants.apps if a["organization_id"] == pop.big_org),
        key=lambda a: sum(1 for r in pop.picks["actor"][1] if r[3] == a["id"]),
    )["id"]
    newest = await raw.fetch("SELECT id, request_id FROM request_logs ORDER BY id DESC LIMIT 1")
    failed = await raw.fetch(
        "SELECT id, request_id FROM request_logs WHERE status = 429 AND refusal IS NOT NULL"
        " ORDER BY id DESC LIMIT 1"
    )
    return {
        "now": pop.now.isoformat(),
        "busy_user": pop.busy_user,
        "busy_key": busy_key,
        "big_org": pop.big_org,
        "big_org_admin": pop.big_org_admin,
        "busy_app": busy_app,
        "newest_id": newest[0][0] if newest else 0,
        "newest_request_id": newest[0][1] if newest else "",
        "failed_id": failed[0][0] if failed else 0,
        "failed_request_id": failed[0][1] if failed else "",
    }
