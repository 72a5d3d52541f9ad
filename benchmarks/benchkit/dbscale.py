"""``run.py``'s dashboard row: runs ``db_scale.py`` and boils its figures down to table rows.

``dashboard_queries(rows)`` has the shape ``run.py`` expects from ``phases.dashboard_queries``:
``([(row name, median ms)], export line)``, one row per database with its slowest query (the
target is that every query is within 250 ms, so the slowest one decides), the full per-query
table staying in ``db_scale.py``'s own output and ``benchmarks/README.md``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchkit.procs import progress

BENCH = Path(__file__).resolve().parents[1]
NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def run(
    rows: int, dbs: str = "sqlite,postgres", timeout: float = 6 * 3600, reuse: bool = False
) -> list[dict[str, Any]]:
    """``db_scale.py --rows N --json ...``: its per-database results (``reuse``: on the databases
    an earlier ``--keep`` run seeded)."""
    with tempfile.TemporaryDirectory(prefix="sb-dbscale-row-") as tmp:
        out = Path(tmp) / "db_scale.json"
        done = subprocess.run(
            [
                sys.executable,
                str(BENCH / "db_scale.py"),
                "--rows",
                str(rows),
                "--db",
                dbs,
                "--json",
                str(out),
                *(["--reuse"] if reuse else []),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        results: list[dict[str, Any]] = json.loads(out.read_text()) if out.exists() else []
        return with_failures(results, dbs.split(","), done.stderr)


def with_failures(
    results: list[dict[str, Any]], dbs: list[str], stderr: str
) -> list[dict[str, Any]]:
    """``results`` plus ``{"db", "failed"}`` for each database asked for that has none (it
    failed: ``db_scale.py`` said why on stderr, as ``<db>: FAILED: ...``), so the table says
    so instead of leaving the database out."""
    done = {r["db"] for r in results}
    out = list(results)
    for db in dbs:
        if db in done:
            continue
        said = [
            ln.split("FAILED:", 1)[1].strip()
            for ln in stderr.splitlines()
            if f"{db}: FAILED:" in ln
        ]
        tail = stderr.strip().splitlines()[-1:] or ["no output"]
        out.append({"db": db, "failed": (said or tail)[-1][:300]})
    return out


def summarize(results: list[dict[str, Any]]) -> tuple[list[tuple[str, float]], str]:
    rows: list[tuple[str, float]] = []
    exports = []
    for r in results:
        name = NAMES.get(r["db"], r["db"])
        if "failed" in r:
            rows.append((f"{name}: not measured, the run failed ({r['failed']})", math.nan))
            continue
        timed = [t for t in r["timings"] if t["ms"] is not None]
        errors = [t["name"] for t in r["timings"] if t["error"]]
        if timed:
            worst = max(timed, key=lambda t: t["ms"])
            over = sum(1 for t in timed if t["ms"] > 250)
            label = (
                f"{name}: slowest of {len(timed)} queries ({worst['name']}); {over} over 250 ms"
                + (f"; {len(errors)} failed" if errors else "")
            )
            rows.append((label, float(worst["ms"])))
        e = r["export"]
        if e.get("error"):
            exports.append(f"{name}: failed ({e['error']})")
        elif e.get("rows"):
            exports.append(
                f"{name}: {e['rows']:,} rows, {e['mbytes']:,.0f} MB in {e['seconds']:.0f} s,"
                f" gateway RSS +{e['rss_peak_mb'] - e['rss_before_mb']:.0f} MB"
                f" ({'flat' if e['flat'] else 'NOT flat'})"
            )
    return rows, "CSV export of the busiest user: " + "; ".join(exports) if exports else ""


def dashboard_queries(rows: int, reuse: bool = False) -> tuple[list[tuple[str, float]], str]:
    """What ``run.py`` shows for ``--dashboard-rows N`` (``--dashboard-reuse``: kept databases)."""
    kept = ", kept databases" if reuse else ""
    progress(f"dashboard queries on {rows:,} log rows (db_scale.py: SQLite and PostgreSQL{kept})")
    return summarize(run(rows, reuse=reuse))
