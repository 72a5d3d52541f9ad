"""Child processes of a benchmark: started pinned to CPUs, awaited on a port, measured, stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def progress(msg: str) -> None:
    """Progress goes to stderr so stdout carries only the final table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: Sequence[str], cpus: str | None) -> list[str]:
    """Prefix ``cmd`` with ``taskset -c cpus`` (a no-op where taskset or the CPUs are missing)."""
    if not cpus or shutil.which("taskset") is None:
        return list(cmd)
    wanted = {int(c) for part in cpus.split(",") for c in _cpu_range(part)}
    if not wanted <= os.sched_getaffinity(0):
        return list(cmd)
    return ["taskset", "-c", cpus, *cmd]


def _cpu_range(part: str) -> range:
    lo, _, hi = part.partition("-")
    return range(int(lo), int(hi or lo) + 1)


@dataclass
class Proc:
    name: str
    cmd: list[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    cpus: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            pinned(self.cmd, self.cpus),
            env=dict(self.env) if self.env is not None else None,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float = 60.0, ok: Sequence[int] = (200,)) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status in ok:
                        return
            except urllib.error.HTTPError as err:
                if err.code in ok:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} not ready at {url} after {timeout:.0f}s:\n{self.log_tail()}"
        )

    def wait_port(self, port: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not listening on {port}:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the process (its whole session: uvicorn workers too), then SIGKILL if stuck."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        rc = self.popen.returncode
        self.popen = None
        return rc


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's workers are children of the supervisor)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of the process tree, MB (VmRSS from /proc)."""
    total_kb = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process tree so far."""
    ticks = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def ensure_debian_tool(binary: str, package: str, *, install: bool = True) -> str | None:
    """Path of ``binary``; if missing, ``apt-get install -y package`` (root only), else None."""
    found = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if found or not install or shutil.which("apt-get") is None:
        return found
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        return None
    progress(f"{binary} missing: apt-get install -y {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        [*sudo, "apt-get", "update", "-qq"], env=env, check=False, stdout=subprocess.DEVNULL
    )
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", package],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )


def cpu_busy(cpu: str | None) -> tuple[float, float]:
    """(busy, total) jiffies of one CPU (``/proc/stat``), or of all when ``cpu`` is None.

    Busy is user + nice + system + steal (time the hypervisor gave to another guest).
    """
    name = "cpu" if cpu is None else f"cpu{cpu}"
    for line in Path("/proc/stat").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            vals = [float(v) for v in parts[1:9]]
            user, nice, system, _idle, _iowait, _irq, _softirq, steal = vals
            # Interrupt time is left out: loopback packets of the server's own sockets are
            # processed there, and it is not charged to any process.
            busy = user + nice + system + steal
            return busy, sum(vals)
    return 0.0, 0.0
