"""RedisBudget against the real Redis: several instances, restarts, outages, big numbers."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from budget_helpers import Ids, RedisEnv, app_principal, at, org, usd, user_principal
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from backend.budget import NO_RESERVATION, BudgetUnavailable, RedisBudget, Reservation
from backend.ir.errors import QuotaExceeded, RateLimited

NOW = at(2025, 1, 8, 12)
MONTH = at(2025, 1, 1)


async def test_two_processes_share_one_budget(redis_required: RedisEnv, ids: Ids) -> None:
    # Two budgets on two connection pools: what two gateway processes would have.
    first = RedisBudget(redis_required.client(), redis_required.prefix, clock=lambda: NOW)
    second = RedisBudget(redis_required.client(), redis_required.prefix, clock=lambda: NOW)
    await first.load()
    await second.load()
    acme = org(ids(), "10", name="acme")
    principal = app_principal(ids(), acme)

    async def request(budget: RedisBudget) -> Reservation | QuotaExceeded:
        try:
            reservation = await budget.reserve(principal, usd(1), NOW)
        except QuotaExceeded as exc:
            return exc
        await asyncio.sleep(0)
        await budget.settle(reservation, usd(1))
        return reservation

    results = await asyncio.gather(*(request((first, second)[i % 2]) for i in range(40)))
    admitted = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(admitted) == 10 and len(refused) == 30
    assert all("organization acme monthly API spend cap ($10.00)" in e.message for e in refused)
    assert await first.spent(("org", acme.id), MONTH) == usd(10)
    assert await second.spent(("org", acme.id), MONTH) == usd(10)


async def test_rate_limit_is_shared_between_processes(redis_required: RedisEnv, ids: Ids) -> None:
    first = RedisBudget(redis_required.client(), redis_required.prefix)
    second = RedisBudget(redis_required.client(), redis_required.prefix)
    principal = app_principal(ids(), None, rpm=4)
    await asyncio.gather(
        *(b.acquire_rate(principal, 0, NOW) for b in (first, second, first, second))
    )
    with pytest.raises(RateLimited):
        await second.acquire_rate(principal, 0, NOW)


async def test_a_redis_restart_reseeds_from_the_database(
    redis_required: RedisEnv, ids: Ids
) -> None:
    budget = RedisBudget(redis_required.client(), redis_required.prefix, clock=lambda: NOW)
    await budget.load()
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    await budget.settle(await budget.reserve(principal, usd(5), NOW), usd(4))
    await budget.flush()

    wipe = redis_required.client()
    async for key in wipe.scan_iter(match=f"{redis_required.prefix}*"):
        await wipe.delete(key)

    # The running process notices (no "seeded" marker), reloads the counters, and goes on.
    await budget.reserve(principal, usd(6), NOW)
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), NOW)
    assert await budget.spent(("org", acme.id), MONTH) == usd(4)


async def test_load_does_not_overwrite_newer_redis_values(
    redis_required: RedisEnv, ids: Ids
) -> None:
    running = RedisBudget(redis_required.client(), redis_required.prefix, clock=lambda: NOW)
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    await running.settle(await running.reserve(principal, usd(2), NOW), usd(2))
    await running.flush()
    await running.settle(await running.reserve(principal, usd(3), NOW), usd(3))  # not flushed
    starting = RedisBudget(redis_required.client(), redis_required.prefix, clock=lambda: NOW)
    await starting.load()  # SET NX: the database's $2 must not replace Redis's $5
    assert await starting.spent(("org", acme.id), MONTH) == usd(5)


async def test_amounts_beyond_float_printing(redis_required: RedisEnv, ids: Ids) -> None:
    # 10^-8 USD units: $40M is 4e15 units, which Lua would print as 4e+15 if it formatted them.
    budget = RedisBudget(redis_required.client(), redis_required.prefix)
    acme = org(ids(), "50000000")
    principal = app_principal(ids(), acme)
    big = await budget.reserve(principal, usd("40000000.12345678"), NOW)
    await budget.reserve(principal, usd("9999999.87654322"), NOW)
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.00000001"), NOW)
    await budget.settle(big, usd("39999999.99999999"))
    assert await budget.spent(("org", acme.id), MONTH) == usd("39999999.99999999")


async def test_every_key_expires(redis_required: RedisEnv, ids: Ids) -> None:
    budget = RedisBudget(redis_required.client(), redis_required.prefix)
    principal = user_principal(ids(), cap="5", org_info=org(ids(), "10"), rpm=5)
    await budget.acquire_rate(principal, 0, NOW)
    await budget.settle(await budget.reserve(principal, usd(1), NOW), usd(1))
    await budget.reserve(principal, usd(1), NOW)  # leaves resv/holds keys behind
    client = redis_required.client()
    keys = [k async for k in client.scan_iter(match=f"{redis_required.prefix}*")]
    kinds = {k.decode().removeprefix(redis_required.prefix).split(":")[0] for k in keys}
    assert kinds == {"seeded", "spent", "resv", "holds", "done", "rl"}
    for key in keys:
        ttl = await client.ttl(key)
        assert (ttl == -1) == key.endswith(b"seeded"), (key, ttl)


async def test_works_with_decoded_responses(redis_required: RedisEnv, ids: Ids) -> None:
    client = redis_required.client(decode_responses=True)
    budget = RedisBudget(client, redis_required.prefix, clock=lambda: NOW)
    await budget.load()
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    await budget.settle(await budget.reserve(principal, usd(3), NOW), usd("2.5"))
    await budget.flush()
    assert await budget.spent(("org", acme.id), MONTH) == usd("2.5")


class TcpProxy:
    """A real TCP hop in front of Redis that the test can cut and restore (an outage)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writers.clear()
        self._tasks.clear()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]
        self._tasks += [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


async def test_redis_outage_refuses_capped_requests_only(
    redis_required: RedisEnv, ids: Ids
) -> None:
    direct = redis_required.client()
    kwargs = direct.connection_pool.connection_kwargs
    proxy = TcpProxy(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379))
    await proxy.start()
    via_proxy = Redis(
        host="127.0.0.1",
        port=proxy.port,
        db=kwargs.get("db", 0),
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    redis_required.clients.append(via_proxy)
    budget = RedisBudget(via_proxy, redis_required.prefix, clock=lambda: NOW, timeout_s=0.5)
    await budget.load()
    acme = org(ids(), "10")
    capped = app_principal(ids(), acme, rpm=2)
    uncapped = app_principal(ids(), None)
    charged = await budget.reserve(capped, usd(3), NOW)
    failed = await budget.reserve(capped, usd(3), NOW)

    await proxy.stop()
    try:
        with pytest.raises(BudgetUnavailable) as caught:
            await budget.reserve(capped, usd(1), NOW)
        err = caught.value
        assert (err.status, err.code, err.retryable) == (503, "budget_store_unavailable", False)
        assert "budget store unavailable" in err.message
        assert await budget.reserve(uncapped, usd(1), NOW) is NO_RESERVATION
        # Rate limits fall back to this process's own windows.
        await budget.acquire_rate(capped, 0, NOW)
        await budget.acquire_rate(capped, 0, NOW)
        with pytest.raises(RateLimited):
            await budget.acquire_rate(capped, 0, NOW)
        with pytest.raises(BudgetUnavailable):
            await budget.spent(("org", acme.id), MONTH)
        # The finished request is not failed by its settle: the charge waits in memory.
        await budget.settle(charged, usd("2.5"))
        await budget.release(failed)
        assert budget.pending_settlements == 1
        await budget.flush()  # still down: kept for later, no exception
        assert budget.pending_settlements == 1
    finally:
        await proxy.start()

    await budget.flush()
    assert budget.pending_settlements == 0
    await budget.flush()
    assert await budget.spent(("org", acme.id), MONTH) == usd("2.5")
    # The released hold is gone once it expires; until then it still counts ($3 + $2.5 of $10).
    await budget.reserve(capped, usd("4.5"), NOW)
    with pytest.raises(QuotaExceeded):
        await budget.reserve(capped, usd("0.01"), NOW)
    await proxy.stop()


async def test_a_retried_settle_is_applied_once(redis_required: RedisEnv, ids: Ids) -> None:
    # If Redis ran a settle but the answer was lost, the queued retry must not charge again.
    budget = RedisBudget(redis_required.client(), redis_required.prefix)
    acme = org(ids(), "10")
    reservation = await budget.reserve(app_principal(ids(), acme), usd(2), NOW)
    await budget.settle(reservation, usd("1.5"))
    assert await budget.spent(("org", acme.id), MONTH) == usd("1.5")  # sent and applied
    # The answer was lost, so the same charge waits for a retry, which reaches Redis again.
    budget._sender.pending.append((reservation, 150_000_000))
    await budget._sender.retry_pending()
    assert budget.pending_settlements == 0
    assert await budget.spent(("org", acme.id), MONTH) == usd("1.5")


async def test_load_with_redis_down_does_not_raise(db: str) -> None:
    down = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    try:
        budget = RedisBudget(down, "sbtest:down:", timeout_s=0.5)
        await budget.load()
        await budget.flush()
    finally:
        await down.aclose()


async def test_a_capped_request_costs_one_round_trip(redis_required: RedisEnv, ids: Ids) -> None:
    """Settles do no I/O of their own: they ride along with the next reserve's pipelined call."""
    client = redis_required.client()
    round_trips = 0
    make_pipeline = client.pipeline

    def counting_pipeline(*args: object, **kwargs: object) -> object:
        nonlocal round_trips
        pipe = make_pipeline(*args, **kwargs)  # type: ignore[arg-type]
        execute = pipe.execute

        async def counted(*a: object, **k: object) -> object:
            nonlocal round_trips
            round_trips += 1
            return await execute(*a, **k)  # type: ignore[arg-type]

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe

    client.pipeline = counting_pipeline  # type: ignore[method-assign]
    budget = RedisBudget(client, redis_required.prefix, clock=lambda: NOW)
    await budget.load()
    acme = org(ids(), "10")
    principal = app_principal(ids(), acme)
    round_trips = 0  # seeding is not a request's cost

    first = await budget.reserve(principal, usd(5), NOW)
    await budget.settle(first, usd(2))  # no round trip here...
    assert budget.pending_settlements == 1
    second = await budget.reserve(principal, usd(8), NOW)  # ...it goes with this one: $2 + $8
    assert round_trips == 2
    await asyncio.sleep(0.05)  # the drain task finds nothing left to send
    assert round_trips == 2 and budget.pending_settlements == 0
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), NOW)
    await budget.release(second)
    assert await budget.spent(("org", acme.id), MONTH) == usd(2)
    await budget.reserve(principal, usd(8), NOW)  # the released $8 is free again
