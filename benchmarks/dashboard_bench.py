"""Dashboard and export benchmark: the admin API on one million request-log rows.

    .venv/bin/python benchmarks/dashboard_bench.py [--rows 1000000] [--export-rows 100000]

Seeds a temp SQLite database (deleted afterwards) with ``--rows`` request logs spread over the
last 30 days for 100 users in 5 organizations, one user owning ``--export-rows`` of them, plus
the rollups the log writer would have kept (hourly ``usage_rollups``, per-minute
``minute_stats``). Then it times each dashboard query through GraphQL (median of 5 after a
warm-up), compares one of them with the same number computed by scanning ``request_logs``, and
streams that user's CSV export through a real HTTP server on a loopback port while sampling the
process's resident memory (RSS) every 10 ms, to show the export runs in flat memory.

Prints progress on stderr and a markdown table on stdout. About 2-3 minutes on 2 cores. One run
(2 cores, a busy machine)::

    | query (GraphQL, through the API)          | median of 5 |
    | live, last 60 min (per minute, p50/p95)   |     25.9 ms |
    | cost trends, 7 days by model/provider     |    172.5 ms |
    | provider load & routing, 24 h             |     21.5 ms |
    | top spending users, 7 days                |     75.1 ms |
    | per-user usage, 30 days (page of 50)      |    452.8 ms |
    | gateway logs, newest 50                   |     29.2 ms |
    | top spenders by scanning request_logs     |    983   ms |   (what rollups avoid)

    CSV export of 100,000 rows (78 MiB) over HTTP: 11.8 s, peak RSS growth 0.0 MiB
    (the same export buffered whole by the client: +146 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from backend.config import Settings
from backend.data import histogram
from backend.data.db import close_db, init_db, migrate
from backend.data.events import LocalBus
from backend.data.models.tenancy import Organization, User
from backend.exports.routes import admin_routes
from backend.gateway import Gateway
from backend.graphql.app import create_graphql_app
from backend.security.sessions import issue_token
from backend.state.store import ConfigStore

MODELS = [
    ("openai/gpt-4o", "openai", 250, 1000),
    ("openai/gpt-4o-mini", "openai", 15, 60),
    ("anthropic/claude-sonnet", "anthropic", 300, 1500),
    ("gemini/gemini-2.0-flash", "gemini", 10, 40),
    ("ollama/llama3", "ollama", 0, 0),
]
LOG_COLUMNS = (
    "request_id, created_at, key_prefix, user_id, app_id, org_id, endpoint, requested_model, "
    "actual_model, provider, status, error_type, error_message, input_tokens, output_tokens, "
    "cached_tokens, cost_usd, latency_ms, ttft_ms, streamed, attempts, superseded, cache_hit, "
    "agent_id, tier, request_body, response_body"
)
BATCH = 50_000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def money(units: int) -> str:
    """Exact 8-decimal text of an amount in 1e-8 USD units."""
    return f"{units // 10**8}.{units % 10**8:08d}"


def db_time(t: dt.datetime) -> str:
    # Tortoise's SQLite form (``str(datetime)``): queries compare these strings.
    return str(t)


def seed_logs(
    path: Path,
    now: dt.datetime,
    user_ids: list[int],
    org_of: dict[int, int],
    rows: int,
    export_user: int,
    export_rows: int,
) -> None:
    """Insert the logs and their rollups with plain sqlite3 (executemany, one commit a batch)."""
    rng = random.Random(7)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    start = now - dt.timedelta(days=30)
    span_s = int((now - start).total_seconds())
    rollups: dict[tuple[str, int, int, str, str], list[int | float]] = {}
    minutes: dict[str, list[Any]] = {}
    others = [u for u in user_ids if u != export_user]
    big_body = orjson.dumps(
        {"messages": [{"role": "user", "content": "Summarize [EMAIL_1]'s " + "notes " * 60}]}
    ).decode()
    small_body = '{"messages":[{"role":"user","content":"hi"}]}'
    answer = orjson.dumps({"content": "Here is the summary. " * 10}).decode()
    # Secondary indexes are rebuilt once at the end: much faster than updating them per row.
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'request_logs'"
        " AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    sql = f"INSERT INTO request_logs ({LOG_COLUMNS}) VALUES ({', '.join('?' * 27)})"
    done = 0
    t0 = time.perf_counter()
    while done < rows:
        n = min(BATCH, rows - done)
        batch = []
        for i in range(done, done + n):
            mine = (
                i % max(1, rows // export_rows) == 0
                and i // max(1, rows // export_rows) < export_rows
            )
            user = export_user if mine else others[rng.randrange(len(others))]
            org = org_of[user]
            created = start + dt.timedelta(
                seconds=rng.randrange(span_s), microseconds=rng.randrange(10**6)
            )
            model, provider, in_price, out_price = MODELS[rng.randrange(len(MODELS))]
            status = 500 if rng.random() < 0.02 else 200
            tin, tout = rng.randrange(50, 4000), rng.randrange(10, 800)
            # Prices per million tokens in 1e-2 USD: cost in 1e-8 USD units.
            units = tin * in_price + tout * out_price
            latency = rng.lognormvariate(6, 0.6)
            batch.append(
                (
                    f"req-{i:08d}",
                    db_time(created),
                    f"sb-{user:08x}",
                    user,
                    None,
                    org,
                    "/v1/chat/completions",
                    model.split("/")[1],
                    model,
                    provider,
                    status,
                    None if status == 200 else "upstream_error",
                    None,
                    tin,
                    tout,
                    0,
                    money(units),
                    round(latency, 3),
                    None,
                    0,
                    1,
                    0,
                    0,
                    None,
                    None,
                    big_body if mine else small_body,
                    answer if mine else '{"content":"ok"}',
                )
            )
            hour = db_time(created.replace(minute=0, second=0, microsecond=0))
            agg = rollups.setdefault((hour, user, org, model, provider), [0, 0, 0, 0, 0, 0.0])
            agg[0] += 1
            agg[1] += status >= 400
            agg[2] += tin
            agg[3] += tout
            agg[4] += units
            agg[5] += latency
            minute = db_time(created.replace(second=0, microsecond=0))
            m = minutes.setdefault(minute, [0, 0, 0, 0, {}])
            m[0] += 1
            m[1] += status >= 400
            m[2] += tin + tout
            m[3] += units
            k = histogram.bucket_key(latency)
            m[4][k] = m[4].get(k, 0) + 1
        conn.executemany(sql, batch)
        conn.commit()
        done += n
        rate = done / (time.perf_counter() - t0)
        log(f"  request_logs: {done:>9,} / {rows:,}  ({rate:,.0f} rows/s)")
    log(f"  rebuilding {len(indexes)} indexes of request_logs")
    for _, index_sql in indexes:
        conn.execute(index_sql)
    conn.executemany(
        "INSERT INTO usage_rollups (bucket, user_id, app_id, org_id, model, provider, requests,"
        " errors,"
        " input_tokens, output_tokens, cached_tokens, cost_usd, latency_ms_sum)"
        " VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
        # In bucket order, as the log writer creates them while time passes.
        [
            (h, u, o, mo, p, a[0], a[1], a[2], a[3], money(int(a[4])), a[5])
            for (h, u, o, mo, p), a in sorted(rollups.items())
        ],
    )
    conn.executemany(
        "INSERT INTO minute_stats (bucket, requests, errors, tokens, cost_usd, latency_hist)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (mi, a[0], a[1], a[2], money(a[3]), orjson.dumps(a[4]).decode())
            for mi, a in sorted(minutes.items())
        ],
    )
    conn.commit()
    log(f"  usage_rollups: {len(rollups):,} rows, minute_stats: {len(minutes):,} rows")
    conn.execute("ANALYZE")
    conn.close()


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4  # resident pages x 4 KiB


class RssSampler:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib())
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self.peak = rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def timed(fn: Callable[[], Any], runs: int = 5) -> tuple[float, Any]:
    out = await fn()  # warm-up (and the answer, for the table)
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), out


QUERIES = {
    "live, last 60 min (per minute, p50/p95)": """{ dashboard { live {
        requests errors tokens costUsd p50Ms p95Ms minutes { minute requests p95Ms } } } }""",
    "cost trends, 7 days by model/provider": """{ dashboard { costTrends {
        day costUsd requests byModel { model costUsd } byProvider { provider costUsd } } } }""",
    "provider load & routing, 24 h": """{ dashboard { routingStrategy providerLoad {
        provider requests share errors avgLatencyMs health } } }""",
    "top spending users, 7 days": """{ dashboard { topSpenders(limit: 10) {
        costUsd requests user { name } } } }""",
    "per-user usage, 30 days (page of 50)": """{ userUsage(first: 50) { totalCount nodes {
        requests inputTokens outputTokens costUsd user { name } } } }""",
    "gateway logs, newest 50": """{ gatewayLogs(first: 50) { nodes {
        createdAt keyPrefix endpoint requestedModel actualModel totalTokens costUsd
        user { name } } pageInfo { endCursor } } }""",
}


def answer_summary(name: str, data: dict[str, Any]) -> str:
    d = data["data"]
    if "live" in name:
        live = d["dashboard"]["live"]
        return f"{live['requests']} req, p50 {live['p50Ms']} ms, p95 {live['p95Ms']} ms"
    if "trends" in name:
        days = d["dashboard"]["costTrends"]
        return f"{len(days)} days, today ${float(days[-1]['costUsd']):,.2f}"
    if "provider" in name:
        rows = d["dashboard"]["providerLoad"]
        return ", ".join(f"{r['provider']} {r['share']:.0%}" for r in rows[:3])
    if "top" in name:
        rows = d["dashboard"]["topSpenders"]
        return f"#1 ${float(rows[0]['costUsd']):,.2f}"
    if "usage" in name:
        return f"{d['userUsage']['totalCount']} users"
    return f"{len(d['gatewayLogs']['nodes'])} rows"


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--export-rows", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=100)
    args = ap.parse_args()
    if args.export_rows > args.rows:
        ap.error("--export-rows cannot exceed --rows")

    with tempfile.TemporaryDirectory(prefix="sb-dashbench-") as tmp:
        path = Path(tmp) / "bench.sqlite3"
        url = f"sqlite:///{path}"
        now = dt.datetime.now(dt.UTC)
        log(f"migrating {path}")
        await migrate(url)
        await init_db(url)
        orgs = [await Organization.create(name=f"Org {i}", slug=f"org-{i}") for i in range(5)]
        users = [
            await User.create(
                name=f"User {i:03d}", email=f"u{i}@example.com", organization=orgs[i % 5]
            )
            for i in range(args.users)
        ]
        admin = await User.create(name="Admin", email="admin@example.com", role="super_admin")
        token, _ = await issue_token(admin, "admin", now=now)
        org_of = {u.id: orgs[i % 5].id for i, u in enumerate(users)}
        export_user = users[0].id
        log(f"seeding {args.rows:,} request logs ({args.export_rows:,} for user {export_user})")
        t = time.perf_counter()
        seed_logs(
            path, now, [u.id for u in users], org_of, args.rows, export_user, args.export_rows
        )
        seed_s = time.perf_counter() - t

        bus = LocalBus()
        store = ConfigStore(bus)
        await store.load_all()
        gw = Gateway(settings=Settings(database_url=url), bus=bus, store=store)
        gql = create_graphql_app(gw)
        app = Starlette(
            routes=[
                Route("/graphql", gql, methods=["GET", "POST"]),
                WebSocketRoute("/graphql", gql),
                *admin_routes(gw),
            ]
        )
        headers = {"Authorization": f"Bearer {token}"}
        results: list[tuple[str, float, str]] = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers=headers,
            timeout=120,
        ) as client:
            for name, query in QUERIES.items():

                async def call(q: str = query) -> dict[str, Any]:
                    resp = await client.post("/graphql", json={"query": q})
                    body: dict[str, Any] = resp.json()
                    assert not body.get("errors"), body["errors"]
                    return body

                ms, out = await timed(call)
                results.append((name, ms, answer_summary(name, out)))
                log(f"  {name}: {ms:.1f} ms")

        # The same "top spenders" number by scanning the log table, for comparison.
        conn = sqlite3.connect(path)
        since = db_time(dt.datetime.combine(now.date() - dt.timedelta(days=6), dt.time(), dt.UTC))
        t = time.perf_counter()
        conn.execute(
            "SELECT user_id, SUM(cost_usd) AS c FROM request_logs WHERE created_at >= ? "
            "GROUP BY user_id ORDER BY c DESC LIMIT 10",
            (since,),
        ).fetchall()
        scan_ms = (time.perf_counter() - t) * 1000
        total_rows = conn.execute("SELECT COUNT(*) FROM request_logs").fetchone()[0]
        conn.close()

        log(f"exporting user {export_user} as CSV over HTTP")
        async with (
            serve(app) as base,
            httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client,
        ):
            gc.collect()
            before = rss_kib()
            size = lines = 0
            t = time.perf_counter()
            with RssSampler() as sampler:
                async with client.stream("GET", f"/admin/users/{export_user}/activity.csv") as resp:
                    assert resp.status_code == 200, await resp.aread()
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        lines += chunk.count(b"\n")
            export_s = time.perf_counter() - t
            growth_mib = (sampler.peak - before) / 1024
        # For contrast, and to show the sampler sees growth when there is some: httpx's
        # ASGITransport collects the whole response body in memory before returning it.
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers=headers,
            timeout=600,
        ) as client:
            gc.collect()
            buffered_before = rss_kib()
            with RssSampler() as sampler:
                resp = await client.get(f"/admin/users/{export_user}/activity.csv")
                buffered_size = len(resp.content)
            buffered_mib = (sampler.peak - buffered_before) / 1024
            del resp
        await close_db()

    print(
        f"\n### Dashboard on {total_rows:,} request-log rows (SQLite, seeded in {seed_s:.0f} s)\n"
    )
    print("| query (GraphQL, through the API) | median of 5 | answer |")
    print("|---|---:|---|")
    for name, ms, summary in results:
        print(f"| {name} | {ms:.1f} ms | {summary} |")
    print(f"| *for comparison: top spenders by scanning request_logs* | {scan_ms:.0f} ms | |")
    print("\n### User activity CSV export (streamed over HTTP)\n")
    print("| rows | CSV size | time | rows/s | RSS before | peak RSS growth |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {lines - 1:,} | {size / 2**20:.1f} MiB | {export_s:.1f} s | "
        f"{(lines - 1) / export_s:,.0f} "
        f"| {before / 1024:.0f} MiB | {growth_mib:.1f} MiB |"
    )
    print(
        f"\nFor contrast, the same {buffered_size / 2**20:.0f} MiB export read whole into memory "
        f"(httpx ASGITransport buffers the body): peak RSS growth {buffered_mib:.1f} MiB."
    )
    flat = growth_mib < max(32.0, size / 2**20 / 4)
    print(
        f"\nExport memory: {'flat' if flat else 'NOT flat'} "
        f"(growth {growth_mib:.1f} MiB for {size / 2**20:.0f} MiB of CSV)."
    )


if __name__ == "__main__":
    asyncio.run(main())
