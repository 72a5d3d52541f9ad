"""Instructions per request of a server under test, counted by callgrind (load-independent).

The server starts under ``valgrind --tool=callgrind --instr-atstart=no``: start-up runs without
instrumentation; after a warm-up, ``callgrind_control -i on`` switches counting on, a fixed
number of requests is sent (pyload, in its own process, not counted), then counting stops and
the totals are dumped. The figure is the server's instructions (every thread: reqwest's tokio
thread and aiosqlite's writer thread count) divided by the requests. It is the same on a quiet
and on a busy machine, so A/B decisions and the tenant-scale row use it (valgrind is on every
machine of this kind; ``--vgdb`` is valgrind's default and what ``callgrind_control`` uses).

Work done in the background after the window (a log flush that falls outside it) is not counted,
so the window is long (``requests``) and the flush interval short next to it.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from benchkit import payloads
from benchkit.load import run_pyload
from benchkit.procs import progress


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def wrap(cmd: list[str], out_dir: Path) -> list[str]:
    """``cmd`` under callgrind, counting off until ``switch_on``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--trace-children=no",
        f"--callgrind-out-file={out_dir}/cg.%p",
        *cmd,
    ]


def _control(pid: int, *args: str) -> None:
    subprocess.run(
        ["callgrind_control", *args, str(pid)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _totals(out_dir: Path, pid: int) -> int:
    """Sum of the ``totals:`` lines of every dump of ``pid`` so far (``summary:`` is the
    current thread's share only)."""
    total = 0
    for path in glob.glob(f"{out_dir}/cg.{pid}*"):
        text = Path(path).read_text(errors="replace")
        m = re.search(r"^totals: (\d+)", text, re.M)
        if m:
            total += int(m.group(1))
    return total


def instructions_per_request(
    pid: int,
    out_dir: Path,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    requests: int,
    connections: int,
    stream: bool = False,
    wire: str = "openai",
    load_cpu: str | None = None,
) -> float:
    """Warm up, count ``requests`` requests, return instructions per request."""
    first = payloads.FIRST_TOKEN[wire] if stream else b""
    end = payloads.STREAM_END[wire] if stream else b""
    kw = {"first_token": first, "end": end, "cpus": load_cpu, "warmup": 0.0}
    run_pyload(url, body, headers, connections=connections, duration=600, requests=50, **kw)
    # Dumps made before the window (none expected) are removed so the sum is the window only.
    for path in glob.glob(f"{out_dir}/cg.{pid}*"):
        os.unlink(path)
    _control(pid, "-z")
    _control(pid, "-i", "on")
    started = time.monotonic()
    load = run_pyload(
        url, body, headers, connections=connections, duration=600, requests=requests, **kw
    )
    _control(pid, "-i", "off")
    _control(pid, "-d")
    counted = load.requests or requests
    if load.error_count:
        raise RuntimeError(f"{load.error_count} errors while counting: {load.errors}")
    total = _totals(out_dir, pid)
    progress(
        f"  callgrind: {total:,} instructions over {counted} requests "
        f"({time.monotonic() - started:.0f} s under valgrind)"
    )
    return total / counted
