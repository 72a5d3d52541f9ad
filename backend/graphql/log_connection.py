"""The request log's page type: a connection that says when it is partial or estimated.

A page of ``gatewayLogs`` is searched in time slices within a time budget
(``backend.admin.logsearch``); with a rare filter over a long window it may stop early and
return fewer rows than asked with ``searchedTo`` set. Its total is counted the same way, so it
may be a lower bound (``totalIsEstimate``) instead of a count of ten million rows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry

from backend.admin.logsearch import Counted
from backend.admin.pagination import Page
from backend.graphql.common import PageInfo, page_info_of
from backend.graphql.context import Info

T = TypeVar("T")
S = TypeVar("S")


DESCRIPTION = (
    "A page of the request log. searchedTo set: the search stopped early (a rare filter over a "
    "long window); the page holds every match up to that time and pageInfo's endCursor "
    "searches on from there."
)


@strawberry.type(description=DESCRIPTION)
class LogConnection(Generic[T]):
    nodes: list[T] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="The cursor to the next page.")
    searched_to: dt.datetime | None = strawberry.field(
        description=(
            "Null: a whole page. Else the time the search reached (going back for NEWEST, "
            "forward for OLDEST): there may be fewer nodes than asked though more rows match "
            "beyond it; ask for the next page to search on."
        )
    )
    _counted: strawberry.Private[Callable[[], Awaitable[Counted]]]

    @strawberry.field(
        description=(
            "Rows matching the filter over all pages, counted up to 10,000 within a time "
            "budget: exact unless totalIsEstimate."
        )
    )
    async def total_count(self) -> int:
        return (await self._counted()).count

    @strawberry.field(
        description=(
            "True when totalCount is a lower bound: more than 10,000 rows match, or a rare "
            "filter could not be counted over its whole window in time (show 'at least')."
        )
    )
    async def total_is_estimate(self) -> bool:
        return not (await self._counted()).exact


def once(fn: Callable[[], Awaitable[Counted]]) -> Callable[[], Awaitable[Counted]]:
    """``fn`` run at most once however many fields await it (totalCount and its flag)."""
    task: asyncio.Future[Counted] | None = None

    async def run() -> Counted:
        nonlocal task
        if task is None:
            task = asyncio.ensure_future(fn())
        return await asyncio.shield(task)

    return run


C = TypeVar("C", bound=LogConnection[Any])


def log_connection(
    cls: type[C],
    page: Page[S],
    convert: Callable[[S], T],
    counted: Callable[[], Awaitable[Counted]],
) -> C:
    return cls(
        nodes=[convert(x) for x in page.items],
        page_info=page_info_of(page),
        searched_to=page.searched_to,
        _counted=once(counted),
    )


def search_deadline(info: Info) -> float:
    """The time this request's log searches share (``Context.search_deadline``): a page, its
    total and a count in one document answer within one budget."""
    ctx = info.context
    if ctx.search_deadline is None:
        ctx.search_deadline = time.perf_counter() + ctx.gateway.settings.log_search_budget_s
    return ctx.search_deadline
