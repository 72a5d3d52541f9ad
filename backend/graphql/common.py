"""Shared GraphQL building blocks: cursor connections and input-to-changes conversion."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from strawberry.types.unset import UNSET

from backend.admin.pagination import DEFAULT_PAGE, MAX_PAGE, Page
from backend.graphql.context import Info, viewer
from backend.graphql.enums import plain

T = TypeVar("T")
S = TypeVar("S")


# Arguments many fields share, described once.
First = Annotated[
    int | None,
    strawberry.argument(
        description=f"Page size, 1 to {MAX_PAGE}; null: {DEFAULT_PAGE}.",
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(description="The `endCursor` of the previous page; null: the first page."),
]
Id = Annotated[int, strawberry.argument(description="The item's id.")]


@strawberry.type(description="Where a page ends and whether another follows.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    end_cursor: str | None = strawberry.field(
        description="Opaque cursor of the last item: pass it as `after` for the next page."
    )


@strawberry.type(description="A page of a list: `first` items after the `after` cursor.")
class Connection(Generic[T]):
    nodes: list[T] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="The cursor to the next page.")
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


async def run(
    info: Info,
    service: Callable[..., Awaitable[S]],
    *args: Any,
    convert: Callable[[S], T] | None = None,
) -> Any:
    """The body every create/update/delete/set resolver shares: call the admin service as the
    viewer, ``service(gateway, viewer, *args)``, with each strawberry input among ``args``
    passed as the fields the client sent (``changes``), and ``convert`` the row it returns
    (``UserType.of``). Authorization and validation stay in the service."""
    sent = [changes(a) if _is_input(a) else a for a in args]
    out = await service(info.context.gateway, viewer(info), *sent)
    return out if convert is None else convert(out)


def _is_input(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def changes(data: Any, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of a strawberry input the client actually sent (``UNSET`` ones dropped).

    Enum values become the strings the admin services validate and the database stores.
    """
    skipped = set(skip)
    return {
        f.name: plain(getattr(data, f.name))
        for f in dataclasses.fields(data)
        if f.name not in skipped and getattr(data, f.name) is not UNSET
    }
