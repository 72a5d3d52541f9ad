"""Load generators: wrk (non-streaming) and pyload (streams, and the fallback when wrk is absent).

Both run pinned to the load CPU (CPU 0, shared with the fake provider) and return a ``Load``:
requests/s over the successful responses, latency percentiles in milliseconds, error counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
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
    #: Share of the server's CPU that other processes used during the run (machine noise).
    others_cpu: float | None = None

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


class Running:
    """A load generator started in the background; ``wait()`` returns its ``Load``."""

    def __init__(
        self,
        cmd: list[str],
        parse: Callable[[str], Load],
        cleanup: Path,
        timeout: float,
    ) -> None:
        self.parse = parse
        self.cleanup = cleanup
        self.timeout = timeout
        self.popen = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def wait(self) -> Load:
        try:
            out, err = self.popen.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            out, err = self.popen.communicate()
        finally:
            self.cleanup.unlink(missing_ok=True)
        try:
            return self.parse(out)
        except (ValueError, KeyError, IndexError) as exc:
            raise RuntimeError(
                f"{self.popen.args!r} failed ({self.popen.returncode}): {out[-800:]} {err[-1500:]}"
            ) from exc


def start_wrk(
    wrk: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    connections: int,
    duration: float,
    cpus: str | None = "0",
) -> Running:
    if b"]==]" in body:
        raise ValueError("body cannot be embedded in a Lua long string")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA.format(body=body.decode(), headers=_lua_headers(headers)))
        script = f.name
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
    cmd += ["-s", script, url]
    return Running(pinned(cmd, cpus), _parse_wrk, Path(script), duration + 60)


def _parse_wrk(stdout: str) -> Load:
    line = next(x for x in stdout.splitlines() if x.startswith("BENCHJSON "))
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
    return start_wrk(
        wrk, url, body, headers, connections=connections, duration=duration, cpus=cpus
    ).wait()


def start_pyload(
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
) -> Running:
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(body)
        body_file = f.name
    cmd = [python, str(PYLOAD), "--url", url, "--body", body_file]
    cmd += ["--connections", str(connections), "--duration", str(duration)]
    cmd += ["--warmup", str(warmup), "--requests", str(requests)]
    cmd += ["--first-token", first_token.decode(), "--end", end.decode()]
    for name, value in headers.items():
        cmd += ["--header", f"{name}: {value}"]
    return Running(pinned(cmd, cpus), _parse_pyload, Path(body_file), duration + warmup + 90)


def _parse_pyload(stdout: str) -> Load:
    r = json.loads(stdout.strip().splitlines()[-1])
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
) -> Load:
    return start_pyload(
        url,
        body,
        headers,
        connections=connections,
        duration=duration,
        warmup=warmup,
        first_token=first_token,
        end=end,
        requests=requests,
        cpus=cpus,
    ).wait()
