"""argon2 passwords (and their worker threads), hashed session/admin tokens, the login throttle."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

import pytest
import redis.asyncio as aioredis

from backend.data.models.keys import AdminToken
from backend.data.models.tenancy import User
from backend.security import sessions
from backend.security.password_workers import PasswordWorkers, PasswordWorkersBusy
from backend.security.passwords import hash_password, password_problem, verify_password
from backend.security.throttle import (
    LocalFailures,
    Lockout,
    LoginThrottle,
    Policy,
    RedisFailures,
)
from tests.graphql.harness import T0, Env


def test_passwords() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$") and "correct horse" not in h
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong horse")
    assert not verify_password(None, "correct horse")
    assert not verify_password("not a hash", "correct horse")
    assert password_problem("short") and password_problem("x" * 2000)
    assert password_problem("long enough") is None


def test_bearer() -> None:
    assert sessions.bearer("Bearer abc") == "abc"
    assert sessions.bearer("bearer  abc ") == "abc"
    assert sessions.bearer("Basic abc") is None
    assert sessions.bearer("Bearer ") is None
    assert sessions.bearer(None) is None


async def test_tokens(env: Env) -> None:
    user = await User.create(name="U", email="u@x.io")
    session, row = await sessions.create_session(user, now=T0)
    admin, admin_row = await sessions.issue_token(user, "admin", now=T0, name="ci")
    assert session.startswith("sbs-") and admin.startswith("sba-")
    assert admin_row.expires_at is None and row.expires_at == T0 + sessions.SESSION_TTL
    for secret in (session, admin):
        assert not await AdminToken.filter(token_hash=secret).exists()
        assert (await sessions.authenticate_token(secret, now=T0)) is not None
    later = T0 + sessions.SESSION_TTL + dt.timedelta(seconds=1)
    assert await sessions.authenticate_token(session, now=later) is None
    assert await sessions.authenticate_token(admin, now=later) is not None
    assert await sessions.revoke_token(admin, now=T0) is True
    assert await sessions.revoke_token(admin, now=T0) is False
    assert await sessions.authenticate_token(admin, now=T0) is None
    assert await sessions.authenticate_token("sb-12345678-abc", now=T0) is None


async def test_password_workers_run_in_threads_with_a_bounded_backlog() -> None:
    workers = PasswordWorkers(workers=1, queue=0)
    release = threading.Event()
    try:
        h = await workers.hash("correct horse")
        assert await workers.verify(h, "correct horse")
        assert not await workers.verify(h, "wrong horse")
        assert await workers.run(threading.get_ident) != threading.get_ident()
        blocked = asyncio.create_task(workers.run(release.wait))
        for _ in range(3000):
            if workers.pending == 1:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(PasswordWorkersBusy):
            await workers.verify(h, "correct horse")
        release.set()
        assert await blocked is True
        assert workers.pending == 0
        assert await workers.verify(h, "correct horse")
    finally:
        release.set()
        workers.close()


def test_lockout_policy_doubles_up_to_the_cap() -> None:
    policy = Policy(limit=5, base_s=30, max_s=900)
    assert [policy.lock_s(n) for n in range(1, 11)] == [0, 0, 0, 0, 30, 60, 120, 240, 480, 900]
    assert policy.lock_s(10**9) == 900


async def test_throttle_counts_in_process_when_redis_is_down() -> None:
    # Nothing listens on port 1: every Redis call fails at once.
    redis = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    now = 1_000_000.0
    throttle = LoginThrottle(
        RedisFailures(redis, "sbtest:", fallback=LocalFailures()),
        clock=lambda: now,
        account=Policy(3, 30, 900),
        address=Policy(100, 30, 900),
    )
    try:
        for _ in range(3):
            assert await throttle.lockout("a@example.com", "10.0.0.1") is None
            await throttle.failed("a@example.com", "10.0.0.1")
        assert await throttle.lockout("a@example.com", "10.0.0.9") == Lockout(30, "account")
        await throttle.succeeded("a@example.com")
        assert await throttle.lockout("a@example.com", "10.0.0.1") is None
    finally:
        await redis.aclose()


async def test_local_failures_stay_bounded() -> None:
    store = LocalFailures(max_keys=10)
    policy = Policy(2, 30, 900)
    for i in range(100):
        await store.fail(f"k{i}", policy, now=1000.0)
    assert len(store._entries) == 10
    # The newest keys are kept, and a key forgets its failures once its time is up.
    assert await store.fail("k99", policy, now=1000.0) == 1030.0
    assert await store.fail("k99", policy, now=1000.0 + 30 + 900 + 1) == 0.0
