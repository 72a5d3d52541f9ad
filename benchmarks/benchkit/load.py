"""Load generators: wrk (non-streaming) and pyload (streams, and the fallback when wrk is absent).

Both run pinned to the load CPU (CPU 0, shared with the fake provider) and return a ``Load``:
requests/s over the successful responses, latency percentiles in milliseconds, error counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.procs import pinned

PYLOAD = Path(__file__).with_name("pyload.py")

WRK_LUA = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Load:
    """One measured run. Latencies in ms; for streams ``p*`` is the full stream."""

    rps: float
    p50: float | None
    p90: float | None
    p99: float | None
    requests: int
    errors: dict[str, int]
    duration_s: float
    ttft: dict[str, float | None] = field(default_factory=dict)
    tool: str = "wrk"
    #: CPU share (1.0 = one core) the server under test used during the run, set by the caller.
    server_cpu: float | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _lua_headers(headers: Mapping[str, str]) -> str:
    lines = ['wrk.headers["Content-Type"] = "application/json"']
    for name, value in headers.items():
        if '"' in name + value or "\\" in name + value:
            raise ValueError(f"header {name!r} cannot be quoted for wrk")
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    return "\n".join(lines)


def run_wrk(
    wrk: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    connections: int,
    duration: float,
    cpus: str | None = "0",
) -> Load:
    if b"]==]" in body:
        raise ValueError("body cannot be embedded in a Lua long string")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA.format(body=body.decode(), headers=_lua_headers(headers)))
        script = f.name
    try:
        cmd = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            script,
            url,
        ]
        out = subprocess.run(
            pinned(cmd, cpus), capture_output=True, text=True, timeout=duration + 60, check=False
        )
    finally:
        Path(script).unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]}"
        )
    r = json.loads(line[len("BENCHJSON ") :])
    errors = {k: int(r[k]) for k in ("connect", "read", "write", "status", "timeout") if r[k]}
    secs = r["duration_us"] / 1e6
    ok = r["requests"] - r["status"]
    empty = r["requests"] == 0
    return Load(
        rps=ok / secs,
        p50=None if empty else r["p50"] / 1000,
        p90=None if empty else r["p90"] / 1000,
        p99=None if empty else r["p99"] / 1000,
        requests=r["requests"],
        errors=errors,
        duration_s=secs,
        tool="wrk",
    )


def run_pyload(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    connections: int,
    duration: float,
    warmup: float = 0.5,
    first_token: bytes = b"",
    end: bytes = b"",
    requests: int = 0,
    cpus: str | None = "0",
    python: str = sys.executable,
) -> Load:
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(body)
        body_file = f.name
    try:
        cmd = [
            python,
            str(PYLOAD),
            "--url",
            url,
            "--body",
            body_file,
            "--connections",
            str(connections),
            "--duration",
            str(duration),
            "--warmup",
            str(warmup),
            "--requests",
            str(requests),
            "--first-token",
            first_token.decode(),
            "--end",
            end.decode(),
        ]
        for name, value in headers.items():
            cmd += ["--header", f"{name}: {value}"]
        out = subprocess.run(
            pinned(cmd, cpus),
            capture_output=True,
            text=True,
            timeout=duration + warmup + 90,
            check=False,
        )
    finally:
        Path(body_file).unlink(missing_ok=True)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"pyload failed ({out.returncode}): {out.stderr[-1500:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    total = r["total_ms"]
    return Load(
        rps=r["rps"],
        p50=total["p50"],
        p90=total["p90"],
        p99=total["p99"],
        requests=r["requests"],
        errors={k: v for k, v in r["errors"].items() if v},
        duration_s=r["duration_s"],
        ttft=r["ttft_ms"],
        tool="pyload",
    )
