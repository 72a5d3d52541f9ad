"""Profile the gateway under load with py-spy and print where its CPU goes.

    .venv/bin/python benchmarks/profile_gateway.py                    # full pipeline, no stream
    .venv/bin/python benchmarks/profile_gateway.py --scenario stream  # streaming
    .venv/bin/python benchmarks/profile_gateway.py --svg profile.svg  # also a flame graph

Same harness as ``run.py`` (nginx fake and load on CPU 0, gateway on CPU 1). py-spy samples the
gateway for ``--duration`` seconds (``pip install py-spy`` into .venv first; it is installed on
demand here) and this script folds the samples into three tables: by own time (the function on
top of the stack), by inclusive time (the function anywhere on the stack, counted once per
sample), and by area (backend package, starlette, uvicorn, aiohttp, tortoise, ...).
Scenarios: chat, pipeline, full, anthropic, stream, stream_full (see benchkit/targets.py).

py-spy samples Python threads: with the default ``reqwest`` transport the HTTP work in Rust runs
on tokio's own thread, outside the GIL, and shows only where Python waits on it or converts its
results (``upstream HTTP: pyreqwest``); callgrind (``cg_gateway.py``) counts that thread too.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import payloads, targets
from benchkit.fake import FakeProvider
from benchkit.load import run_pyload, run_wrk
from benchkit.procs import ensure_debian_tool, pinned, progress
from run import cpu_layout

ROOT = Path(__file__).resolve().parents[1]
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

#: Where a sample's CPU goes: the first component (in this order) with a frame on its stack.
#: Components that wrap everything (ASGI server, Starlette) come last and are matched on the
#: top frame only, so they keep just their own work.
COMPONENTS = (
    ("pricing (PriceBook, genai_prices)", ("backend/pricing/", "genai_prices/")),
    (
        "log writer (batched DB writes, aiosqlite thread)",
        ("backend/data/log_writer.py", "aiosqlite/", "tortoise/"),
    ),
    ("DLP (redact, restore)", ("backend/dlp/", "backend/policies/dlp.py")),
    ("budget (reserve, settle, rate)", ("backend/budget/", "backend/policies/budget.py")),
    ("upstream HTTP: pyreqwest (Python side)", ("pyreqwest/", "reqwest_transport.py")),
    ("upstream HTTP: aiohttp", ("aiohttp/", "multidict/", "yarl/")),
    (
        "upstream HTTP: httpx types + transport adapter",
        ("httpx/", "httpx_aiohttp/", "httpcore/", "backend/providers/http.py", "aio_transport.py"),
    ),
    ("wire codecs + SSE (decode, encode)", ("backend/protocols/",)),
    ("request ids (uuid4)", ("uuid.py",)),
    ("logging module", ("logging/",)),
)
LEAF_COMPONENTS = (
    ("ASGI server (uvicorn, httptools)", ("uvicorn/", "httptools")),
    ("Starlette + anyio (routing, responses)", ("starlette/", "anyio/")),
    ("gateway glue (proxy, pipeline, routing, auth)", ("backend/",)),
)
#: Frames that wrap every request: left out of the inclusive table.
WRAPPERS = (
    "<frozen runpy>",
    "backend/cli.py",
    "uvicorn/",
    "starlette/",
    "asyncio/",
    "anyio/",
    "threading.py",
    "backend/proxy/chat.py:openai_chat_completions",
    "backend/proxy/chat.py:anthropic_messages",
)

Counts = collections.Counter[str]


def ensure_py_spy() -> str:
    exe = ROOT / ".venv" / "bin" / "py-spy"
    if exe.exists():
        return str(exe)
    found = shutil.which("py-spy")
    if found:
        return found
    progress("installing py-spy into .venv (pip install py-spy)")
    subprocess.run([str(ROOT / ".venv" / "bin" / "pip"), "install", "-q", "py-spy"], check=True)
    return str(exe)


def parse_frame(frame: str) -> tuple[str, str]:
    """``func (path/file.py:123)`` -> (``func``, ``short/path.py``)."""
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    path = m.group("file")
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return m.group("func"), path


def component_of(paths: list[str]) -> str:
    for label, needles in COMPONENTS:
        if any(n in p for p in paths for n in needles):
            return label
    for label, needles in LEAF_COMPONENTS:
        if any(n in paths[-1] for n in needles):
            return label
    return "event loop, stdlib, other"


def fold(raw: Path) -> tuple[int, Counts, Counts, Counts]:
    """(samples, own time by function, inclusive time by function, samples by component)."""
    total = 0
    own: Counts = collections.Counter()
    incl: Counts = collections.Counter()
    comps: Counts = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [parse_frame(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f[0].startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        func, path = frames[-1]
        own[f"{path}:{func}"] += n
        comps[component_of([p for _, p in frames])] += n
        for key in {f"{p}:{f}" for f, p in frames}:
            incl[key] += n
    return total, own, incl, comps


def print_tables(total: int, own: Counts, incl: Counts, comps: Counts, top: int) -> None:
    print(f"\n{total} samples (non-idle)\n")
    print("| Component (first match on the stack) | % of samples |\n|---|---|")
    for key, n in comps.most_common():
        print(f"| {key} | {n / total:.1%} |")
    print("\n| Own time (top of stack) | % |\n|---|---|")
    for key, n in own.most_common(top):
        print(f"| `{key}` | {n / total:.1%} |")
    print("\n| Inclusive (anywhere on the stack, request wrappers left out) | % |\n|---|---|")
    shown = [(k, n) for k, n in incl.most_common() if not k.startswith(WRAPPERS)][:top]
    for key, n in shown:
        print(f"| `{key}` | {n / total:.1%} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", default="pipeline")
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--transport", default="reqwest")
    p.add_argument("--redis", action="store_true", help="gateway with REDIS_URL (own server)")
    p.add_argument("--svg", help="also write a flame graph here")
    p.add_argument("--raw", help="keep the collapsed stacks here")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()

    py_spy = ensure_py_spy()
    wrk = ensure_debian_tool("wrk", "wrk")
    load_cpu, server_cpu, layout = cpu_layout()
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-profile-"))
    progress(f"{layout}; work dir {workdir}")
    fake = FakeProvider(workdir / "fake", cpus=load_cpu).start()
    gw = None
    redis = None
    try:
        url = None
        if args.redis:
            redis, url = targets.redis_server(workdir / "redis", load_cpu)
        gw = targets.gateway(
            fake, workdir / "gateway", server_cpu, transport=args.transport, redis_url=url
        )
        failed = targets.smoke(gw)
        req = gw.requests.get(args.scenario)
        if req is None or args.scenario in failed:
            raise SystemExit(f"scenario {args.scenario!r} is not available: {failed}")
        stream = args.scenario.startswith("stream")
        assert gw.proc is not None
        pid = gw.proc.pid
        raw = Path(args.raw) if args.raw else workdir / "stacks.txt"
        outputs = [("raw", raw)] + ([("flamegraph", Path(args.svg))] if args.svg else [])

        def spy(fmt: str, out: Path) -> None:
            subprocess.run(
                pinned(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        str(args.rate),
                        "--duration",
                        str(int(args.duration)),
                        "--format",
                        fmt,
                        "-o",
                        str(out),
                        "--nonblocking",
                        # Only samples where the thread holds the GIL: a thread waiting for it
                        # (the event loop while reqwest's tokio thread hands a result over)
                        # would otherwise count as busy in the frame that waits.
                        "--gil",
                    ],
                    load_cpu,
                ),
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        # Warm up, then sample while the load runs.
        run_wrk(
            wrk,
            gw.requests["chat"].url,
            gw.requests["chat"].body,
            gw.requests["chat"].headers,
            connections=args.connections,
            duration=2,
            cpus=load_cpu,
        ) if wrk else None
        spies = [threading.Thread(target=spy, args=o) for o in outputs]
        for t in spies:
            t.start()
        if stream or wrk is None:
            load = run_pyload(
                req.url,
                req.body,
                req.headers,
                connections=args.connections,
                duration=args.duration,
                warmup=0.5,
                first_token=payloads.FIRST_TOKEN[req.wire] if stream else b"",
                end=payloads.STREAM_END[req.wire] if stream else b"",
                cpus=load_cpu,
            )
        else:
            load = run_wrk(
                wrk,
                req.url,
                req.body,
                req.headers,
                connections=args.connections,
                duration=args.duration,
                cpus=load_cpu,
            )
        for t in spies:
            t.join()
        progress(f"{args.scenario}: {load.rps:,.0f}/s under py-spy (sampling slows it a little)")
        if not raw.exists() or raw.stat().st_size == 0:
            raise SystemExit("py-spy recorded nothing (ptrace not permitted? run as root)")
        print_tables(*fold(raw), args.top)
        if args.svg:
            progress(f"flame graph: {args.svg}")
    finally:
        if gw is not None:
            gw.stop()
        if redis is not None:
            redis.stop()
        fake.stop()
        if not args.raw:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
