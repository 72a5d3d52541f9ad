"""SpendCounter persistence: upserts that never lower a counter, and the load horizon."""

from __future__ import annotations

import asyncio

from budget_helpers import Ids, at, usd

from backend.budget.persist import load_counters, store_counters
from backend.data.models.logs import SpendCounter


async def test_store_inserts_updates_and_never_lowers(ids: Ids) -> None:
    oid, uid = ids(), ids()
    week = at(2025, 1, 6)
    await store_counters([((("org", oid), week), 500_000_000), ((("user", uid), week), 1)])
    await store_counters([((("org", oid), week), 300_000_000)])  # an older copy arrives late
    rows = {
        (r.scope, r.scope_id): r.spent_usd
        for r in await SpendCounter.filter(scope_id__in=[oid, uid])
    }
    assert rows == {("org", oid): usd(5), ("user", uid): usd("0.00000001")}
    await store_counters([((("org", oid), week), 700_000_000)])
    assert (await SpendCounter.get(scope="org", scope_id=oid)).spent_usd == usd(7)
    assert await SpendCounter.filter(scope_id=oid).count() == 1


async def test_concurrent_flushes_keep_the_largest(ids: Ids) -> None:
    oid = ids()
    key = (("org", oid), at(2025, 1, 1))
    await asyncio.gather(*(store_counters([(key, units)]) for units in (3, 9, 5, 7, 1)))
    assert (await SpendCounter.get(scope="org", scope_id=oid)).spent_usd == usd("0.00000009")


async def test_load_counters_since(ids: Ids) -> None:
    oid = ids()
    for start, spent in ((at(2024, 11, 1), 1), (at(2024, 12, 1), 2), (at(2025, 1, 6), 3)):
        await SpendCounter.create(scope="org", scope_id=oid, period_start=start, spent_usd=spent)
    loaded = {k: v for k, v in (await load_counters(at(2024, 12, 1))).items() if k[0][1] == oid}
    assert loaded == {
        (("org", oid), at(2024, 12, 1)): 200_000_000,
        (("org", oid), at(2025, 1, 6)): 300_000_000,
    }
