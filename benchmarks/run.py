"""Switchboard benchmark suite: one command, issue 19's table (see benchmarks/README.md).

    .venv/bin/python benchmarks/run.py              # everything, ~25 minutes (10-minute soak)
    .venv/bin/python benchmarks/run.py --quick      # 1 round of 3 s runs, 1-minute soak (~7 min)
    .venv/bin/python benchmarks/run.py --no-litellm --workers 0 --soak-minutes 0 --no-tenants

The fake provider (nginx) and the load generators (wrk; pyload for streams) run on CPU 0, the
server under test on CPU 1, over loopback. Each round measures every server back to back, so
ratios are taken within one round; the table shows medians over rounds. Progress goes to stderr,
the table to stdout, raw figures to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import cg, payloads, phases, targets
from benchkit.fake import FakeProvider
from benchkit.load import Load, run_pyload, run_wrk
from benchkit.procs import cpu_busy, cpu_seconds, ensure_debian_tool, progress, rss_mb
from benchkit.report import Results, fmt_num, median
from benchkit.table import Extras, build_table
from benchkit.targets import Target

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Which scenarios each phase runs; a target runs those it has a request for.
LOAD = ("chat", "anthropic", "pipeline", "full")
STREAM = ("stream", "stream_full")
SEQ = ("chat", "pipeline", "full")
SEQ_STREAM = ("stream",)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="repeats of every run (median reported)")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per loaded run")
    p.add_argument("--seq-duration", type=float, default=2.5, help="seconds per 1-connection run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument(
        "--litellm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run LiteLLM's proxy (own venv, created on first use)",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="also run the gateway with N workers (0: skip)"
    )
    p.add_argument("--transport", default="reqwest", help="SWITCHBOARD_TRANSPORT for the gateway")
    p.add_argument("--server", default=None, help="serve --server (default: serve's own)")
    p.add_argument(
        "--tenants",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="CPU per request with the tenant-scale seed (100,000 keys...) against 3 keys",
    )
    p.add_argument(
        "--soak-minutes", type=float, default=None, help="memory soak at saturation (10; quick: 1)"
    )
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="py-spy the full pipeline and list the three biggest costs",
    )
    p.add_argument(
        "--dashboard-rows",
        type=int,
        default=None,
        help="dashboard queries at N log rows, SQLite and PostgreSQL (db_scale.py; 10,000,000,"
        " quick: 200,000; seeding 10M takes ~20 min per database; 0: skip)",
    )
    p.add_argument(
        "--dashboard-reuse",
        action="store_true",
        help="time the dashboard queries on the databases a `db_scale.py --rows N --keep` seeded"
        " (seeds only what is missing)",
    )
    p.add_argument("--quick", action="store_true", help="1 round of 3 s runs (harness check)")
    p.add_argument("--no-install", action="store_true", help="never apt-get install nginx/wrk")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.duration, args.seq_duration = 1, 3.0, 1.5
    if args.soak_minutes is None:
        args.soak_minutes = 1.0 if args.quick else 10.0
    if args.dashboard_rows is None:
        args.dashboard_rows = 200_000 if args.quick else 10_000_000
    return args


def cpu_layout() -> tuple[str | None, str | None, str]:
    """(load CPU, server CPU, description)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2 and shutil.which("taskset"):
        return str(cpus[0]), str(cpus[1]), f"load+fake on CPU {cpus[0]}, server on CPU {cpus[1]}"
    return None, None, f"not pinned ({len(cpus)} CPU available or no taskset)"


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        wrk: str | None,
        load_cpu: str | None,
        server_cpu: str | None,
    ) -> None:
        self.args = args
        self.wrk = wrk
        self.load_cpu = load_cpu
        self.server_cpu = server_cpu
        self.results: Results = {}
        self.fake_cpu: list[float] = []  # fake provider's CPU share during proxied runs
        self.fake: FakeProvider | None = None

    def measure(
        self,
        target: Target,
        phase: str,
        scenario: str,
        *,
        record: bool = True,
        duration: float | None = None,
    ) -> Load | None:
        req = target.requests.get(scenario)
        if req is None:
            return None
        a = self.args
        stream = phase.startswith(("stream", "seq_stream"))
        conns = 1 if phase.startswith("seq") else a.connections
        secs = duration or (a.seq_duration if phase.startswith("seq") else a.duration)
        pid = target.proc.pid if target.proc is not None else None
        fake_pid = self.fake.proc.pid if self.fake and self.fake.proc else None
        # CPU share of the server (or of nginx, for direct runs) over the load tool's wall time.
        watched = pid or fake_pid
        cpu0 = cpu_seconds(watched) if watched else None
        fake0 = cpu_seconds(fake_pid) if fake_pid and pid else None
        wall0 = time.monotonic()
        busy0 = cpu_busy(self.server_cpu)
        if stream or self.wrk is None:
            load = run_pyload(
                req.url,
                req.body,
                req.headers,
                connections=conns,
                duration=secs,
                warmup=0.5,
                first_token=payloads.FIRST_TOKEN[req.wire] if stream else b"",
                end=payloads.STREAM_END[req.wire] if stream else b"",
                cpus=self.load_cpu,
            )
        else:
            load = run_wrk(
                self.wrk,
                req.url,
                req.body,
                req.headers,
                connections=conns,
                duration=secs,
                cpus=self.load_cpu,
            )
        wall = time.monotonic() - wall0
        if cpu0 is not None and watched:
            load.server_cpu = (cpu_seconds(watched) - cpu0) / wall
            busy1 = cpu_busy(self.server_cpu)
            pinned_here = target.proc is not None and target.proc.cpus == self.server_cpu
            if pinned_here and self.server_cpu is not None and busy1[1] > busy0[1]:
                busy = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
                load.others_cpu = max(0.0, busy - load.server_cpu)
        if fake0 is not None and fake_pid:
            self.fake_cpu.append((cpu_seconds(fake_pid) - fake0) / wall)
        if record:
            self.results.setdefault((target.name, f"{phase}:{scenario}"), []).append(load)
            lat = (
                f"ttft p50 {fmt_num(load.ttft.get('p50'))} ms, full p50 {fmt_num(load.p50)} ms"
                if stream
                else f"p50 {fmt_num(load.p50)} ms"
            )
            errs = f", ERRORS {load.errors}" if load.error_count else ""
            cpu = "" if load.server_cpu is None else f", server CPU {load.server_cpu:.0%}"
            if load.others_cpu is not None and load.others_cpu > 0.05:
                cpu += f" (others on its CPU: {load.others_cpu:.0%})"
            progress(
                f"  {target.name:<24} {phase}:{scenario:<12} {fmt_num(load.rps)} /s, {lat}"
                f"{cpu}{errs}"
            )
        return load


