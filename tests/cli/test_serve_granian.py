"""``switchboard serve --server granian`` serves the same app (the alternative server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.fakes.base import free_port


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_serve_on_granian(tmp_path: Path) -> None:
    pytest.importorskip("granian")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'gw.sqlite3'}",
        SWITCHBOARD_DATA_DIR=str(tmp_path),
        SWITCHBOARD_SECRET_KEY="granian-test-secret-key",
    )
    cmd = [sys.executable, "-m", "backend.cli", "serve", "--server", "granian"]
    cmd += ["--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body, _ = _get(f"http://127.0.0.1:{port}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == 200, proc.stdout.read().decode() if proc.stdout else ""
        assert orjson.loads(body) == {"status": "ok"}
        # A proxy route through the fast dispatch: 401 in OpenAI's shape, with a request id.
        status, body, headers = _get(f"http://127.0.0.1:{port}/v1/models")
        assert status == 401
        assert orjson.loads(body)["error"]["code"] == "missing_api_key"
        assert {k.lower() for k in headers} >= {"x-request-id"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
