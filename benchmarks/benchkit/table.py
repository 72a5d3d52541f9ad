"""``run.py``'s table: every row of issue 19's targets, with the figure and whether it is met."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from benchkit.load import Load
from benchkit.phases import SoakResult, TenantResult
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
GW = "gateway"
DIRECT_PREFIX = "direct"
MIN_AIO = "minimal aiohttp proxy"
MIN_RQ = "minimal pyreqwest proxy"


@dataclass
class Extras:
    """What the phases after the rounds measured (each may be missing)."""

    memory: dict[str, tuple[float, float]] = field(default_factory=dict)
    workers: list[str] = field(default_factory=list)  # target names: 1 worker, N workers
    tenants: TenantResult | None = None
    tenants_note: str = ""
    soak: SoakResult | None = None
    soak_minutes: float = 0.0
    costs: list[tuple[str, float]] = field(default_factory=list)
    dashboard: list[tuple[str, float]] = field(default_factory=list)
    dashboard_rows: int = 0
    dashboard_export: str = ""


def rps(x: Load) -> float:
    return x.rps


def p50(x: Load) -> float | None:
    return x.p50


def p99(x: Load) -> float | None:
    return x.p99


def ttft50(x: Load) -> float | None:
    return x.ttft.get("p50")


def build_table(
    args: argparse.Namespace,
    res: Results,
    names: list[str],
    extras: Extras,
    notes: list[str],
) -> Table:
    table = Table(notes=notes)
    direct = next(n for n in names if n.startswith(DIRECT_PREFIX))
    litellm = next((n for n in names if n.startswith("LiteLLM")), None)

    def pct(key: tuple[str, str], q: str, ttft: bool = False) -> float | None:
        return med(res, key, lambda x: x.ttft.get(q) if ttft else getattr(x, q))

    def per_core(runs: list[Load]) -> str:
        v = median(x.rps / x.server_cpu for x in runs if x.server_cpu and x.server_cpu > 0.05)
        return "" if v is None else f" (≈{fmt_num(v)}/CPU-s)"

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
        server = name if name != GW else f"gateway: {VARIANTS[scen]}"
        is_base = name == direct
        table.add(
            Row(
                scenario=GROUPS[phase].format(c=args.connections),
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

    # Non-streaming.
    row("load:chat", direct)
    row("load:chat", MIN_AIO)
    row("load:chat", MIN_RQ)
    row("load:chat", GW, "(the cheapest path, for reference)")
    g_pipe = med(res, (GW, "load:pipeline"), rps)
    vs_min = paired(res, (GW, "load:pipeline"), (MIN_AIO, "load:chat"), ratio, rps)
    vs_rq = paired(res, (GW, "load:pipeline"), (MIN_RQ, "load:chat"), ratio, rps)
    row(
        "load:pipeline",
        GW,
        f"≥ 2,000 req/s on one core and ≥ 1.0× the minimal aiohttp proxy (here "
        f"{fmt_num(g_pipe)} req/s, {fmt_ratio(vs_min)}; {fmt_ratio(vs_rq)} of the pyreqwest one)",
        None if g_pipe is None or vs_min is None else g_pipe >= 2000 and vs_min >= 1.0,
    )
    row("load:full", GW, "(DLP on: for reference)")
    if litellm:
        x = paired(res, (GW, "load:pipeline"), (litellm, "load:chat"), ratio, rps)
        row(
            "load:chat",
            litellm,
            f"gateway (full pipeline) ≥ 50× LiteLLM (here {fmt_ratio(x)})",
            None if x is None else x >= 50,
        )
    an = paired(res, (GW, "load:anthropic"), (GW, "load:chat"), ratio, rps)
    row("load:anthropic", GW, f"(no own target; {fmt_ratio(an)} of OpenAI inbound)")

    # Streaming.
    row("stream:stream", direct)
    row("stream:stream", MIN_AIO)
    row("stream:stream", MIN_RQ)
    g_stream = med(res, (GW, "stream:stream"), rps)
    row("stream:stream", GW, "≥ 1,200 streams/s", None if g_stream is None else g_stream >= 1200)
    row("stream:stream_full", GW, "(DLP on: for reference)")
    if litellm:
        row("stream:stream", litellm)

    # Unqueued.
    row("seq:chat", direct)
    row("seq:chat", MIN_AIO)
    row("seq:chat", MIN_RQ)
    row("seq:chat", GW)
    added = paired(res, (GW, "seq:pipeline"), (direct, "seq:chat"), diff, p50)
    added99 = paired(res, (GW, "seq:pipeline"), (direct, "seq:chat"), diff, p99)
    row(
        "seq:pipeline",
        GW,
        f"≤ 0.45 ms added (p50) and p99 ≤ 2 ms added (here {fmt_added(added)} / "
        f"{fmt_added(added99)})",
        None if added is None or added99 is None else added <= 0.45 and added99 <= 2.0,
    )
    row("seq:full", GW)
    if litellm:
        row("seq:chat", litellm)
    row("seq_stream:stream", direct)
    row("seq_stream:stream", MIN_AIO)
    row("seq_stream:stream", MIN_RQ)
    added_ttft = paired(res, (GW, "seq_stream:stream"), (direct, "seq_stream:stream"), diff, ttft50)
    row(
        "seq_stream:stream",
        GW,
        "≤ 0.5 ms added to first token (p50)",
        None if added_ttft is None else added_ttft <= 0.5,
    )
    if litellm:
        row("seq_stream:stream", litellm)

    _memory_rows(table, extras, litellm)
    _workers_rows(table, args, res, extras)
    _tenant_row(table, extras)
    _dashboard_rows(table, extras)
    return table


def _memory_rows(table: Table, extras: Extras, litellm: str | None) -> None:
    scenario = "Resident memory (RSS): idle after start-up → after all rounds"
    for name, (idle, after) in extras.memory.items():
        target, met = "", ""
        if name == GW:
            target, met = "idle ≤ 120 MB", verdict(idle <= 120)
        elif name == litellm:
            target = "(for reference)"
        table.add(
            Row(
                scenario=scenario,
                server=name,
                throughput=f"{idle:.0f} MB → {after:.0f} MB",
                target=target,
                met=met,
            )
        )
    soak = extras.soak
    scenario = f"Memory over a {extras.soak_minutes:g}-minute soak at saturation (wrk + streams)"
    if soak is None:
        table.add(
            Row(
                scenario=scenario,
                server=GW,
                throughput="not run (--soak-minutes 0)",
                target="flat (± 5 %) over 10 minutes",
                met="—",
            )
        )
        return
    series = " → ".join(f"{mb:.0f}" for _, mb in soak.samples)
    short = "" if extras.soak_minutes >= 10 else f"; {extras.soak_minutes:g} min here, not 10"
    table.add(
        Row(
            scenario=scenario,
            server=GW,
            throughput=f"{series} MB",
            latency=soak.text,
            target=f"flat (± 5 %) over 10 minutes{short}",
            met=verdict(soak.flat if extras.soak_minutes >= 10 else None),
        )
    )


def _workers_rows(table: Table, args: argparse.Namespace, res: Results, extras: Extras) -> None:
    if len(extras.workers) != 2:
        return
    one, many = ((w, "load:pipeline") for w in extras.workers)
    n = args.workers
    base_rps = med(res, one, rps)
    for k in (one, many):
        runs = res.get(k, [])
        k_rps = med(res, k, rps)
        per_cpu = median(x.rps / x.server_cpu for x in runs if x.server_cpu)
        gain = None if k_rps is None or not base_rps else k_rps / base_rps
        first = k == one
        table.add(
            Row(
                scenario=f"Full pipeline with Redis caps, 1 vs {n} workers ({args.connections} "
                "conn)",
                server=k[0].replace("gateway (Redis)", "gateway --workers 1 (Redis)"),
                throughput=fmt_num(k_rps, " req/s"),
                latency=fmt_lat(med(res, k, p50), med(res, k, lambda x: x.p90), med(res, k, p99)),
                vs_direct=f"{fmt_ratio(gain)} of 1 worker; {fmt_num(per_cpu)} req/CPU-s",
                cpu=cpu_share(runs),
                target="" if first else f"≥ 1.8× one worker (see notes: {n} vCPUs shared)",
                met="" if first else verdict(None if gain is None else gain >= 1.8),
            )
        )


def _tenant_row(table: Table, extras: Extras) -> None:
    scenario = "Cost as tenants grow: CPU per request, full pipeline"
    target = "within 10 % from 10 to 100,000 keys, 1,000 orgs, 1,000 aliases, 500 agents"
    t = extras.tenants
    if t is None:
        table.add(
            Row(
                scenario=scenario,
                server=GW,
                throughput=extras.tenants_note or "not run",
                target=target,
                met="—",
            )
        )
        return
    if t.unit == "callgrind":
        figures = f"{t.small_us:,.0f} → {t.large_us:,.0f} instructions (3 → 100,003 keys)"
        how = "instructions per request under callgrind (load-independent)"
    else:
        figures = f"{t.small_us:,.0f} µs (3 keys) → {t.large_us:,.0f} µs (100,003 keys)"
        how = "CPU time of the process per request, interleaved rounds"
    table.add(
        Row(
            scenario=scenario,
            server=GW,
            throughput=figures,
            latency=how,
            vs_direct=f"{t.change:+.1%}",
            target=target,
            met=verdict(abs(t.change) <= 0.10),
        )
    )


def _dashboard_rows(table: Table, extras: Extras) -> None:
    scenario = f"Dashboard/GraphQL list queries at {extras.dashboard_rows:,} log rows"
    if not extras.dashboard:
        table.add(
            Row(
                scenario="Dashboard/GraphQL list queries at 10,000,000 log rows",
                server=GW,
                throughput="not run here (--dashboard-rows 10000000; db_scale.py)",
                target="every query ≤ 250 ms; CSV export streams with flat memory",
                met="—",
            )
        )
        return
    short = extras.dashboard_rows < 10_000_000
    for name, ms in extras.dashboard:
        failed = math.isnan(ms)  # that database's run failed (its name says why)
        table.add(
            Row(
                scenario=scenario,
                server=name,
                throughput="—" if failed else f"{ms:,.1f} ms (median of rounds)",
                target="≤ 250 ms" + (" (at 10,000,000 rows)" if short else ""),
                met=verdict(False if failed else None if short else ms <= 250),
            )
        )
    if extras.dashboard_export:
        table.add(Row(scenario=scenario, server="CSV export", throughput=extras.dashboard_export))
