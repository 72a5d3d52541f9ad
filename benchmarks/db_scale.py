"""Dashboard and GraphQL list queries on a large request log, SQLite and PostgreSQL (issue 19).

    .venv/bin/python benchmarks/db_scale.py                  # 10,000,000 rows, both databases
    .venv/bin/python benchmarks/db_scale.py --quick          # 200,000 rows, 3 rounds
    .venv/bin/python benchmarks/db_scale.py --db postgres --rows 1000000 --keep

For each database: a fresh database (a temp SQLite file; a PostgreSQL database of its own on
``--pg-admin-url``'s server, dropped afterwards) is migrated and seeded with bulk SQL
(``benchkit/dbseed.py``: ``--rows`` request logs over 90 days with their rollups, DLP activity,
error reports and audit entries; ``benchkit/dbpop.py`` says who sends what). Then a real gateway
process (``python -m backend.cli serve``) is started on it, and every query of
``benchkit/dbqueries.py`` is sent to its ``/graphql`` over HTTP with a session of the role that
would send it: a warm-up round, then ``--rounds`` rounds (queries interleaved), median per
query. Last, the busiest user's CSV export streams through ``/admin/users/{id}/activity.csv``
while the gateway's resident memory (VmRSS) is sampled every 20 ms.

Progress on stderr; a markdown table on stdout (``--json PATH`` writes every figure).
``--keep`` keeps the databases and ``--reuse`` seeds only what is missing, for iterating on one
query (a reused database keeps the clock of its seed: windows relative to now drift).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # frontend_reflex.queries

from benchkit import dbqueries, dbseed
from benchkit.procs import Proc, free_port, progress, rss_mb

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 250.0
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/test"
DB_NAME = "sb_dbscale"


@dataclass
class Timing:
    name: str
    group: str
    role: str
    ms: float | None = None
    samples: list[float] = field(default_factory=list)
    error: str = ""
    answer: str = ""


@dataclass
class Export:
    rows: int = 0
    mbytes: float = 0.0
    seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    #: RSS at each tenth of the bytes received, MB.
    rss_by_tenth: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_before_mb

    @property
    def flat(self) -> bool:
        """Flat: no growth beyond 32 MB, and the second half adds at most 8 MB to the first."""
        if self.error or len(self.rss_by_tenth) < 10:
            return False
        half = self.rss_by_tenth[4]
        return self.growth_mb <= 32 and max(self.rss_by_tenth[5:]) - half <= 8


@dataclass
class DbResult:
    db: str
    rows: int
    seed_seconds: float = 0.0
    start_seconds: float = 0.0
    timings: list[Timing] = field(default_factory=list)
    export: Export = field(default_factory=Export)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--quick", action="store_true", help="200,000 rows, 3 rounds (harness check)")
    p.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both (default)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pg-admin-url", default=os.environ.get("DB_SCALE_PG_ADMIN", PG_ADMIN))
    p.add_argument("--workdir", default=None, help="where SQLite files go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the databases (see --reuse)")
    p.add_argument("--reuse", action="store_true", help="use a kept database of --rows rows")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--only", default="", help="time only queries whose name has this text")
    p.add_argument("--analyze-sqlite", action="store_true", help="run ANALYZE after the seed")
    p.add_argument("--json", default=None, help="write every figure to this file")
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("BEFORE.json", "AFTER.json"),
        help="print a before/after table of two --json files (no run)",
    )
    p.add_argument(
        "--gateway-root",
        default=str(ROOT),
        help="run the gateway from this checkout (e.g. a git worktree of the commit before)",
    )
    args = p.parse_args()
    if args.quick:
        args.rows, args.rounds = min(args.rows, 200_000), 3
    return args


def _summary(data: dict[str, Any]) -> str:
    """A few words about an answer, to see it is not empty (counts of list nodes)."""
    out = []

    def walk(v: Any, path: str) -> None:
        if isinstance(v, dict):
            if "nodes" in v and isinstance(v["nodes"], list):
                out.append(f"{path}{len(v['nodes'])} nodes")
            elif "count" in v and "exact" in v:
                out.append(f"{path}{v['count']:,}{'' if v['exact'] else '+'}")
            for k, x in v.items():
                if k != "nodes":
                    walk(x, f"{k}.")
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            out.append(f"{path}{len(v)} items")

    walk(data, "")
    return "; ".join(out[:3])


class Gateway:
    def __init__(self, url: str, workdir: Path, root: Path = ROOT) -> None:
        self.url, self.workdir, self.root = url, workdir, root
        self.proc: Proc | None = None
        self.base = ""

    def start(self) -> float:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env.pop("REDIS_URL", None)
        env.update(
            DATABASE_URL=self.url,
            SWITCHBOARD_DATA_DIR=str(self.workdir),
            SWITCHBOARD_SECRET_KEY="db-scale-secret-not-for-production",
            PYTHONUNBUFFERED="1",
        )
        cmd = [str(ROOT / ".venv" / "bin" / "python"), "-m", "backend.cli", "serve"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        t = time.perf_counter()
        self.proc = Proc("gateway", cmd, self.workdir / "gateway.log", env=env, cwd=self.root)
        self.proc.start()
        # Its start applies any migration not yet in the database: on a big log that may
        # build indexes, which is what an upgrade would do.
        self.proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=3600)
        self.base = f"http://127.0.0.1:{port}"
        return time.perf_counter() - t

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


async def _gql(client: httpx.AsyncClient, token: str, doc: str, variables: dict[str, Any]) -> Any:
    resp = await client.post(
        "/graphql",
        json={"query": doc, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = resp.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"][0].get("message", "error")[:160])
    return body["data"]


def _fill(variables: dict[str, Any], cursors: dict[str, str | None]) -> dict[str, Any]:
    out = {}
    for k, v in variables.items():
        if isinstance(v, str) and v.startswith("{cursor:"):
            v = cursors.get(v[8:-1])
        out[k] = v
    return out


async def time_queries(base: str, seeded: dbseed.Seeded, rounds: int, only: str) -> list[Timing]:
    catalogue = [q for q in dbqueries.catalogue(seeded.facts) if only in q.name]
    results = [Timing(q.name, q.group, q.role) for q in catalogue]
    tokens = seeded.tokens
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        cursors: dict[str, str | None] = {}
        for name, (doc, variables) in dbqueries.cursor_setup(seeded.facts).items():
            data = await _gql(client, tokens[dbqueries.SUPER], doc, variables)
            cursors[name] = data["gatewayLogs"]["pageInfo"]["endCursor"]
        slow: set[int] = set()
        for rnd in range(rounds + 1):  # round 0 warms up
            for n, (q, r) in enumerate(zip(catalogue, results, strict=True)):
                if r.error or (rnd > 1 and n in slow):
                    continue
                t = time.perf_counter()
                try:
                    data = await _gql(client, tokens[q.role], q.doc, _fill(q.variables, cursors))
                except Exception as exc:
                    r.error = str(exc)
                    progress(f"  {q.name}: ERROR {r.error}")
                    continue
                ms = (time.perf_counter() - t) * 1000
                if rnd == 0:
                    r.answer = _summary(data)
                    if ms > 20_000:
                        slow.add(n)  # one measured round is enough to say it is far too slow
                else:
                    r.samples.append(ms)
            progress(f"  round {rnd}/{rounds} done" + (" (warm-up)" if rnd == 0 else ""))
    for r in results:
        if r.samples:
            r.ms = statistics.median(r.samples)
    return results


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.samples = pid, [rss_mb(pid)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_mb(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def export_csv(gw: Gateway, seeded: dbseed.Seeded) -> Export:
    assert gw.proc is not None
    out = Export()
    user = seeded.facts["busy_user"]
    expected = None
    url = f"{gw.base}/admin/users/{user}/activity.csv"
    headers = {"Authorization": f"Bearer {seeded.tokens[dbqueries.SUPER]}"}
    out.rss_before_mb = rss_mb(gw.proc.pid)
    received, lines, marks = 0, 0, []
    t = time.perf_counter()
    try:
        with RssSampler(gw.proc.pid) as sampler:
            async with (
                httpx.AsyncClient(timeout=3600) as client,
                client.stream("GET", url, headers=headers) as resp,
            ):
                if resp.status_code != 200:
                    raise RuntimeError(f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}")
                async for chunk in resp.aiter_bytes():
                    received += len(chunk)
                    lines += chunk.count(b"\n")
                    marks.append((received, sampler.samples[-1]))
        out.rss_peak_mb = max(sampler.samples)
    except Exception as exc:
        out.error = str(exc)[:200]
    out.seconds = time.perf_counter() - t
    out.mbytes = received / 1e6
    out.rows = max(0, lines - 1)  # bodies are JSON on one line; the header is one line
    if marks:
        out.rss_by_tenth = [
            next((rss for got, rss in marks if got >= received * k / 10), marks[-1][1])
            for k in range(1, 11)
        ]
    del expected
    return out


async def run_db(db: str, args: argparse.Namespace, workdir: Path) -> DbResult:
    res = DbResult(db, args.rows)
    if db == "sqlite":
        path = workdir / f"db_scale-{args.rows}.sqlite3"
        url = f"sqlite:///{path}"
        state = workdir / f"db_scale-{args.rows}.sqlite3.json"
        fresh = not (args.reuse and path.exists() and state.exists())
        if fresh:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
    else:
        name = f"{DB_NAME}_{args.rows}" if args.keep or args.reuse else f"{DB_NAME}_{os.getpid()}"
        url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + name
        state = workdir / f"{name}.json"
        fresh = not (args.reuse and state.exists() and await _pg_exists(args.pg_admin_url, name))
        if fresh:
            await _pg_admin(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{name}"')
            await _pg_admin(args.pg_admin_url, f'CREATE DATABASE "{name}"')
    try:
        if fresh:
            seeded = await dbseed.seed(url, args.rows, progress, analyze_sqlite=args.analyze_sqlite)
            state.write_text(json.dumps(asdict(seeded)))
            progress(f"{db}: seeded {args.rows:,} rows in {seeded.seconds:.0f} s")
        else:
            seeded = dbseed.Seeded(**json.loads(state.read_text()))
            progress(f"{db}: reusing the database seeded at {seeded.facts['now']}")
        res.seed_seconds = seeded.seconds
        gw = Gateway(url, workdir / f"gw-{db}", Path(args.gateway_root))
        gw.workdir.mkdir(parents=True, exist_ok=True)
        try:
            res.start_seconds = gw.start()
            progress(f"{db}: gateway up in {res.start_seconds:.1f} s; timing queries")
            res.timings = await time_queries(gw.base, seeded, args.rounds, args.only)
            if not args.no_export:
                progress(f"{db}: CSV export of user {seeded.facts['busy_user']}")
                res.export = await export_csv(gw, seeded)
        finally:
            gw.stop()
    finally:
        if not args.keep and not args.reuse:
            if db == "postgres":
                await _pg_admin(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{name}"')
            state.unlink(missing_ok=True)
    return res


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_exists(admin_url: str, name: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def fmt(t: Timing | None) -> str:
    if t is None:
        return "—"
    if t.error:
        return "error"
    if t.ms is None:
        return "—"
    flag = "" if t.ms <= TARGET_MS else " ❌"
    return f"{t.ms:,.1f} ms{flag}"


def table(results: list[DbResult]) -> str:
    dbs = [r.db for r in results]
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    head = "| query (role) | " + " | ".join(names[d] for d in dbs) + " |"
    lines = [head, "|---|" + "---|" * len(dbs)]
    by_db = [{t.name: t for t in r.timings} for r in results]
    order = [t for t in results[0].timings] if results else []
    for t in order:
        role = "" if t.role == dbqueries.SUPER else f" ({t.role})"
        lines.append(f"| {t.name}{role} | " + " | ".join(fmt(b.get(t.name)) for b in by_db) + " |")
    out = "\n".join(lines) + "\n\n"
    for r in results:
        timed = [t.ms for t in r.timings if t.ms is not None]
        over = [t.name for t in r.timings if t.ms is not None and t.ms > TARGET_MS]
        errors = [t.name for t in r.timings if t.error]
        out += (
            f"- {names[r.db]}: {r.rows:,} rows seeded in {r.seed_seconds:.0f} s, gateway start"
            f" {r.start_seconds:.1f} s; {len(timed)} queries, slowest"
            f" {max(timed, default=0):,.1f} ms; over {TARGET_MS:.0f} ms: {len(over)}"
            + (f"; errors: {', '.join(errors)}" if errors else "")
            + "\n"
        )
        e = r.export
        if e.error:
            out += f"- {names[r.db]} CSV export: failed: {e.error}\n"
        elif e.rows:
            tenths = ", ".join(f"{x:.0f}" for x in e.rss_by_tenth)
            out += (
                f"- {names[r.db]} CSV export: {e.rows:,} rows, {e.mbytes:,.0f} MB in"
                f" {e.seconds:.1f} s ({e.mbytes / max(e.seconds, 1e-9):.1f} MB/s); gateway RSS"
                f" {e.rss_before_mb:.0f} MB before, peak {e.rss_peak_mb:.0f} MB"
                f" (+{e.growth_mb:.0f} MB); by tenth of the bytes: {tenths} MB:"
                f" {'flat' if e.flat else 'NOT flat'}\n"
            )
    return out


async def run_all(args: argparse.Namespace, dbs: list[str], workdir: Path) -> list[DbResult]:
    results = []
    for db in dbs:
        try:
            results.append(await run_db(db, args, workdir))
        except Exception as exc:  # the other database is still measured
            progress(f"{db}: FAILED: {type(exc).__name__}: {exc}")
            continue
        # As each database finishes: a later failure must not lose the earlier figures.
        progress("results so far:\n" + table(results))
        if args.json:
            write_json(Path(args.json), results)
    return results


def write_json(path: Path, results: list[DbResult]) -> None:
    path.write_text(
        json.dumps(
            [{**asdict(r), "export": {**asdict(r.export), "flat": r.export.flat}} for r in results],
            indent=1,
        )
    )


def compare(before_path: Path, after_path: Path) -> str:
    """Markdown: each query's median before and after, per database (``--compare``)."""
    runs = [json.loads(before_path.read_text()), json.loads(after_path.read_text())]
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    dbs = [r["db"] for r in runs[1]]
    ms = [{(r["db"], t["name"]): t for r in run for t in r["timings"]} for run in runs]
    head = "| query (role) | " + " | ".join(f"{names[d]} before | {names[d]} after" for d in dbs)
    lines = [head + " |", "|---|" + "---:|---:|" * len(dbs)]

    def cell(t: dict[str, Any] | None) -> str:
        if t is None:
            return "—"
        if t["error"]:
            return "error" if "32-bit" in t["error"] or "Cannot query" in t["error"] else "failed"
        return "—" if t["ms"] is None else f"{t['ms']:,.0f}" if t["ms"] >= 100 else f"{t['ms']:.1f}"

    for t in runs[1][0]["timings"]:
        role = "" if t["role"] == dbqueries.SUPER else f" ({t['role']})"
        cells = []
        for d in dbs:
            cells += [cell(ms[0].get((d, t["name"]))), cell(ms[1].get((d, t["name"])))]
        lines.append(f"| {t['name']}{role} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    if args.compare:
        print(compare(Path(args.compare[0]), Path(args.compare[1])))
        return 0
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    if any(d not in ("sqlite", "postgres") for d in dbs):
        raise SystemExit("--db takes sqlite, postgres or both")
    keep = args.keep or args.reuse
    base = Path(args.workdir or tempfile.gettempdir()) / "sb-db-scale"
    if keep:
        base.mkdir(parents=True, exist_ok=True)
        workdir = base
    else:
        workdir = Path(tempfile.mkdtemp(prefix="sb-db-scale-"))
    try:
        results = asyncio.run(run_all(args, dbs, workdir))
    finally:
        if not keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    over = any(t.ms is None or t.ms > TARGET_MS for r in results for t in r.timings)
    return 1 if over or len(results) < len(dbs) else 0


if __name__ == "__main__":
    sys.exit(main())
