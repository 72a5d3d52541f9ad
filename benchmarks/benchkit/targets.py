"""The servers under test: the gateway, the minimal aiohttp proxy and (optionally) LiteLLM.

Each is a ``Target``: where to send each scenario's requests, which headers to add, and the
process whose memory and CPU are measured. All of them run pinned to the server CPU (CPU 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchkit import payloads
from benchkit.fake import FakeProvider
from benchkit.procs import Proc, ensure_debian_tool, free_port, progress

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
LITELLM_VENV = BENCH / ".litellm-venv"


@dataclass
class Request:
    """One scenario's request against one target."""

    url: str
    body: bytes
    headers: dict[str, str]
    #: For streams: the wire format of the answer (picks the first-token and end markers).
    wire: str = "openai"


@dataclass
class Target:
    name: str
    proc: Proc | None
    port: int
    #: scenario name -> request; a scenario missing here is not run against this target.
    requests: dict[str, Request] = field(default_factory=dict)
    note: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float = 15.0) -> bytes:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return bytes(resp.read())


def smoke(target: Target) -> list[str]:
    """Send each scenario's request once; return the scenarios whose answer is wrong."""
    failed = []
    for scenario, r in target.requests.items():
        try:
            out = _post(r.url, r.body, r.headers)
        except Exception as exc:  # any failure means: do not measure this scenario
            detail = getattr(exc, "read", lambda: b"")()[:300]
            progress(f"{target.name}/{scenario}: smoke request failed: {exc} {detail!r}")
            failed.append(scenario)
            continue
        expect = payloads.STREAM_END[r.wire] if b'"stream":true' in r.body else None
        if expect is not None and expect not in out:
            progress(f"{target.name}/{scenario}: stream has no {expect!r}: {out[:300]!r}")
            failed.append(scenario)
        elif expect is None and b"review meeting" not in out:
            progress(f"{target.name}/{scenario}: unexpected answer: {out[:300]!r}")
            failed.append(scenario)
    return failed


def direct(fake: FakeProvider) -> Target:
    chat = fake.openai_base_url + "/chat/completions"
    sse = fake.sse_base_url + "/chat/completions"
    auth = {"Authorization": "Bearer sk-bench"}
    return Target(
        f"direct ({fake.kind})",
        None,
        fake.port,
        {
            "chat": Request(chat, payloads.openai_request(payloads.MODEL), auth),
            "stream": Request(sse, payloads.openai_request(payloads.MODEL, stream=True), auth),
        },
    )


#: Names of the minimal proxies in the table, by upstream client.
MINIMAL_NAMES = {"aiohttp": "minimal aiohttp proxy", "reqwest": "minimal pyreqwest proxy"}


def minimal_proxy(
    fake: FakeProvider, workdir: Path, cpus: str | None, client: str = "aiohttp"
) -> Target:
    port = free_port()
    env = {**os.environ, "UPSTREAM": fake.base, "CLIENT": client}
    proc = Proc(
        f"minimal-proxy-{client}",
        [sys.executable, str(BENCH / "minimal_proxy.py"), str(port)],
        workdir / f"minimal-proxy-{client}.log",
        env=env,
        cpus=cpus,
    ).start()
    proc.wait_port(port)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer sk-bench"}
    return Target(
        MINIMAL_NAMES[client],
        proc,
        port,
        {
            "chat": Request(
                base + "/v1/chat/completions", payloads.openai_request(payloads.MODEL), auth
            ),
            "stream": Request(
                base + "/sse/v1/chat/completions",
                payloads.openai_request(payloads.MODEL, stream=True),
                auth,
            ),
        },
    )


def _gateway_env(fake: FakeProvider, workdir: Path, transport: str) -> dict[str, str]:
    # Like the e2e harness: no provider settings leak in from the caller's environment.
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir / 'gateway.sqlite3'}",
            "SWITCHBOARD_DATA_DIR": str(workdir),
            "SWITCHBOARD_SECRET_KEY": "bench-secret-key-not-for-production",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": fake.openai_base_url,
            f"SWITCHBOARD_PROVIDER_{payloads.SSE_PROVIDER.upper()}_BASE_URL": fake.sse_base_url,
            f"SWITCHBOARD_PROVIDER_{payloads.SSE_PROVIDER.upper()}_API_KEY": "sk-bench",
            "SWITCHBOARD_TRANSPORT": transport,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


KEYS = ("plain_key", "caps_key", "full_key")


