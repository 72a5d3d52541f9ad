"""Fixtures for the budget tests: a migrated database, real Redis, principals, budget factories.

The database is a temp SQLite file, or a fresh database on ``DATABASE_URL``'s PostgreSQL when set
(CI runs the suite again on PostgreSQL). Redis is ``REDIS_URL`` or 127.0.0.1:6379: Redis tests
are skipped with the reason when it is not reachable, except when ``REDIS_URL`` is set
explicitly — then it must be there.
Every test uses random scope ids and a random Redis key prefix and removes what it wrote.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from budget_helpers import Budgets, Ids, RedisEnv
from redis.asyncio import Redis

from backend.data.models.logs import SpendCounter
from tests.dbutil import initialised_database

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with initialised_database(tmp_path_factory.mktemp("budget")) as url:
        yield url


@pytest.fixture
async def ids(db: str) -> AsyncIterator[Ids]:
    made = Ids()
    yield made
    if made.used:
        await SpendCounter.filter(scope_id__in=made.used).delete()


@pytest.fixture
async def redis_env() -> AsyncIterator[RedisEnv | None]:
    """A reachable Redis with a fresh key prefix, or None (the caller skips)."""
    probe = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await probe.ping()  # type: ignore[misc]
    except Exception as exc:
        await probe.aclose()
        if os.environ.get("REDIS_URL"):
            pytest.fail(f"REDIS_URL={REDIS_URL} is set but Redis is not reachable: {exc!r}")
        yield None
        return
    env = RedisEnv(REDIS_URL, f"sbtest:{uuid.uuid4().hex}:")
    yield env
    async for key in probe.scan_iter(match=f"{env.prefix}*"):
        await probe.delete(key)
    for client in env.clients:
        await client.aclose()
    await probe.aclose()


@pytest.fixture
def redis_required(redis_env: RedisEnv | None) -> RedisEnv:
    if redis_env is None:
        pytest.skip(f"Redis not reachable at {REDIS_URL} (start redis-server or set REDIS_URL)")
    return redis_env


@pytest.fixture(params=["local", "redis"])
def budgets(request: pytest.FixtureRequest, db: str, redis_env: RedisEnv | None) -> Budgets:
    if request.param == "local":
        return Budgets("local", None)
    if redis_env is None:
        pytest.skip(f"Redis not reachable at {REDIS_URL} (start redis-server or set REDIS_URL)")
    return Budgets("redis", redis_env)
