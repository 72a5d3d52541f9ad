"""Switchboard benchmark suite: one command, one table (see benchmarks/README.md).

    .venv/bin/python benchmarks/run.py              # ~6 minutes, 3 rounds, medians
    .venv/bin/python benchmarks/run.py --litellm    # + LiteLLM's proxy side by side
    .venv/bin/python benchmarks/run.py --quick      # 1 round of 3 s runs, to check the harness

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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import payloads, targets
from benchkit.fake import FakeProvider
from benchkit.load import Load, run_pyload, run_wrk
from benchkit.procs import cpu_busy, cpu_seconds, ensure_debian_tool, progress, rss_mb
from benchkit.report import (
    Results,
    Row,
    Table,
    cpu_share,
    diff,
    fmt_added,
    fmt_lat,
    fmt_num,
    fmt_ratio,
    med,
    median,
    paired,
    ratio,
    verdict,
)
from benchkit.targets import Target

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Which scenarios each phase runs; a target runs those it has a request for.
LOAD = ("chat", "anthropic", "pipeline", "full")
STREAM = ("stream", "stream_full")
SEQ = ("chat", "pipeline", "full")
SEQ_STREAM = ("stream",)

GROUPS = {
    "load": "Non-streaming chat ({c} conn)",
    "stream": "Streaming chat, 20-chunk answers ({c} conn)",
    "seq": "Unqueued: 1 connection, sequential requests",
    "seq_stream": "Unqueued streaming: 1 connection, sequential streams",
}
VARIANTS = {
    "chat": "auth + logging only",
    "pipeline": "full pipeline (auth, alias, cap, logging)",
    "full": "full pipeline + DLP",
    "anthropic": "Anthropic inbound (/v1/messages) → OpenAI upstream",
    "stream": "full pipeline (auth, alias, cap, logging)",
    "stream_full": "full pipeline + DLP",
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="repeats of every run (median reported)")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per loaded run")
    p.add_argument("--seq-duration", type=float, default=2.5, help="seconds per 1-connection run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--litellm", action="store_true", help="also run LiteLLM's proxy (own venv)")
    p.add_argument(
        "--workers", type=int, default=0, help="also run the gateway with N workers (scaling)"
    )
    p.add_argument("--transport", default="aiohttp", help="SWITCHBOARD_TRANSPORT for the gateway")
    p.add_argument("--quick", action="store_true", help="1 round of 3 s runs (harness check)")
    p.add_argument("--no-install", action="store_true", help="never apt-get install nginx/wrk")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.duration, args.seq_duration = 1, 3.0, 1.5
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
    progress("starting the minimal aiohttp proxy")
    out.append(targets.minimal_proxy(fake, workdir, server_cpu))
    progress("seeding a database and starting the gateway (python -m backend.cli serve)")
    gw = targets.gateway(fake, workdir / "gateway", server_cpu, transport=args.transport)
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


def build_table(
    bench: Bench,
    ts: list[Target],
    memory: dict[str, tuple[float, float]],
    workers: list[Target],
    notes: list[str],
) -> Table:
    a, res = bench.args, bench.results
    table = Table(notes=notes)
    direct, minimal, gw = ts[0].name, "minimal aiohttp proxy", "gateway"
    litellm = next((t.name for t in ts if t.name.startswith("LiteLLM")), None)

    def rps(x: Load) -> float:
        return x.rps

    def p50(x: Load) -> float | None:
        return x.p50

    def ttft50(x: Load) -> float | None:
        return x.ttft.get("p50")

    def pct(key: tuple[str, str], q: str, ttft: bool = False) -> float | None:
        return med(res, key, lambda x: x.ttft.get(q) if ttft else getattr(x, q))

    def row(key: str, name: str, target: str = "", ok: bool | None = None) -> None:
        runs = res.get((name, key))
        if not runs:
            return
        phase, scen = key.split(":")
        stream = phase in ("stream", "seq_stream")
        k = (name, key)
        base = (direct, f"{phase}:{'stream' if stream else 'chat'}")
        lat = fmt_lat(pct(k, "p50"), pct(k, "p90"), pct(k, "p99"))
        added_of: Callable[[Load], float | None] = p50
        if stream:
            first = fmt_lat(pct(k, "p50", True), pct(k, "p90", True), pct(k, "p99", True))
            lat, added_of = f"first token {first}; whole stream {lat}", ttft50
        errors = sum(x.error_count for x in runs)
        server = name if name != gw else f"gateway: {VARIANTS[scen]}"
        is_base = name == direct
        table.add(
            Row(
                scenario=GROUPS[phase].format(c=a.connections),
                server=server + (f" ⚠ {errors} errors" if errors else ""),
                throughput=fmt_num(med(res, k, rps), " streams/s" if stream else " req/s")
                + ("" if is_base or phase.startswith("seq") else per_core(runs)),
                latency=lat,
                vs_direct="1.00×" if is_base else fmt_ratio(paired(res, k, base, ratio, rps)),
                added="—" if is_base else fmt_added(paired(res, k, base, diff, added_of)),
                cpu=cpu_share(runs),
                target=target,
                met=verdict(ok) if target and not target.startswith("(") else "",
            )
        )

    def per_core(runs: list[Load]) -> str:
        v = median(x.rps / x.server_cpu for x in runs if x.server_cpu and x.server_cpu > 0.05)
        return "" if v is None else f" (≈{fmt_num(v)}/CPU-s)"

    def drop_target(key: str, ref: str, what: str) -> tuple[str, bool | None]:
        r = paired(res, (gw, key), (gw, ref), ratio, rps)
        if r is None:
            return f"≤ 20% below {what}", None
        return f"≤ 20% below {what} (here {(1 - r) * 100:.0f}% below)", r >= 0.8

    # Non-streaming, OpenAI inbound.
    row("load:chat", direct)
    row("load:chat", minimal)
    row("load:chat", gw, "(the cheapest path, for reference)")
    g_pipe = med(res, (gw, "load:pipeline"), rps)
    vs_min = paired(res, (gw, "load:pipeline"), (minimal, "load:chat"), ratio, rps)
    row(
        "load:pipeline",
        gw,
        f"≥ 2,000 req/s and ≥ 0.5× minimal proxy (here {fmt_ratio(vs_min)})",
        None if g_pipe is None or vs_min is None else g_pipe >= 2000 and vs_min >= 0.5,
    )
    row("load:full", gw, *drop_target("load:full", "load:pipeline", "full pipeline"))
    if litellm:
        x = paired(res, (gw, "load:pipeline"), (litellm, "load:chat"), ratio, rps)
        row(
            "load:chat",
            litellm,
            f"gateway (full pipeline) ≥ 25× LiteLLM (here {fmt_ratio(x)})",
            None if x is None else x >= 25,
        )
    # Anthropic inbound.
    an = paired(res, (gw, "load:anthropic"), (gw, "load:chat"), ratio, rps)
    row("load:anthropic", gw, f"(no own target; {fmt_ratio(an)} of OpenAI inbound)")
    if litellm:
        row("load:anthropic", litellm)
    # Streaming.
    row("stream:stream", direct)
    row("stream:stream", minimal)
    g_stream = med(res, (gw, "stream:stream"), rps)
    row("stream:stream", gw, "≥ 1,000 streams/s", None if g_stream is None else g_stream >= 1000)
    row("stream:stream_full", gw, *drop_target("stream:stream_full", "stream:stream", "no DLP"))
    if litellm:
        row("stream:stream", litellm, "(issue 9 measured LiteLLM at 20–30 streams/s)")
    # Unqueued.
    row("seq:chat", direct)
    row("seq:chat", minimal)
    row("seq:chat", gw)
    added = paired(res, (gw, "seq:pipeline"), (direct, "seq:chat"), diff, p50)
    row("seq:pipeline", gw, "≤ 1 ms added (p50)", None if added is None else added <= 1.0)
    row("seq:full", gw)
    if litellm:
        row("seq:chat", litellm, "(issue 9 measured LiteLLM at 13–15 ms added)")
    row("seq_stream:stream", direct)
    row("seq_stream:stream", minimal)
    added_ttft = paired(res, (gw, "seq_stream:stream"), (direct, "seq_stream:stream"), diff, ttft50)
    row(
        "seq_stream:stream",
        gw,
        "≤ 1 ms added to first token (p50)",
        None if added_ttft is None else added_ttft <= 1.0,
    )
    if litellm:
        row("seq_stream:stream", litellm)

    # Memory.
    for name, (idle, after) in memory.items():
        target, met = "", ""
        if name == gw:
            target, met = "idle ≤ 150 MB", verdict(idle <= 150)
        elif name == litellm:
            target = "(issue 9 measured LiteLLM at 324 MB idle, ~500 MB after load)"
        table.add(
            Row(
                scenario="Resident memory (RSS): idle after start-up → after all rounds",
                server=name,
                throughput=f"{idle:.0f} MB → {after:.0f} MB",
                target=target,
                met=met,
            )
        )

    # Scaling (both with Redis, which --workers > 1 requires).
    if len(workers) == 2:
        one, many = ((w.name, "load:pipeline") for w in workers)
        n = int(workers[1].name.split("--workers ")[1].split(" ")[0])
        base_rps = med(res, one, rps)
        for k in (one, many):
            runs = res.get(k, [])
            k_rps = med(res, k, rps)
            per_cpu = median(x.rps / x.server_cpu for x in runs if x.server_cpu)
            gain = None if k_rps is None or not base_rps else k_rps / base_rps
            first = k == one
            table.add(
                Row(
                    scenario=f"Scaling: full pipeline with Redis, 1 vs {n} workers "
                    f"({a.connections} conn)",
                    server=k[0].replace("gateway (Redis)", "gateway --workers 1 (Redis)"),
                    throughput=fmt_num(k_rps, " req/s"),
                    latency=fmt_lat(pct(k, "p50"), pct(k, "p90"), pct(k, "p99")),
                    vs_direct=f"{fmt_ratio(gain)} of 1 worker; {fmt_num(per_cpu)} req/CPU-s",
                    cpu=cpu_share(runs),
                    target="" if first else f"close to {n}× (see notes: shared CPUs)",
                    met="" if first else verdict(None if gain is None else gain >= 0.8 * n),
                )
            )
    return table


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
    memory: dict[str, tuple[float, float]] = {}
    workers_targets: list[Target] = []
    try:
        ts, start_notes = start_targets(args, fake, workdir, server_cpu)
        notes += start_notes
        time.sleep(2)
        idle = {t.name: rss_mb(t.proc.pid) for t in ts if t.proc is not None}
        run_rounds(bench, ts)
        for t in ts:
            if t.proc is not None:
                memory[t.name] = (idle[t.name], rss_mb(t.proc.pid))
        if args.workers > 1:
            gw = next(t for t in ts if t.name == "gateway")
            gw.stop()
            workers_targets, note = run_workers(bench, fake, workdir, args.workers, server_cpu)
            notes.append(note)
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
    table = build_table(bench, ts, memory, workers_targets, notes)
    print(table.markdown())
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw = {
        "args": vars(args),
        "results": {f"{k[0]}|{k[1]}": [x.as_dict() for x in v] for k, v in bench.results.items()},
        "memory_mb": memory,
        "notes": notes,
    }
    (RESULTS_DIR / f"run-{stamp}.json").write_text(json.dumps(raw, indent=1))
    (RESULTS_DIR / "last.md").write_text(table.markdown() + "\n")
    progress(f"done in {elapsed / 60:.1f} min; raw figures in benchmarks/results/run-{stamp}.json")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
