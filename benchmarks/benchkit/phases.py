"""The parts of ``run.py`` beyond the rounds: tenant scale, soak, profile, dashboard queries.

Each returns plain figures for ``run.py``'s table; none of them decides a verdict.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import payloads, targets
from benchkit.fake import FakeProvider
from benchkit.load import Running, run_wrk, start_pyload, start_wrk
from benchkit.procs import cpu_seconds, pinned, progress, rss_mb

BENCH = Path(__file__).resolve().parents[1]


# -- tenant scale ---------------------------------------------------------------------------------
@dataclass
class TenantResult:
    small_us: float  # cost per request, 3 organizations / 3 keys
    large_us: float  # the same with the tenant-scale population seeded
    rounds: list[tuple[float, float]] = field(default_factory=list)
    #: "callgrind" (instructions per request) or "cpu" (CPU µs per request)
    unit: str = "cpu"

    @property
    def change(self) -> float:
        return self.large_us / self.small_us - 1


def tenant_scale_callgrind(
    fake: FakeProvider, workdir: Path, *, transport: str, requests: int
) -> TenantResult:
    """Instructions per request under callgrind (``cg_gateway.py``), 3 keys against the
    tenant-scale seed: the same on a busy and on a quiet machine, unlike CPU time (the
    gateway's start-up with 100,000 keys under valgrind takes a few minutes)."""
    from cg_gateway import measure_variant

    figures = [
        measure_variant(
            fake,
            workdir / f"tenants-cg-{flag}",
            {"transport": transport, "tenants": flag},
            scenario="pipeline",
            requests=requests,
            connections=32,
        )
        for flag in ("0", "1")
    ]
    return TenantResult(figures[0], figures[1], [(figures[0], figures[1])], unit="callgrind")


def tenant_scale(
    fake: FakeProvider,
    workdir: Path,
    wrk: str,
    *,
    server_cpu: str | None,
    load_cpu: str | None,
    transport: str,
    rounds: int,
    duration: float,
) -> TenantResult:
    """CPU per request (process CPU time / requests) of the full pipeline, the small seed against
    the tenant-scale seed (``seed.py --tenants``), in interleaved rounds: the machine's noise
    hits both alike, and CPU time (not wall time) is what the target compares."""
    gws = [
        targets.gateway(fake, workdir / "tenants-small", server_cpu, transport=transport),
        targets.gateway(
            fake, workdir / "tenants-large", server_cpu, transport=transport, tenants=True
        ),
    ]
    try:
        for gw in gws:
            req = gw.requests["pipeline"]
            run_wrk(
                wrk, req.url, req.body, req.headers, connections=32, duration=1.5, cpus=load_cpu
            )
        per: list[list[float]] = [[], []]
        for _ in range(rounds):
            for i, gw in enumerate(gws):
                assert gw.proc is not None
                req = gw.requests["pipeline"]
                cpu0 = cpu_seconds(gw.proc.pid)
                load = run_wrk(
                    wrk,
                    req.url,
                    req.body,
                    req.headers,
                    connections=32,
                    duration=duration,
                    cpus=load_cpu,
                )
                done = load.rps * load.duration_s
                if done:
                    per[i].append((cpu_seconds(gw.proc.pid) - cpu0) / done * 1e6)
        small, large = (statistics.median(p) for p in per)
        return TenantResult(small, large, list(zip(per[0], per[1], strict=False)))
    finally:
        for gw in gws:
            gw.stop()


# -- soak ------------------------------------------------------------------------------------------
@dataclass
class SoakResult:
    idle_mb: float
    samples: list[tuple[float, float]]  # (seconds, MB)
    flat: bool
    text: str


def soak(
    gw: targets.Target,
    wrk: str | None,
    *,
    minutes: float,
    load_cpu: str | None,
    tolerance: float = 0.05,
) -> SoakResult:
    """Saturate ``gw`` with wrk (16 connections) and 8 streams for ``minutes``, sampling RSS;
    flat when every sample after the first minute is within ``tolerance`` of that minute's."""
    from soak import verdict

    assert gw.proc is not None
    pid = gw.proc.pid
    total = minutes * 60
    interval = min(60.0, total / 4)
    idle = rss_mb(pid)
    chat, stream = gw.requests["pipeline"], gw.requests["stream"]
    loads: list[Running] = []
    if wrk:
        loads.append(
            start_wrk(
                wrk,
                chat.url,
                chat.body,
                chat.headers,
                connections=16,
                duration=total,
                cpus=load_cpu,
            )
        )
    loads.append(
        start_pyload(
            stream.url,
            stream.body,
            stream.headers,
            connections=8,
            duration=total,
            warmup=0,
            first_token=payloads.FIRST_TOKEN[stream.wire],
            end=payloads.STREAM_END[stream.wire],
            cpus=load_cpu,
        )
    )
    started = time.monotonic()
    samples: list[tuple[float, float]] = []
    at = interval
    while at <= total + 1e-6:
        time.sleep(max(0.0, started + at - time.monotonic()))
        samples.append((at, rss_mb(pid)))
        progress(f"  soak: {at / 60:.1f} min, RSS {samples[-1][1]:.1f} MB")
        at += interval
    for running in loads:
        running.wait()
    flat, text = verdict(samples, min(60.0, interval), tolerance)
    return SoakResult(idle, samples, flat, text)


# -- profile ---------------------------------------------------------------------------------------
def top_costs(
    gw: targets.Target, wrk: str | None, *, load_cpu: str | None, seconds: float = 10.0
) -> list[tuple[str, float]]:
    """py-spy (--gil) on the full pipeline under load: the components with the most samples."""
    from profile_gateway import ensure_py_spy, fold

    assert gw.proc is not None
    py_spy = ensure_py_spy()
    raw = Path(tempfile.mkstemp(suffix=".txt")[1])
    cmd = [py_spy, "record", "--pid", str(gw.proc.pid), "--rate", "200"]
    cmd += ["--duration", str(int(seconds)), "--format", "raw", "-o", str(raw)]
    cmd += ["--nonblocking", "--gil"]
    spy = threading.Thread(
        target=lambda: subprocess.run(
            pinned(cmd, load_cpu), check=False, capture_output=True, timeout=seconds + 60
        )
    )
    req = gw.requests["pipeline"]
    spy.start()
    if wrk:
        run_wrk(
            wrk, req.url, req.body, req.headers, connections=32, duration=seconds, cpus=load_cpu
        )
    spy.join()
    try:
        total, _, _, comps = fold(raw)
    finally:
        raw.unlink(missing_ok=True)
    if not total:
        return []
    return [(name, n / total) for name, n in comps.most_common(3)]


# -- dashboard -------------------------------------------------------------------------------------
def dashboard_queries(rows: int, reuse: bool = False) -> tuple[list[tuple[str, float]], str]:
    """``db_scale.py --rows N`` on SQLite and PostgreSQL (``benchkit/dbscale.py``): one row per
    database with its slowest query, and the CSV export line."""
    from benchkit import dbscale

    return dbscale.dashboard_queries(rows, reuse=reuse)
