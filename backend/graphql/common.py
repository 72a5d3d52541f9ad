"""Shared GraphQL building blocks: cursor connections and input-to-changes conversion."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types.unset import UNSET

from backend.admin.pagination import Page

T = TypeVar("T")
S = TypeVar("S")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(
        description="Opaque cursor of the last item: pass it as `after` for the next page."
    )


@strawberry.type(description="A page of a list: `first` items after the `after` cursor.")
class Connection(Generic[T]):
    nodes: list[T]
    page_info: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of items matching the filters, over all pages.")
    async def total_count(self) -> int:
        return await self._count()


def connection(page: Page[S], convert: Callable[[S], T]) -> Connection[T]:
    return Connection(
        nodes=[convert(x) for x in page.items],
        page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
        _count=page.count,
    )


def changes(data: Any, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of a strawberry input the client actually sent (``UNSET`` ones dropped)."""
    skipped = set(skip)
    return {
        f.name: getattr(data, f.name)
        for f in dataclasses.fields(data)
        if f.name not in skipped and getattr(data, f.name) is not UNSET
    }
