"""Where the gateway's idle memory goes: RSS of a started gateway, measured as ``run.py`` does.

    .venv/bin/python benchmarks/memory_bench.py                    # idle RSS, 3 starts, median
    .venv/bin/python benchmarks/memory_bench.py --load 10          # + RSS after 10 s of load
    .venv/bin/python benchmarks/memory_bench.py --env MALLOC_ARENA_MAX=2   # A/B an env variable
    .venv/bin/python benchmarks/memory_bench.py --python-view      # tracemalloc + import sizes

Each start is the harness's gateway (``benchkit/targets.py``: fresh seeded SQLite database,
``python -m backend.cli serve --workers 1`` pinned to CPU 1, nginx fake on CPU 0), one smoke
request per scenario, 2 s of quiet, then VmRSS of the process tree from /proc (``rss_mb``,
the figure the table shows), with a line per process (anonymous vs file-backed RSS, threads).

``--python-view`` runs the app's start-up (``create_app`` and its lifespan, as ``serve`` does)
in a child under ``tracemalloc`` and prints the top allocations by top-level module and the
RSS the import of each big package adds, so a start-up cost can be traced to its module.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import payloads, targets
from benchkit.fake import FakeProvider
from benchkit.load import start_pyload, start_wrk
from benchkit.procs import ensure_debian_tool, progress, rss_mb, tree

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--starts", type=int, default=3, help="gateways started, median taken")
    p.add_argument("--load", type=float, default=0.0, help="seconds of wrk + streams after idle")
    p.add_argument("--transport", default="reqwest")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    p.add_argument("--python-view", action="store_true", help="tracemalloc view of start-up")
    return p.parse_args()


def _status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def process_lines(pid: int) -> list[str]:
    """One line per process of the tree: RSS split into anonymous and file-backed, threads."""
    lines = []
    for p in tree(pid):
        st = _status(p)
        if not st:
            continue
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:70]
        lines.append(
            f"  pid {p}: RSS {st.get('VmRSS', '?')} (anon {st.get('RssAnon', '?')}, "
            f"file {st.get('RssFile', '?')}), threads {st.get('Threads', '?')}: {cmd}"
        )
    return lines


def one_start(
    fake: FakeProvider,
    workdir: Path,
    args: argparse.Namespace,
    wrk: str | None,
    load_cpu: str | None,
    server_cpu: str | None,
) -> tuple[float, float | None]:
    extra = dict(kv.split("=", 1) for kv in args.env)
    gw = targets.gateway(fake, workdir, server_cpu, transport=args.transport, extra_env=extra)
    try:
        assert gw.proc is not None
        time.sleep(1)
        progress(f"started (before any request) {rss_mb(gw.proc.pid):.1f} MB")
        failed = targets.smoke(gw)
        if failed:
            progress(f"smoke requests failed: {failed}")
        pid = gw.proc.pid
        time.sleep(2)  # as run.py: after start-up and one request per scenario
        idle = rss_mb(pid)
        progress(f"idle {idle:.1f} MB")
        for line in process_lines(pid):
            progress(line)
        if args.load <= 0:
            return idle, None
        chat, stream = gw.requests["pipeline"], gw.requests["stream"]
        loads = [
            start_pyload(
                stream.url,
                stream.body,
                stream.headers,
                connections=8,
                duration=args.load,
                warmup=0,
                first_token=payloads.FIRST_TOKEN[stream.wire],
                end=payloads.STREAM_END[stream.wire],
                cpus=load_cpu,
            )
        ]
        if wrk:
            loads.append(
                start_wrk(
                    wrk,
                    chat.url,
                    chat.body,
                    chat.headers,
                    connections=16,
                    duration=args.load,
                    cpus=load_cpu,
                )
            )
        for running in loads:
            running.wait()
        loaded = rss_mb(pid)
        progress(f"after {args.load:g} s of load {loaded:.1f} MB")
        return idle, loaded
    finally:
        gw.stop()


def python_view() -> int:
    """Run the start-up in a child under tracemalloc (``_memory_probe`` below)."""
    with tempfile.TemporaryDirectory(prefix="switchboard-mem-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env.update(
            {
                "DATABASE_URL": f"sqlite:///{tmp}/gw.sqlite3",
                "SWITCHBOARD_DATA_DIR": tmp,
                "SWITCHBOARD_SECRET_KEY": "bench-secret-key-not-for-production",
            }
        )
        python = str(ROOT / ".venv" / "bin" / "python")
        subprocess.run([python, "-m", "backend.cli", "migrate"], cwd=ROOT, env=env, check=True)
        return subprocess.run(
            [python, str(Path(__file__).with_name("memory_probe.py"))],
            cwd=ROOT,
            env=env,
            check=False,
        ).returncode


def main() -> int:
    args = parse_args()
    if args.python_view:
        return python_view()
    from run import cpu_layout

    load_cpu, server_cpu, layout = cpu_layout()
    wrk = ensure_debian_tool("wrk", "wrk") if args.load > 0 else None
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-mem-"))
    progress(f"{layout}; work dir {workdir}")
    fake = FakeProvider(workdir / "fake", cpus=load_cpu).start()
    idles: list[float] = []
    loaded: list[float] = []
    try:
        for i in range(args.starts):
            idle, after = one_start(fake, workdir / f"gw{i}", args, wrk, load_cpu, server_cpu)
            idles.append(idle)
            if after is not None:
                loaded.append(after)
    finally:
        fake.stop()
    line = f"idle RSS: median {statistics.median(idles):.1f} MB of {len(idles)} starts " + (
        "(" + ", ".join(f"{x:.1f}" for x in idles) + ")"
    )
    if loaded:
        line += f"; after {args.load:g} s of load: median {statistics.median(loaded):.1f} MB"
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