def start_targets(
    args: argparse.Namespace, fake: FakeProvider, workdir: Path, server_cpu: str | None
) -> tuple[list[Target], list[str]]:
    notes: list[str] = []
    out = [targets.direct(fake)]
    for client in ("aiohttp", "reqwest"):
        progress(f"starting the minimal proxy ({client})")
        out.append(targets.minimal_proxy(fake, workdir, server_cpu, client))
    progress("seeding a database and starting the gateway (python -m backend.cli serve)")
    gw = targets.gateway(
        fake, workdir / "gateway", server_cpu, transport=args.transport, server=args.server
    )
    out.append(gw)
    if args.litellm:
        progress("starting LiteLLM's proxy (its own venv: benchmarks/.litellm-venv)")
        try:
            out.append(targets.litellm(fake, workdir / "litellm", server_cpu))
        except Exception as exc:  # reported, the rest of the run goes on
            progress(f"LiteLLM failed to start: {exc}")
            notes.append(f"LiteLLM could not be measured: {str(exc).splitlines()[0]}")
    for t in out:
        broken = targets.smoke(t)
        for scenario in broken:
            t.requests.pop(scenario, None)
            notes.append(f"{t.name}: scenario '{scenario}' failed its smoke request, not measured")
    return out, notes


def run_rounds(bench: Bench, ts: list[Target]) -> None:
    a = bench.args
    progress("warm-up (not recorded)")
    for t in ts:
        for scen in ("chat", "pipeline", "stream"):
            bench.measure(
                t, "stream" if scen == "stream" else "load", scen, record=False, duration=1.5
            )
    plan: list[tuple[str, tuple[str, ...]]] = [
        ("load", LOAD),
        ("stream", STREAM),
        ("seq", SEQ),
        ("seq_stream", SEQ_STREAM),
    ]
    for r in range(a.rounds):
        progress(f"round {r + 1}/{a.rounds}")
        for phase, scenarios in plan:
            for scen in scenarios:
                for t in ts:
                    # The direct and minimal-proxy baselines only answer chat / stream.
                    bench.measure(t, phase, scen)


