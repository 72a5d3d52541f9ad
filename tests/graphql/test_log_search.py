"""The request log's keyset pages and counts on (created_at, id), searched in time slices.

Rows are written out of time order (a long stream is logged after requests that started later)
and with equal timestamps, so the order is (created_at, id), never the insertion order. A
budget that runs out (a clock that advances on every reading) makes partial pages: each must
hold every match up to its ``searched_to`` and nothing beyond, and the cursors must walk the
whole list with no row missed or repeated.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

from backend.admin import logs as svc
from backend.admin.logsearch import Counted
from backend.data.models.logs import RequestLog
from tests.graphql.harness import T0, Env, World, data, gql


async def seed(world: World, n: int = 60) -> list[RequestLog]:
    """``n`` rows over three days, inserted out of time order, two rows at each time."""
    users = [world.users["member_a"], world.users["member_b"]]
    rows = []
    # A fixed shuffle of offsets: ids do not follow time.
    offsets = [(i * 37) % n for i in range(n)]
    for k in offsets:
        user = users[k % 2]
        at = T0 - dt.timedelta(minutes=144 * (k // 2))
        rows.append(
            await RequestLog.create(
                request_id=f"req-{k:03d}",
                created_at=at,
                key_prefix="sb-test",
                user_id=user.id,
                org_id=user.organization_id,  # type: ignore[attr-defined]
                endpoint="/v1/chat/completions",
                requested_model="gpt-4o",
                actual_model="openai/gpt-4o",
                provider="openai",
                status=503 if k % 10 == 0 else 200,
                latency_ms=1.0,
            )
        )
    return rows


def newest_first(rows: list[RequestLog]) -> list[int]:
    return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]


def ticking(step: float) -> Callable[[], float]:
    """A clock that advances ``step`` seconds every time it is read."""
    counter = itertools.count()
    return lambda: next(counter) * step


async def walk(world: World, filters: svc.LogFilter, **kw: object) -> list[list[int]]:
    pages, after = [], None
    while True:
        page = await svc.list_logs(world.users["super"], filters, after=after, **kw)  # type: ignore[arg-type]
        pages.append([r.id for r in page.items])
        if not page.has_next:
            return pages
        after = page.end_cursor


async def test_keyset_pages_follow_time_not_insertion(env: Env, world: World) -> None:
    rows = await seed(world)
    pages = await walk(world, svc.LogFilter(), first=7)
    assert [i for p in pages for i in p] == newest_first(rows)
    assert all(len(p) == 7 for p in pages[:-1])
    oldest = await walk(world, svc.LogFilter(), first=9, sort="OLDEST")
    assert [i for p in oldest for i in p] == list(reversed(newest_first(rows)))


async def test_filtered_pages_and_window(env: Env, world: World) -> None:
    rows = await seed(world)
    mine = [r for r in rows if r.user_id == world.users["member_b"].id and r.status == 503]
    pages = await walk(
        world, svc.LogFilter(user_id=world.users["member_b"].id, status=503), first=2
    )
    assert [i for p in pages for i in p] == newest_first(mine)
    since, until = T0 - dt.timedelta(days=2), T0 - dt.timedelta(days=1)
    inside = [r for r in rows if since <= r.created_at < until]
    pages = await walk(world, svc.LogFilter(since=since, until=until), first=4)
    assert [i for p in pages for i in p] == newest_first(inside)


async def test_partial_pages_miss_nothing(env: Env, world: World) -> None:
    rows = await seed(world)
    # Each slice "takes" 10 ms; a 60 ms budget stops after a few slices.
    kw = {"first": 50, "budget_s": 0.06}
    seen: list[int] = []
    after, partial = None, 0
    while True:
        page = await svc.list_logs(
            world.users["super"], svc.LogFilter(), after=after, **kw, clock=ticking(0.005)
        )  # type: ignore[call-arg]
        ids = [r.id for r in page.items]
        if page.searched_to is not None:
            partial += 1
            to = page.searched_to
            # Every row from the cursor back to searched_to is in the page, none older.
            assert all(r.created_at >= to for r in page.items)
            expected = [
                i
                for i in newest_first(rows)
                if i not in seen and next(r for r in rows if r.id == i).created_at >= to
            ]
            assert ids == expected
            assert page.has_next
        seen += ids
        if not page.has_next:
            break
        after = page.end_cursor
    assert partial > 0
    assert seen == newest_first(rows)


async def test_counts_exact_bounded_and_partial(env: Env, world: World) -> None:
    rows = await seed(world)
    sup = world.users["super"]
    assert await svc.count_logs(sup, svc.LogFilter()) == Counted(len(rows), True)
    assert await svc.count_logs(sup, svc.LogFilter(), limit=10) == Counted(10, False)
    errors = [r for r in rows if r.status >= 400]
    assert await svc.count_logs(sup, svc.LogFilter(errors_only=True)) == Counted(len(errors), True)
    short = await svc.count_logs(sup, svc.LogFilter(), budget_s=0.06, clock=ticking(0.005))  # type: ignore[call-arg]
    assert not short.exact and short.since is not None
    # A lower bound that is exact since the time it reached.
    assert short.count == sum(1 for r in rows if r.created_at >= short.since)
    assert short.count < len(rows)


COUNT = "query($f: GatewayLogFilter) { gatewayLogCount(filter: $f) { count exact countedSince } }"
LIST = "query { gatewayLogs(first: 5) { nodes { id } totalCount totalIsEstimate searchedTo } }"


async def test_graphql_estimate_flags(env: Env, world: World, monkeypatch: object) -> None:
    rows = await seed(world, 12)
    sup = world.token("super")
    got = data(await gql(env, COUNT, {"f": None}, sup))["gatewayLogCount"]
    assert got == {"count": len(rows), "exact": True, "countedSince": None}
    page = data(await gql(env, LIST, {}, sup))["gatewayLogs"]
    assert (page["totalCount"], page["totalIsEstimate"], page["searchedTo"]) == (12, False, None)
    assert len(page["nodes"]) == 5
    monkeypatch.setattr(svc, "TOTAL_COUNT_LIMIT", 10)  # type: ignore[attr-defined]
    page = data(await gql(env, LIST, {}, sup))["gatewayLogs"]
    assert (page["totalCount"], page["totalIsEstimate"]) == (10, True)
    # A member counts their own rows only.
    mine = sum(1 for r in rows if r.user_id == world.users["member_a"].id)
    got = data(await gql(env, COUNT, {"f": None}, world.token("member_a")))["gatewayLogCount"]
    assert got == {"count": mine, "exact": True, "countedSince": None}
