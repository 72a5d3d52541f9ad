"""No tenant may stall another (issue 13, must-show 4).

While one tenant sends the worst DLP input (6 MB of digits and punctuation) and text that makes a
stored pathological custom rule ``(x+x+)+y`` backtrack, and another tenant hammers the login
mutation with wrong passwords, a third tenant's requests keep their p99 within 50 ms of the
quiet p99 measured just before in the same test.

The noisy tenants and their upstream run in their own processes (``tests.e2e.noise``), so they
compete with the gateway for the machine and not with the measuring client for this process's
GIL. The test also checks that the noise really ran during the measurement: a quiet result
measured while the noise had stopped would prove nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import IO

import openai
import pytest

from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import ROOT, GatewayProc, orm, prepare_database, seed_basic
from tests.fakes.base import free_port
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

#: Compares tail latencies: run alone, after the parallel phase (tests/conftest.py).
pytestmark = pytest.mark.serial

#: The issue's bound on what the noise may add to another tenant's p99.
ADDED_P99_MS = 50.0
BASELINE_REQUESTS = 200
MEASURED_REQUESTS = 400
LOGIN_EMAIL = f"hammered-{uuid.uuid4().hex[:6]}@corp.test"
PATHOLOGICAL_RULE = {"name": "Pathological", "pattern": "(x+x+)+y"}


@dataclass
class Noise:
    """A noise process and the statuses it reported, read by a thread as they come."""

    name: str
    proc: subprocess.Popen[str]
    statuses: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    #: (time.monotonic(), line) as each line arrived.
    events: list[tuple[float, str]] = field(default_factory=list)

    def start_reader(self) -> None:
        def read(stream: IO[str]) -> None:
            for line in stream:
                line = line.strip()
                self.events.append((time.monotonic(), line))
                self.lines.append(line)
                if line.isdigit():
                    self.statuses.append(int(line))

        assert self.proc.stdout is not None
        threading.Thread(target=read, args=(self.proc.stdout,), daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.statuses) < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"noise {self.name} exited: {self.lines[-5:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"noise {self.name} finished {len(self.statuses)} of {count} requests "
                    f"in {timeout:.0f} s"
                )
            time.sleep(0.05)

    def big_in_flight(self, t0: float, t1: float) -> bool:
        """Whether a big DLP request was being served at some moment between t0 and t1."""
        started: float | None = None
        for at, line in self.events:
            if line == "start big":
                started = at
            elif started is not None and line.isdigit():
                if started < t1 and at > t0:
                    return True
                started = None
        return started is not None and started < t1

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn(name: str, *args: str) -> Noise:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.noise", name, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    noise = Noise(name, proc)
    noise.start_reader()
    return noise


@dataclass
class Tenants:
    gateway: GatewayProc
    quiet_key: str
    noisy_key: str


async def _seed(db: str) -> tuple[str, str]:
    from backend.data.models.dlp import DlpPolicy
    from backend.data.models.keys import ApiKey
    from backend.data.models.tenancy import Organization, User
    from backend.dlp.rules import BUILTIN_RULE_IDS
    from backend.security.api_keys import generate_key
    from backend.security.passwords import hash_password

    seeded = await seed_basic(db)
    async with orm(db):
        noisy = await Organization.create(
            name="Noisy", slug=f"noisy-{os.urandom(3).hex()}", dlp_enabled=True
        )
        # Stored behind the admin API's back: even a rule written before the API refused or
        # tamed such patterns must not let one request stall the gateway.
        await DlpPolicy.create(
            scope="org",
            organization=noisy,
            rules=sorted(BUILTIN_RULE_IDS),
            custom_rules=[PATHOLOGICAL_RULE],
        )
        user = await User.create(
            name="Noisy", email=f"noisy-{uuid.uuid4().hex[:6]}@corp.test", organization=noisy
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="noisy", user=user)
        hammered = await Organization.create(name="Hammered", slug=f"ham-{os.urandom(3).hex()}")
        await User.create(
            name="Hammered",
            email=LOGIN_EMAIL,
            organization=hammered,
            password_hash=hash_password("the-right-password-123"),
        )
    return seeded.other_key, secret


@pytest.fixture(scope="module")
async def tenants(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Tenants]:
    tmp = tmp_path_factory.mktemp("noisy")
    db = await create_database(tmp)
    await prepare_database(db)
    quiet_key, noisy_key = await _seed(db)
    anthropic_port = free_port()
    anthropic = spawn("fake", str(anthropic_port))
    deadline = time.monotonic() + 60
    while "ready" not in anthropic.lines:
        assert anthropic.proc.poll() is None, anthropic.lines
        assert time.monotonic() < deadline, "the noisy tenant's fake upstream did not start"
        time.sleep(0.05)
    remote = SimpleNamespace(
        sdk_base_url=f"http://127.0.0.1:{anthropic_port}",
        base_url=f"http://127.0.0.1:{anthropic_port}",
    )
    fakes = {
        "openai": OpenAIFake().start(),
        "anthropic": remote,
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    gw = GatewayProc(gateway_env(db, tmp, fakes), tmp / "gateway.log").start(timeout=120)
    try:
        yield Tenants(gw, quiet_key, noisy_key)
    finally:
        gw.stop()
        anthropic.stop()
        for name in ("openai", "gemini", "ollama"):
            fakes[name].stop()  # type: ignore[attr-defined]
        await drop_database(db)


def _latencies_ms(client: openai.OpenAI, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        resp = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "ping"}]
        )
        out.append((time.perf_counter() - t0) * 1000)
        assert resp.choices[0].message.content == "ok"
    return out


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def test_a_quiet_tenant_keeps_its_latency_while_others_make_noise(
    tenants: Tenants, tmp_path: Path
) -> None:
    client = openai.OpenAI(
        base_url=tenants.gateway.openai_base_url,
        api_key=tenants.quiet_key,
        max_retries=0,
        timeout=30,
    )
    _latencies_ms(client, 20)  # warm the connection pool and the gateway's caches
    baseline = _latencies_ms(client, BASELINE_REQUESTS)

    url = tenants.gateway.url
    noises = [spawn("dlp", url, tenants.noisy_key), spawn("login", url, LOGIN_EMAIL)]
    try:
        dlp, login = noises
        # The noise is under way: a big DLP body went through the gateway and logins are
        # being refused.
        dlp.wait_for(2, timeout=240)
        login.wait_for(10, timeout=120)
        login_before = len(login.statuses)
        t0 = time.monotonic()
        noisy = _latencies_ms(client, MEASURED_REQUESTS)
        t1 = time.monotonic()
        login_during = len(login.statuses) - login_before
    finally:
        for n in noises:
            n.stop()

    dlp_during = dlp.big_in_flight(t0, t1)
    assert dlp_during and login_during >= 1, (
        f"the noise did not run during the measurement (a big DLP request in flight: "
        f"{dlp_during}, logins: {login_during})"
    )
    # The gateway answered the noise as a gateway should: nothing crashed into a 500.
    assert 500 not in dlp.statuses and 0 not in dlp.statuses, dlp.statuses
    assert 500 not in login.statuses, login.statuses
    # "Added" is what the noise adds to the quiet tail: both tails are measured on the same
    # machine in the same minute, so load from outside the test shifts both alike.
    added = _p99(noisy) - _p99(baseline)
    assert added < ADDED_P99_MS, (
        f"p99 under noise {_p99(noisy):.1f} ms vs quiet p99 {_p99(baseline):.1f} ms "
        f"(quiet p50 {statistics.median(baseline):.1f} ms, noisy p50 "
        f"{statistics.median(noisy):.1f} ms, slowest {sorted(noisy)[-3:]}): {added:.1f} ms "
        f"added (bound {ADDED_P99_MS} ms); noise during the measurement: {login_during} logins "
        f"and a big DLP request"
    )
    assert tenants.gateway.proc is not None and tenants.gateway.proc.poll() is None
    assert "Traceback" not in tenants.gateway.log_text()