def run_workers(
    bench: Bench, fake: FakeProvider, workdir: Path, n: int, server_cpu: str | None
) -> tuple[list[Target], str]:
    """1 worker vs ``n`` workers, both with Redis (``serve --workers N`` requires it)."""
    all_cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    measured: list[Target] = []
    try:
        redis, url = targets.redis_server(
            workdir / "redis", bench.load_cpu, install=not bench.args.no_install
        )
    except Exception as exc:
        return [], f"scaling run skipped: {str(exc).splitlines()[0]}"
    try:
        for workers, cpus in ((1, server_cpu), (n, all_cpus)):
            progress(f"scaling: gateway --workers {workers} with Redis on CPU(s) {cpus}")
            try:
                gw = targets.gateway(
                    fake,
                    workdir / f"gateway-w{workers}",
                    cpus,
                    workers=workers,
                    transport=bench.args.transport,
                    server=bench.args.server,
                    redis_url=url,
                )
            except Exception as exc:
                return measured, f"--workers {workers} run failed: {str(exc).splitlines()[0]}"
            try:
                if targets.smoke(gw):
                    return measured, f"--workers {workers}: smoke request failed"
                bench.measure(gw, "load", "pipeline", record=False, duration=1.5)
                for _ in range(bench.args.rounds):
                    bench.measure(gw, "load", "pipeline")
                measured.append(gw)
            finally:
                gw.stop()
    finally:
        redis.stop()
    return measured, (
        f"scaling: Redis on CPU {bench.load_cpu}; 1 worker pinned to CPU {server_cpu}, "
        f"{n} workers spread over CPUs {all_cpus}, which they share with nginx, wrk and Redis "
        "(a 2-vCPU machine cannot show 2× without a third core for the load)"
    )


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    load_cpu, server_cpu, layout = cpu_layout()
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    wrk = ensure_debian_tool("wrk", "wrk", install=not args.no_install)
    notes: list[str] = []
    if wrk is None:
        progress("wrk unavailable: non-streaming load uses pyload (Python) as well")
        notes.append("wrk was not available: non-streaming runs used pyload (an asyncio client)")
    progress(f"CPU layout: {layout}; work dir {workdir}")
    fake = FakeProvider(workdir / "fake", cpus=load_cpu).start(allow_install=not args.no_install)
    bench = Bench(args, wrk, load_cpu, server_cpu)
    bench.fake = fake
    ts: list[Target] = []
    extras = Extras(soak_minutes=args.soak_minutes, dashboard_rows=args.dashboard_rows)
    try:
        ts, start_notes = start_targets(args, fake, workdir, server_cpu)
        notes += start_notes
        time.sleep(2)
        idle = {t.name: rss_mb(t.proc.pid) for t in ts if t.proc is not None}
        run_rounds(bench, ts)
        for t in ts:
            if t.proc is not None:
                extras.memory[t.name] = (idle[t.name], rss_mb(t.proc.pid))
        for t in ts:
            if t.name != "gateway":
                t.stop()  # the rest runs against the gateway alone
        gw = next(t for t in ts if t.name == "gateway")
        if args.profile:
            progress("profile: py-spy (--gil) on the full pipeline under load")
            try:
                extras.costs = phases.top_costs(gw, wrk, load_cpu=load_cpu)
            except Exception as exc:  # reported, the rest of the run goes on
                notes.append(f"profile failed: {str(exc).splitlines()[0]}")
        if args.soak_minutes > 0:
            progress(f"soak: {args.soak_minutes:g} minutes at saturation, RSS sampled")
            extras.soak = phases.soak(gw, wrk, minutes=args.soak_minutes, load_cpu=load_cpu)
        gw.stop()
        if args.workers > 1:
            workers_targets, note = run_workers(bench, fake, workdir, args.workers, server_cpu)
            extras.workers = [w.name for w in workers_targets]
            notes.append(note)
        if args.tenants and cg.available():
            progress("tenant scale: instructions per request under callgrind, 3 vs 100,003 keys")
            extras.tenants = phases.tenant_scale_callgrind(
                fake, workdir, transport=args.transport, requests=300 if args.quick else 600
            )
        elif args.tenants and wrk:
            progress("tenant scale: full pipeline, 3 keys vs the 100,000-key seed, interleaved")
            extras.tenants = phases.tenant_scale(
                fake,
                workdir,
                wrk,
                server_cpu=server_cpu,
                load_cpu=load_cpu,
                transport=args.transport,
                rounds=max(3, args.rounds),
                duration=max(3.0, args.duration / 2),
            )
        elif args.tenants:
            extras.tenants_note = "not run (needs wrk)"
        if args.dashboard_rows:
            extras.dashboard, extras.dashboard_export = phases.dashboard_queries(
                args.dashboard_rows, reuse=args.dashboard_reuse
            )
    finally:
        for t in ts:
            t.stop()
        fake.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.monotonic() - started
    others = [x.others_cpu for v in bench.results.values() for x in v if x.others_cpu is not None]
    if others:
        noisy = (median(others) or 0) > 0.2
        notes.insert(
            0 if noisy else len(notes),
            ("⚠ NOT REPRESENTATIVE: " if noisy else "noise: ")
            + f"other processes (or the hypervisor) used a median {median(others):.0%} "
            f"(max {max(others):.0%}) "
            f"of the server's CPU {server_cpu} during the server runs"
            + ("; the ≈N/CPU-s figures estimate an undisturbed core" if noisy else ""),
        )
    if bench.fake_cpu:
        notes.append(
            f"fake provider ({fake.kind}) CPU during proxied runs: at most "
            f"{max(bench.fake_cpu) * 100:.0f}% of its core (never the bottleneck)"
        )
    notes += [
        f"{args.rounds} round(s) of {args.duration:g} s loaded runs ({args.connections} keep-alive "
        f"connections) and {args.seq_duration:g} s one-connection runs; medians over rounds; "
        "ratios and added latency paired within each round",
        f"{layout}; wrk for non-streaming, pyload (asyncio, own process) for streams; "
        f"gateway transport: {args.transport}; {platform.node()} {os.cpu_count()} vCPU, "
        f"Python {platform.python_version()}; total {elapsed / 60:.1f} min",
        "Server CPU = CPU time the server process used during the run, per wall second "
        "(~100% = its core is saturated, so the figure measures the server itself); "
        "≈N/CPU-s = throughput divided by that share, i.e. what one whole core would give: "
        "when it is well above the raw figure, other processes on this shared machine took "
        "the server's core during the run",
    ]
    if extras.costs:
        notes.append(
            "biggest costs left (py-spy --gil, full pipeline, share of the gateway's Python "
            "samples): "
            + "; ".join(
                f"{i}. {name} {share:.0%}" for i, (name, share) in enumerate(extras.costs, 1)
            )
        )
    table = build_table(args, bench.results, [t.name for t in ts] + extras.workers, extras, notes)
    print(table.markdown())
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw = {
        "args": vars(args),
        "results": {f"{k[0]}|{k[1]}": [x.as_dict() for x in v] for k, v in bench.results.items()},
        "memory_mb": extras.memory,
        "tenants_us": None if extras.tenants is None else extras.tenants.rounds,
        "soak_mb": None if extras.soak is None else extras.soak.samples,
        "costs": extras.costs,
        "dashboard_ms": extras.dashboard,
        "notes": notes,
    }
    (RESULTS_DIR / f"run-{stamp}.json").write_text(json.dumps(raw, indent=1))
    (RESULTS_DIR / "last.md").write_text(table.markdown() + "\n")
    progress(f"done in {elapsed / 60:.1f} min; raw figures in benchmarks/results/run-{stamp}.json")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
