"""Soak: steady traffic (streaming and not) through the gateway, resident memory every minute.

    .venv/bin/python benchmarks/soak.py                 # 10 minutes
    .venv/bin/python benchmarks/soak.py --minutes 2     # a shorter check

Same harness as ``run.py``: nginx fake provider and the load on CPU 0, the gateway on CPU 1,
full pipeline (auth, alias, weekly cap, logging; ``--dlp`` adds DLP). Two load generators run
side by side for the whole time: wrk with ``--connections`` non-streaming requests and pyload
with ``--stream-connections`` streams. Every minute it prints the gateway's resident memory
(VmRSS of its process tree from /proc); at the end the verdict: memory is *flat* when every
sample after the warm-up stays within ``--tolerance`` (10%) of the value at the end of warm-up.
Exit code 0 when flat, 1 when not, 2 when the traffic itself failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import payloads, targets
from benchkit.fake import FakeProvider
from benchkit.load import Running, start_pyload, start_wrk
from benchkit.procs import cpu_seconds, ensure_debian_tool, progress, rss_mb
from run import cpu_layout


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--warmup-minutes", type=float, default=1.0)
    p.add_argument("--interval", type=float, default=60.0, help="seconds between memory samples")
    p.add_argument("--connections", type=int, default=16, help="non-streaming connections")
    p.add_argument("--stream-connections", type=int, default=8)
    p.add_argument("--tolerance", type=float, default=0.10)
    p.add_argument("--dlp", action="store_true", help="use the DLP organization's key")
    p.add_argument("--transport", default="reqwest")
    return p.parse_args()


def verdict(samples: list[tuple[float, float]], warmup_s: float, tol: float) -> tuple[bool, str]:
    """Flat when every sample after warm-up is within ``tol`` of the first one after it."""
    after = [(t, mb) for t, mb in samples if t >= warmup_s - 1e-6]
    if len(after) < 2:
        return True, "too short to judge (need two samples after warm-up)"
    base = after[0][1]
    worst = max(after[1:], key=lambda s: abs(s[1] - base))
    change = (worst[1] - base) / base
    flat = abs(change) <= tol
    word = "FLAT" if flat else "NOT FLAT"
    return flat, (
        f"{word}: {base:.1f} MB after warm-up, largest change {change:+.1%} "
        f"({worst[1]:.1f} MB at {worst[0] / 60:.0f} min), final {after[-1][1]:.1f} MB; "
        f"tolerance ±{tol:.0%}"
    )


def main() -> int:
    args = parse_args()
    total_s = args.minutes * 60
    wrk = ensure_debian_tool("wrk", "wrk")
    load_cpu, server_cpu, layout = cpu_layout()
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-soak-"))
    progress(f"{layout}; work dir {workdir}")
    fake = FakeProvider(workdir / "fake", cpus=load_cpu).start()
    gw = None
    loads: list[tuple[str, Running]] = []
    try:
        gw = targets.gateway(fake, workdir / "gateway", server_cpu, transport=args.transport)
        chat_s, stream_s = ("full", "stream_full") if args.dlp else ("pipeline", "stream")
        failed = targets.smoke(gw)
        if chat_s in failed or stream_s in failed:
            progress(f"smoke requests failed: {failed}")
            return 2
        assert gw.proc is not None
        pid = gw.proc.pid
        time.sleep(2)
        idle = rss_mb(pid)
        print(f"idle (after start-up): {idle:.1f} MB", flush=True)
        chat, stream = gw.requests[chat_s], gw.requests[stream_s]
        if wrk:
            loads.append(
                (
                    "non-streaming (wrk)",
                    start_wrk(
                        wrk,
                        chat.url,
                        chat.body,
                        chat.headers,
                        connections=args.connections,
                        duration=total_s,
                        cpus=load_cpu,
                    ),
                )
            )
        loads.append(
            (
                "streaming (pyload)",
                start_pyload(
                    stream.url,
                    stream.body,
                    stream.headers,
                    connections=args.stream_connections,
                    duration=total_s,
                    warmup=0,
                    first_token=payloads.FIRST_TOKEN[stream.wire],
                    end=payloads.STREAM_END[stream.wire],
                    cpus=load_cpu,
                ),
            )
        )
        started = time.monotonic()
        cpu0 = cpu_seconds(pid)
        samples: list[tuple[float, float]] = []
        print("\n| minute | RSS (MB) | gateway CPU |\n|---|---|---|", flush=True)
        next_at = args.interval
        while next_at <= total_s + 1e-6:
            time.sleep(max(0.0, started + next_at - time.monotonic()))
            mb, cpu = rss_mb(pid), cpu_seconds(pid)
            samples.append((next_at, mb))
            share = (cpu - cpu0) / args.interval
            cpu0 = cpu
            print(f"| {next_at / 60:g} | {mb:.1f} | {share:.0%} |", flush=True)
            next_at += args.interval
        print()
        ok_traffic = True
        for name, running in loads:
            load = running.wait()
            errs = f", errors {load.errors}" if load.error_count else ""
            print(
                f"{name}: {load.requests:,} in {load.duration_s:.0f} s "
                f"({load.rps:,.0f}/s, p50 {load.p50 or 0:.1f} ms){errs}",
                flush=True,
            )
            ok_traffic = (
                ok_traffic and load.requests > 0 and load.error_count <= load.requests // 1000
            )
        loads = []
        flat, text = verdict(samples, args.warmup_minutes * 60, args.tolerance)
        print(text, flush=True)
        if not ok_traffic:
            print("traffic failed (errors above 0.1% or no requests): see the lines above")
            return 2
        return 0 if flat else 1
    finally:
        for _, running in loads:
            running.popen.kill()
            running.popen.wait()
        if gw is not None:
            gw.stop()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