def gateway(
    fake: FakeProvider,
    workdir: Path,
    cpus: str | None,
    *,
    workers: int = 1,
    transport: str = "aiohttp",
    python: str | None = None,
    redis_url: str | None = None,
    server: str | None = None,
    tenants: bool = False,
    wrap: Callable[[list[str]], list[str]] | None = None,
    extra_env: dict[str, str] | None = None,
    name: str | None = None,
) -> Target:
    """Seed a fresh database, start ``python -m backend.cli serve`` pinned, wait for /healthz.

    ``server``: ``serve --server`` (default: serve's own default); ``tenants``: seed the
    tenant-scale population too (``seed.py --tenants``); ``wrap``: a prefix for the command
    (callgrind, ``benchkit/cg.py``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    python = python or str(ROOT / ".venv" / "bin" / "python")
    env = _gateway_env(fake, workdir, transport)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra_env or {})
    seeded = subprocess.run(
        [python, str(BENCH / "benchkit" / "seed.py"), env["DATABASE_URL"]]
        + (["--tenants"] if tenants else []),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if seeded.returncode != 0:
        raise RuntimeError(f"seeding the gateway database failed:\n{seeded.stderr[-3000:]}")
    keys = json.loads(seeded.stdout.strip().splitlines()[-1])
    port = free_port()
    cmd = [python, "-m", "backend.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--log-level", "warning"]
    if server:
        cmd += ["--server", server]
    if wrap is not None:
        cmd = wrap(cmd)
    proc = Proc(
        f"gateway x{workers}", cmd, workdir / "gateway.log", env=env, cwd=ROOT, cpus=cpus
    ).start()
    proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=900 if wrap else 90)
    base = f"http://127.0.0.1:{port}"
    plain, caps, full = ({"Authorization": f"Bearer {keys[k]}"} for k in KEYS)
    anthropic = {"x-api-key": keys["plain_key"], "anthropic-version": "2023-06-01"}
    sse_model = f"{payloads.SSE_PROVIDER}/{payloads.MODEL}"
    chat_url, msg_url = base + "/v1/chat/completions", base + "/v1/messages"
    alias, stream_alias, dlp = keys["alias"], keys["stream_alias"], payloads.DLP_PROMPT
    if name is None:
        name = "gateway" if workers == 1 else f"gateway --workers {workers}"
        if redis_url:
            name += " (Redis)"
    return Target(
        name,
        proc,
        port,
        {
            "chat": Request(chat_url, payloads.openai_request(payloads.MODEL), plain),
            "anthropic": Request(
                msg_url, payloads.anthropic_request(f"openai/{payloads.MODEL}"), anthropic
            ),
            "pipeline": Request(chat_url, payloads.openai_request(alias), caps),
            "full": Request(chat_url, payloads.openai_request(alias, prompt=dlp), full),
            "stream_plain": Request(
                chat_url, payloads.openai_request(sse_model, stream=True), plain
            ),
            "stream": Request(chat_url, payloads.openai_request(stream_alias, stream=True), caps),
            "stream_full": Request(
                chat_url, payloads.openai_request(stream_alias, stream=True, prompt=dlp), full
            ),
        },
        note=f"transport {transport}",
    )


def redis_server(workdir: Path, cpus: str | None, *, install: bool = True) -> tuple[Proc, str]:
    """A throwaway redis-server (Debian's package) on a free port, no persistence."""
    exe = ensure_debian_tool("redis-server", "redis-server", install=install)
    if exe is None:
        raise RuntimeError("redis-server is not available (apt-get install -y redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd += ["--dir", str(workdir), "--protected-mode", "no"]
    proc = Proc("redis", cmd, workdir / "redis.log", cpus=cpus).start()
    proc.wait_port(port)
    return proc, f"redis://127.0.0.1:{port}/0"


# -- LiteLLM ------------------------------------------------------------------------------------

LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {chat_base}
      api_key: sk-bench
  - model_name: sse-{model}
    litellm_params:
      model: openai/{model}
      api_base: {sse_base}
      api_key: sk-bench
general_settings:
  master_key: sk-litellm-bench
litellm_settings:
  telemetry: false
"""


def ensure_litellm_venv() -> Path:
    """``benchmarks/.litellm-venv`` with ``litellm[proxy]`` (created on first use, from PyPI)."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    progress("creating benchmarks/.litellm-venv and installing 'litellm[proxy]' (a few minutes)")
    base_python = os.environ.get("PYTHON", "python3")
    subprocess.run([base_python, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = str(LITELLM_VENV / "bin" / "pip")
    subprocess.run([pip, "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([pip, "install", "-q", "litellm[proxy]"], check=True)
    return exe


def litellm_version() -> str:
    out = subprocess.run(
        [str(LITELLM_VENV / "bin" / "pip"), "show", "litellm"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return next(
        (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Version:")), "?"
    )


def litellm(fake: FakeProvider, workdir: Path, cpus: str | None) -> Target:
    exe = ensure_litellm_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "litellm.yaml"
    config.write_text(
        LITELLM_CONFIG.format(
            model=payloads.MODEL, chat_base=fake.openai_base_url, sse_base=fake.sse_base_url
        )
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
        }
    )
    env.pop("DATABASE_URL", None)  # LiteLLM without its database, as a plain proxy
    cmd = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--num_workers", "1"]
    proc = Proc("litellm", cmd, workdir / "litellm.log", env=env, cwd=workdir, cpus=cpus).start()
    started = time.monotonic()
    proc.wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=240)
    progress(f"LiteLLM {litellm_version()} up after {time.monotonic() - started:.0f}s")
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer sk-litellm-bench"}
    return Target(
        f"LiteLLM {litellm_version()}",
        proc,
        port,
        {
            "chat": Request(
                base + "/v1/chat/completions", payloads.openai_request(payloads.MODEL), auth
            ),
            "stream": Request(
                base + "/v1/chat/completions",
                payloads.openai_request(f"sse-{payloads.MODEL}", stream=True),
                auth,
            ),
        },
    )
