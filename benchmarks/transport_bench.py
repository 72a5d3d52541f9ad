"""What one upstream call costs the gateway's process, per transport (``SWITCHBOARD_TRANSPORT``).

    .venv/bin/python benchmarks/transport_bench.py                 # CPU-s per call, interleaved
    .venv/bin/python benchmarks/transport_bench.py --callgrind     # instructions per call

``Upstream.post`` (non-streamed, body read whole) and ``Upstream.stream`` (20-chunk SSE, read
chunk by chunk) against the nginx fake of ``run.py``, 32 calls in flight, uvloop, in this process.

- Default mode: rounds of every transport back to back (interleaved A/B), CPU time of this
  process (all its threads: reqwest's tokio thread counts) per call; medians over rounds.
  Process CPU time, not wall time, so another process on the core changes little.
- ``--callgrind``: each transport runs under ``valgrind --tool=callgrind`` twice, with N and 2N
  calls; (instructions(2N) - instructions(N)) / N is the cost of one call without start-up.
  Instruction counts do not depend on what else the machine does (same binary, same inputs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TRANSPORTS = ("reqwest", "aiohttp", "httpx-aiohttp")
BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _calls(base: str, transport: str, calls: int, stream: bool, conc: int = 32) -> float:
    """CPU seconds per call, after a warm-up of ``conc`` calls."""
    from backend.providers.http import make_http_client

    client = make_http_client(base, transport=transport, timeout_s=30)  # type: ignore[arg-type]
    path = "sse/v1/chat/completions" if stream else "v1/chat/completions"
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

    async def one() -> None:
        if stream:
            async with client.stream("POST", path, content=BODY, headers=headers) as resp:
                async for _ in resp.aiter_bytes():
                    pass
        else:
            resp = await client.post(path, content=BODY, headers=headers)
            assert resp.status_code == 200

    async def worker(n: int) -> None:
        for _ in range(n):
            await one()

    try:
        await asyncio.gather(*(worker(1) for _ in range(conc)))
        start = _cpu()
        await asyncio.gather(*(worker(calls // conc) for _ in range(conc)))
        return (_cpu() - start) / (calls // conc * conc)
    finally:
        await client.aclose()


def _one(args: argparse.Namespace) -> None:
    import uvloop

    per = uvloop.run(_calls(args.base, args.transport, args.calls, args.stream))
    print(f"{per * 1e6:.1f}")


def _fake(workdir: Path) -> object:
    from benchkit.fake import FakeProvider

    return FakeProvider(workdir, cpus=None).start()


def _callgrind_instr(base: str, transport: str, calls: int, stream: bool) -> int:
    out = tempfile.mktemp(prefix="cg-", suffix=".out")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    cmd += [sys.executable, __file__, "--one", "--base", base, "--transport", transport]
    cmd += ["--calls", str(calls)] + (["--stream"] if stream else [])
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    match = re.search(r"Collected : (\d+)", done.stderr)
    Path(out).unlink(missing_ok=True)
    if not match:
        raise RuntimeError(done.stderr[-2000:])
    return int(match.group(1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--callgrind", action="store_true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=3200)
    p.add_argument("--transports", default=",".join(TRANSPORTS))
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    p.add_argument("--transport", help=argparse.SUPPRESS)
    p.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        _one(args)
        return 0
    transports = args.transports.split(",")
    workdir = Path(tempfile.mkdtemp(prefix="transport-bench-"))
    fake = _fake(workdir)
    base = fake.base  # type: ignore[attr-defined]
    try:
        for stream in (False, True):
            what = "streamed 20-chunk SSE" if stream else "non-streamed JSON"
            if args.callgrind:
                n = min(args.calls, 320)
                print(f"{what}: instructions per call (callgrind, {n} vs {2 * n} calls)")
                for t in transports:
                    one = _callgrind_instr(base, t, n, stream)
                    two = _callgrind_instr(base, t, 2 * n, stream)
                    print(f"  {t:<14} {(two - one) / n:>12,.0f}")
                continue
            per: dict[str, list[float]] = {t: [] for t in transports}
            for _ in range(args.rounds):
                for t in transports:
                    cmd = [sys.executable, __file__, "--one", "--base", base, "--transport", t]
                    cmd += ["--calls", str(args.calls)] + (["--stream"] if stream else [])
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    per[t].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"{what}: CPU µs per call (median of {args.rounds} interleaved rounds)")
            for t in transports:
                print(f"  {t:<14} {statistics.median(per[t]):>8.1f}   {per[t]}")
    finally:
        fake.stop()  # type: ignore[attr-defined]
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
