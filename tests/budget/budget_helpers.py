"""Builders shared by the budget tests (principals, money, times)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from backend.budget import LocalBudget, RedisBudget
from backend.state.snapshot import AppInfo, KeyInfo, OrgInfo, Principal, UserInfo

#: Bounds each Redis call of a test budget (see ``Budgets.new``).
REDIS_TEST_TIMEOUT_S = 10.0


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def usd(value: str | int) -> Decimal:
    return Decimal(str(value))


def org(
    oid: int,
    cap: str | None,
    period: str = "monthly",
    rollover: bool = False,
    name: str = "acme",
) -> OrgInfo:
    return OrgInfo(oid, name, name, usd(cap) if cap is not None else None, period, rollover)


def user_principal(
    uid: int,
    *,
    cap: str | None = None,
    org_info: OrgInfo | None = None,
    rpm: int | None = None,
    email: str = "alice@x",
) -> Principal:
    user = UserInfo(
        uid,
        "Alice",
        email,
        weekly_cap_usd=usd(cap) if cap is not None else None,
        org_id=org_info.id if org_info else None,
    )
    key = KeyInfo(uid, f"sk-{uid}", uid, None, rate_limit_rpm=rpm)
    return Principal(key, user, None, org_info)


def app_principal(aid: int, org_info: OrgInfo | None, rpm: int | None = None) -> Principal:
    app = AppInfo(aid, "Bot", "bot", org_id=org_info.id if org_info else None)
    key = KeyInfo(aid, f"sk-app-{aid}", None, aid, rate_limit_rpm=rpm)
    return Principal(key, None, app, org_info)


class Ids:
    """Random scope ids (shared databases in CI), and cleanup of their counter rows."""

    def __init__(self) -> None:
        self.used: set[int] = set()

    def __call__(self) -> int:
        value = random.randrange(10**8, 2 * 10**9)
        self.used.add(value)
        return value


@dataclass
class RedisEnv:
    url: str
    prefix: str
    clients: list[Redis] = field(default_factory=list)

    def client(self, url: str | None = None, **kwargs: Any) -> Redis:
        made = Redis.from_url(url or self.url, **kwargs)
        self.clients.append(made)
        return made


class Budgets:
    """Makes budgets of one kind.

    Redis ones share the test's prefix, each on its own connection; ``forget()`` wipes that
    prefix, which is what a Redis restart does here (it keeps nothing on disk).
    """

    def __init__(self, kind: str, env: RedisEnv | None) -> None:
        self.kind = kind
        self.env = env

    def new(self, **kwargs: Any) -> LocalBudget | RedisBudget:
        if self.env is None:
            return LocalBudget(**kwargs)
        # The 1 s default is wall-clock time on the event loop: on a loaded 2-core machine 40
        # concurrent calls can exceed it with Redis healthy. These tests are about the counters,
        # not the timeout (test_budget_redis.py covers that), so they get a generous bound.
        kwargs.setdefault("timeout_s", REDIS_TEST_TIMEOUT_S)
        return RedisBudget(self.env.client(), self.env.prefix, **kwargs)

    async def forget(self) -> None:
        if self.env is not None:
            client = self.env.client()
            async for key in client.scan_iter(match=f"{self.env.prefix}*"):
                await client.delete(key)


class GatedRedis:
    """Counts pipelined calls; ``hold_next()`` holds the next one before it is sent, until
    ``open()`` (later calls go through: they are the ones that could overtake it)."""

    def __init__(self, client: Any) -> None:
        self.round_trips = 0
        self.held = 0
        self._to_hold = 0
        self._open = asyncio.Event()
        self._arrived = asyncio.Condition()
        make_pipeline = client.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = make_pipeline(*args, **kwargs)
            execute = pipe.execute

            async def gated(*a: Any, **k: Any) -> Any:
                self.round_trips += 1
                if self._to_hold:
                    self._to_hold -= 1
                    async with self._arrived:
                        self.held += 1
                        self._arrived.notify_all()
                    await self._open.wait()
                return await execute(*a, **k)

            pipe.execute = gated
            return pipe

        client.pipeline = pipeline

    def hold_next(self) -> None:
        self._to_hold = 1
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def until_held(self, n: int, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: self.held >= n)
