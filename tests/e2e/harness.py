"""End-to-end harness: the real gateway as a subprocess on a loopback port, plus seeding.

The gateway runs exactly as an operator runs it (``python -m backend.cli serve``); tests talk to
it with the official SDKs. Its combined stdout/stderr goes to ``log_path`` so tests can grep the
server log (for secrets, tracebacks).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import httpx

from backend.data.db import close_db, init_db
from backend.security.api_keys import generate_key
from tests.dbutil import migrate_fresh
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import free_port
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class GatewayProc:
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    #: More ``serve`` arguments (e.g. ``["--workers", "2"]``).
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self, timeout: float = 40.0) -> GatewayProc:
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env.update(self.env)
        env.setdefault("SWITCHBOARD_LOG_FLUSH_INTERVAL", "0.1")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backend.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *self.args,
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy:\n{self.log_path.read_text()[-4000:]}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.asynccontextmanager
async def orm(database_url: str) -> AsyncIterator[None]:
    """Tortoise in the test process, for seeding and reading back rows."""
    await init_db(database_url)
    try:
        yield
    finally:
        await close_db()


@dataclass
class Seeded:
    org_id: int
    user_id: int
    user_key: str
    app_id: int
    app_key: str
    other_org_id: int
    other_user_id: int
    other_key: str


async def prepare_database(database_url: str) -> None:
    await migrate_fresh(database_url)


async def seed_basic(database_url: str, *, weekly_cap: Decimal | None = None) -> Seeded:
    """Two organizations, a member with a key in each, and an app key in the first."""
    from backend.data.models.keys import ApiKey
    from backend.data.models.tenancy import App, Organization, User

    async with orm(database_url):
        org = await Organization.create(name="Acme", slug=f"acme-{os.urandom(3).hex()}")
        other = await Organization.create(name="Globex", slug=f"globex-{os.urandom(3).hex()}")
        user = await User.create(
            name="Alice",
            email=f"alice-{os.urandom(3).hex()}@acme.test",
            organization=org,
            weekly_cap_usd=weekly_cap,
        )
        other_user = await User.create(
            name="Bob", email=f"bob-{os.urandom(3).hex()}@globex.test", organization=other
        )
        app = await App.create(
            name="Billing", slug=f"billing-{os.urandom(3).hex()}", organization=org
        )
        keys = []
        for owner in ({"user": user}, {"app": app}, {"user": other_user}):
            secret, prefix, digest = generate_key()
            await ApiKey.create(prefix=prefix, key_hash=digest, name="test", **owner)
            keys.append(secret)
    return Seeded(org.id, user.id, keys[0], app.id, keys[1], other.id, other_user.id, keys[2])


async def log_rows(database_url: str, **filters: Any) -> list[Any]:
    from backend.data.models.logs import RequestLog

    async with orm(database_url):
        return await RequestLog.filter(**filters).order_by("id")


async def wait_for_rows(
    database_url: str, count: int, timeout: float = 10.0, **filters: Any
) -> list[Any]:
    import asyncio

    deadline = time.monotonic() + timeout
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = await log_rows(database_url, **filters)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.1)
    return rows


class HasDatabase(Protocol):
    database_url: str


class HasGateway(Protocol):
    gateway: GatewayProc


async def super_admin_token(email: str, name: str) -> str:
    """A new super_admin's admin session token (call inside ``orm(...)``)."""
    from backend.data.models.tenancy import User
    from backend.security.sessions import issue_token

    admin = await User.create(name="Root", email=email, role="super_admin")
    secret, _ = await issue_token(admin, "admin", now=dt.datetime.now(dt.UTC), name=name)
    return str(secret)


def graphql(
    url: str,
    token: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
    transcript: list[str] | None = None,
) -> dict[str, Any]:
    """One GraphQL call to the gateway at ``url`` (signed in when ``token``): its whole answer,
    errors included. ``transcript`` collects the raw answers for tests that scan them for
    secrets."""
    resp = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {token}"} if token else {},
        timeout=30,
    )
    if transcript is not None:
        transcript.append(resp.text)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def gql_data(url: str, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
    """A GraphQL call that must succeed: its ``data``."""
    body = graphql(url, token, query, variables)
    assert not body.get("errors"), body["errors"]
    return dict(body["data"])


def gql(stack: HasGateway, token: str, query: str, **variables: Any) -> dict[str, Any]:
    """A GraphQL call to the stack's gateway that must succeed: its ``data``."""
    return gql_data(stack.gateway.url, token, query, **variables)


async def request_rows(stack: HasDatabase, rid: str, count: int = 1) -> tuple[Any, list[Any]]:
    """The request's own log row and its superseded attempt rows (waiting for ``count`` rows).

    Superseded rows are queued when the fallback happens, the request's own row when it ends
    (after a stream's last event), so a flush may write them apart: wait for the own row too.
    """
    import asyncio

    deadline = time.monotonic() + 10
    while True:
        rows = await wait_for_rows(stack.database_url, count, request_id=rid)
        own = [r for r in rows if not r.superseded]
        if own or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert len(own) == 1, [(r.actual_model, r.superseded) for r in rows]
    return own[0], [r for r in rows if r.superseded]


@contextlib.contextmanager
def fake_upstreams() -> Iterator[dict[str, Any]]:
    """The four fake providers of a stack (``openai``, ``anthropic``, ``gemini``, ``ollama``),
    started; stopped on exit."""
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    try:
        yield fakes
    finally:
        for fake in fakes.values():
            fake.stop()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
