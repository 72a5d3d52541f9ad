"""The real processes behind the browser tests: gateway, dashboard, a fake OpenAI upstream.

Each is started exactly as an operator starts it (``python -m backend.cli serve`` and
``reflex run --env prod`` with scripts/env.sh), so the tests see what a user sees.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.e2e.harness import GatewayProc
from tests.fakes.base import free_port
from tests.fakes.openai_fake import OpenAIFake

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep Chromium from hanging on a network that only reaches package registries.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "screenshots"
ADMIN_EMAIL = "admin@switchboard.test"
ADMIN_PASSWORD = "correct-horse-battery"


def gateway_env(data_dir: Path, database_url: str, openai_base_url: str) -> dict[str, str]:
    return {
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "SWITCHBOARD_SECRET_KEY": "browser-tests-secret-key-0123456789",
        "SWITCHBOARD_LOG_FLUSH_INTERVAL": "0.1",
        "OPENAI_BASE_URL": openai_base_url,
        "OPENAI_API_KEY": "sk-fake-upstream",
        # Its own Redis namespace when the suite runs on Redis (CI's second pass).
        "SWITCHBOARD_REDIS_PREFIX": f"sbbrowser-{uuid.uuid4().hex[:8]}:",
    }


def bootstrap_admin(env: dict[str, str]) -> str:
    """Creates the first super_admin with the CLI; returns the API key it prints last."""
    full = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    full.update(env)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "bootstrap",
            "--email",
            ADMIN_EMAIL,
            "--password",
            ADMIN_PASSWORD,
            "--name",
            "Ada Admin",
        ],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bootstrap failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def _wait_until_free(port: int, timeout: float = 15.0) -> None:
    """The previous module's dashboard on this port may still be closing its socket."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.2)


class DashboardBuild:
    """The one port every dashboard of a test session serves on, and whether the frontend
    built for it is in ``.web`` already (the first dashboard builds it)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.built = False


@dataclass
class DashboardProc:
    gateway_url: str
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    #: The frontend in ``.web`` was built for this port by an earlier start in this session:
    #: serve it (tests/browser/serve_built.py) instead of compiling and building it again.
    prebuilt: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240.0) -> DashboardProc:
        env = dict(os.environ)
        env["SWITCHBOARD_GATEWAY_URL"] = self.gateway_url
        env.pop("REFLEX_ENV_MODE", None)
        if self.prebuilt:
            _wait_until_free(self.port)
            cmd = f"source scripts/env.sh && exec python -m tests.browser.serve_built {self.port}"
        else:
            cmd = (
                "source scripts/env.sh && exec reflex run --env prod"
                f" --frontend-port {self.port} --backend-port {self.port}"
                " --backend-host 127.0.0.1 --loglevel warning"
            )
        self._log = open(self.log_path, "ab")
        # A new session so that stopping it also stops the build tools Reflex spawns.
        self.proc = subprocess.Popen(
            ["bash", "-c", cmd],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dashboard exited early:\n{self.log_text()[-4000:]}")
            try:
                page = httpx.get(f"{self.url}/login", timeout=2, follow_redirects=True)
                ping = httpx.get(f"{self.url}/ping", timeout=2)
                if page.status_code == 200 and ping.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"dashboard did not start:\n{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        self.proc = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    gateway: GatewayProc
    dashboard: DashboardProc
    openai: OpenAIFake
    admin_key: str

    @property
    def url(self) -> str:
        return self.dashboard.url


class Gql:
    """GraphQL over HTTP as an automation script would call it, signed in as ``email`` (the
    tests' setup, and the answers pages are compared with); an error in the answer fails."""

    def __init__(self, url: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
        self.url = f"{url}/graphql"
        doc = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
        self.token = ""
        self.token = self(doc, {"e": email, "p": password})["login"]["token"]

    def __call__(self, doc: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        body = httpx.post(
            self.url, json={"query": doc, "variables": variables or {}}, headers=headers, timeout=30
        ).json()
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_selector("#whoami", timeout=30_000)


def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
