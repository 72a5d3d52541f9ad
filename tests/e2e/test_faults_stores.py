"""Injected faults, store side: the database and Redis become unreachable for a while.

Database: on PostgreSQL the gateway reaches the server through a ``TcpProxy`` that the test cuts
(open connections reset, new ones refused). On SQLite an outside process holding the write lock
(``BEGIN EXCLUSIVE``, e.g. a backup or a migration) is the honest equivalent: every write of the
gateway fails with "database is locked". Requests keep being served from the in-memory config,
log rows and counters wait in the log writer's buffer, and once the database is back every one of
them is written (rows counted by request id, rollups and spend counters compared with the rows).
The buffer is bounded (``LogWriter(max_buffer=...)``): past it the oldest records are dropped and
counted, the newest kept (checked on a writer in this process against the same outage).

Redis (when the suite runs with ``REDIS_URL``): the gateway reaches it through a ``TcpProxy``.
Whether Redis is down (connections reset, refused) or partitioned (no byte moves, only timeouts
tell), callers without a cap keep being served, capped callers get a clean 503
``budget_store_unavailable`` with ``Retry-After`` (README, "Several instances"); when it is back
capped callers are served again and config events travel over pub/sub again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import pytest

from backend.admin.bootstrap import bootstrap_super_admin
from backend.data.events import LocalBus
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.keys import ApiKey
from backend.data.models.logs import MinuteStat, RequestLog, SpendCounter, UsageRollup
from backend.data.models.tenancy import User
from backend.security.api_keys import generate_key
from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.chaos import TcpProxy
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import (
    GatewayProc,
    Seeded,
    log_rows,
    orm,
    prepare_database,
    seed_basic,
    wait_for_rows,
)
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fuzz.checks import anthropic_error, openai_error

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
#: No request may take longer than this, outage or not.
BOUND_S = 15.0


# -- a gateway of its own per test -----------------------------------------------------------------
@dataclass
class Own:
    gateway: GatewayProc
    #: The test's own (direct) database URL.
    db: str
    seeded: Seeded
    capped_key: str
    capped_user_id: int


@contextlib.asynccontextmanager
async def own_gateway(
    tmp: Path, gateway_db: Callable[[str], str] = lambda url: url, **env: str
) -> AsyncIterator[Own]:
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    async with orm(db):
        user = await User.create(
            name="Capped",
            email=f"capped-{os.urandom(3).hex()}@acme.test",
            organization_id=seeded.org_id,
            weekly_cap_usd=Decimal("100"),
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="faults", user=user)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    full_env = gateway_env(db, tmp, fakes) | {"DATABASE_URL": gateway_db(db)} | env
    gw = GatewayProc(full_env, tmp / "gateway.log")
    try:
        gw.start()
        yield Own(gw, db, seeded, secret, user.id)
    finally:
        gw.stop()
        for fake in fakes.values():
            fake.stop()
        await drop_database(db)


def ask(
    own: Own, path: str, key: str, *, stream: bool = False, model: str = "openai/gpt-4o-mini"
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    if path == ANTHROPIC_PATH:
        headers["anthropic-version"] = "2023-06-01"
    body = {
        "model": model,
        "max_tokens": 50,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    started = time.monotonic()
    resp = httpx.post(
        own.gateway.url + path, content=orjson.dumps(body), headers=headers, timeout=BOUND_S + 5
    )
    assert time.monotonic() - started < BOUND_S
    return resp


# -- database outages ------------------------------------------------------------------------------
class DatabaseOutage:
    """Makes the gateway's database unreachable (PostgreSQL) or unwritable (SQLite) on demand."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.proxy: TcpProxy | None = None
        self._lock: sqlite3.Connection | None = None
        if url.startswith(("postgres://", "postgresql://")):
            parts = urlsplit(url)
            self.proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()

    def gateway_url(self, url: str) -> str:
        if self.proxy is None:
            return url
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.proxy.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))

    def cut(self) -> None:
        if self.proxy is not None:
            self.proxy.cut()
            return
        path = self.url.split("sqlite:///", 1)[1]
        self._lock = sqlite3.connect("/" + path.lstrip("/"), timeout=30, isolation_level=None)
        self._lock.execute("BEGIN EXCLUSIVE")

    def restore(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        elif self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        if self._lock is not None:
            self.restore()


@pytest.fixture
def outage_for(tmp_path: Path) -> Iterator[Callable[[str], DatabaseOutage]]:
    made: list[DatabaseOutage] = []

    def make(url: str) -> DatabaseOutage:
        made.append(DatabaseOutage(url))
        return made[-1]

    yield make
    for outage in made:
        outage.close()


async def count_rows(db: str, request_ids: list[str]) -> int:
    return len(await log_rows(db, request_id__in=request_ids, superseded=False))


async def test_database_outage_loses_nothing(tmp_path: Path) -> None:
    # The outage wraps the URL that create_database() will hand out, so build it lazily.
    outage: DatabaseOutage | None = None

    def through_outage(url: str) -> str:
        nonlocal outage
        outage = DatabaseOutage(url)
        return outage.gateway_url(url)

    async with own_gateway(tmp_path, through_outage, SWITCHBOARD_LOG_FLUSH_INTERVAL="0.2") as own:
        assert outage is not None
        try:
            await _outage_scenario(own, outage)
        finally:
            outage.close()


async def _outage_scenario(own: Own, outage: DatabaseOutage) -> None:
    keys = [own.seeded.user_key, own.capped_key]
    for key in keys:  # warm up: both keys known, a row each
        assert ask(own, OPENAI_PATH, key).status_code == 200
    assert len(await wait_for_rows(own.db, 2, timeout=15)) == 2

    outage.cut()
    ids: list[str] = []
    for i in range(12):
        path = OPENAI_PATH if i % 2 else ANTHROPIC_PATH
        resp = ask(own, path, keys[i % 2], stream=i % 3 == 0)
        assert resp.status_code == 200, resp.text
        ids.append(resp.headers["x-request-id"])
    refused = ask(own, OPENAI_PATH, "sb-unknown-key-0123456789abcdef")
    assert refused.status_code == 401 and openai_error(refused.json()) is None
    ids.append(refused.headers["x-request-id"])

    await asyncio.sleep(2.0)  # ten flush intervals
    if outage.proxy is not None:
        assert await count_rows(own.db, ids) == 0  # the outage was real: nothing got through
    else:  # a reader of the locked SQLite file sees no new row either (WAL readers go on)
        marks = ",".join("?" * len(ids))
        got = outage._lock.execute(  # type: ignore[union-attr]
            f"SELECT count(*) FROM request_logs WHERE request_id IN ({marks})", ids
        ).fetchone()[0]
        assert got == 0
    assert "will retry" in own.gateway.log_text()

    outage.restore()
    rows = await wait_for_rows(own.db, len(ids), 30, request_id__in=ids, superseded=False)
    assert sorted(r.request_id for r in rows) == sorted(ids)  # each exactly once
    assert [r.status for r in rows].count(200) == 12

    # Counters caught up too: rollups and minute stats count every row, the capped user's spend
    # counter holds the cost of every capped row.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        totals = await _totals(own)
        if totals[0] == totals[1] == totals[2] and totals[3] == totals[4]:
            break
        await asyncio.sleep(0.2)
    logged, rolled, minutes, capped_cost, spent = totals
    assert logged == rolled == minutes, totals
    assert capped_cost > 0 and spent == capped_cost, totals
    assert "Exception in ASGI application" not in own.gateway.log_text()


async def _totals(own: Own) -> tuple[int, int, int, Decimal, Decimal]:
    async with orm(own.db):
        logged = await RequestLog.filter(superseded=False).count()
        rolled = sum(r.requests for r in await UsageRollup.all())
        minutes = sum(m.requests for m in await MinuteStat.all())
        capped = await RequestLog.filter(user_id=own.capped_user_id, superseded=False)
        cost = sum((Decimal(r.cost_usd or 0) for r in capped), Decimal(0))
        counters = await SpendCounter.filter(scope="user", scope_id=own.capped_user_id)
        spent = sum((Decimal(c.spent_usd) for c in counters), Decimal(0))
    return logged, rolled, minutes, cost, spent


def _record(i: int) -> LogRecord:
    return LogRecord(
        request_id=f"req_bound_{i:04d}",
        created_at=dt.datetime.now(dt.UTC),
        endpoint=OPENAI_PATH,
        status=200,
    )


async def test_log_buffer_is_bounded_while_the_database_is_away(
    tmp_path: Path, outage_for: Callable[[str], DatabaseOutage]
) -> None:
    """Past ``max_buffer`` the oldest records go (counted), the newest are kept and written."""
    db = await create_database(tmp_path)
    await prepare_database(db)
    outage = outage_for(db)
    writer = LogWriter(LocalBus(), interval=3600, max_buffer=50)
    try:
        async with orm(outage.gateway_url(db)):
            outage.cut()
            for i in range(80):
                writer.submit(_record(i))
            assert not await writer.flush()  # the database is away: the batch stays queued
            assert writer.pending == 50 and writer.dropped == 30
            outage.restore()
            deadline = time.monotonic() + 20
            while not await writer.flush():
                assert time.monotonic() < deadline, "the writer never got through"
                await asyncio.sleep(0.2)
        rows = await log_rows(db)
        assert [r.request_id for r in rows] == [f"req_bound_{i:04d}" for i in range(30, 80)]
        assert writer.pending == 0 and writer.written == 50
    finally:
        await drop_database(db)


# -- Redis outage ----------------------------------------------------------------------------------
needs_redis = pytest.mark.skipif(
    not redis_url(), reason="runs in the PostgreSQL + Redis pass (REDIS_URL)"
)


async def admin_token(own: Own) -> str:
    email, password = "faults-root@switchboard.test", "faults-Password-0123456789"
    async with orm(own.db):
        await bootstrap_super_admin(email, password)
    resp = httpx.post(
        own.gateway.url + "/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ token } }",
            "variables": {"e": email, "p": password},
        },
        timeout=30,
    )
    return str(resp.json()["data"]["login"]["token"])


@needs_redis
@pytest.mark.parametrize("fault", ["down", "partitioned"])
async def test_redis_outage_refuses_capped_callers_only(tmp_path: Path, fault: str) -> None:
    """``down``: connections reset and refused; ``partitioned``: no byte moves (timeouts)."""
    real = urlsplit(redis_url() or "")
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 6379).start()
    via_proxy = urlunsplit(real._replace(netloc=f"127.0.0.1:{proxy.port}"))
    try:
        async with own_gateway(tmp_path, REDIS_URL=via_proxy) as own:
            token = await admin_token(own)
            for key in (own.seeded.user_key, own.capped_key):
                assert ask(own, OPENAI_PATH, key).status_code == 200

            if fault == "down":
                proxy.cut()
            else:
                proxy.stall()
            for path in (OPENAI_PATH, ANTHROPIC_PATH):
                for stream in (False, True):
                    resp = ask(own, path, own.seeded.user_key, stream=stream)
                    assert resp.status_code == 200, resp.text  # uncapped: served as usual
                refused = ask(own, path, own.capped_key)
                assert refused.status_code == 503, refused.text
                assert refused.headers["retry-after"] == "5"
                body = refused.json()
                if path == OPENAI_PATH:
                    assert openai_error(body) is None
                    assert body["error"]["code"] == "budget_store_unavailable"
                else:
                    assert anthropic_error(body) is None
                assert "budget store unavailable" in body["error"]["message"]
            capped_rows = await log_rows(own.db, user_id=own.capped_user_id, status=503)
            deadline = time.monotonic() + 10
            while len(capped_rows) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                capped_rows = await log_rows(own.db, user_id=own.capped_user_id, status=503)
            assert len(capped_rows) == 2 and {r.error_type for r in capped_rows} == {"unavailable"}

            proxy.restore()
            deadline = time.monotonic() + 30
            while ask(own, OPENAI_PATH, own.capped_key).status_code != 200:
                assert time.monotonic() < deadline, "capped callers not served after Redis returned"
                await asyncio.sleep(0.5)

            # Config events travel over Redis pub/sub again: a new alias applies at once.
            alias = f"faults-alias-{os.urandom(2).hex()}"
            created = httpx.post(
                own.gateway.url + "/graphql",
                json={
                    "query": "mutation($a: String!) { createModelAlias(input: "
                    '{requestedModel: $a, targetModel: "openai/gpt-4o-mini"}) { id } }',
                    "variables": {"a": alias},
                },
                headers={"authorization": f"Bearer {token}"},
                timeout=30,
            ).json()
            assert created.get("data"), created
            deadline = time.monotonic() + 15
            while ask(own, OPENAI_PATH, own.seeded.user_key, model=alias).status_code != 200:
                assert time.monotonic() < deadline, "config event lost after Redis returned"
                await asyncio.sleep(0.3)
            assert "Exception in ASGI application" not in own.gateway.log_text()
    finally:
        proxy.stop()
