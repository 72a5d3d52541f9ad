"""Shared GraphQL building blocks, so an entity's resolvers are declarations, not copies:

- ``Connection`` / ``paged``: a cursor page of a list (``first``/``after`` bounds and cursors
  are ``backend.admin.pagination``'s; ``totalCount`` counts lazily, only when asked);
- ``run``: the body of every create/update/delete/set/get resolver (the admin service called
  as the viewer: it loads the row within the viewer's scope or raises NOT_FOUND/FORBIDDEN);
- ``related``: a field naming another row by id (``organization``, ``app``, ``user``);
- ``from_row``: an object type filled from a row's attributes of the same names;
- ``changes``: the fields of an input the client sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, Generic, TypeVar, cast

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types.base import get_object_definition
from strawberry.types.unset import UNSET

from backend.admin.pagination import DEFAULT_PAGE, MAX_PAGE, Page
from backend.graphql.context import Info, viewer
from backend.graphql.enums import plain

T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")


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


def page_info_of(page: Page[Any]) -> PageInfo:
    return PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor)


def connection(page: Page[S], convert: Callable[[S], T]) -> Connection[T]:
    return Connection(
        nodes=[convert(x) for x in page.items], page_info=page_info_of(page), _count=page.count
    )


async def paged(
    info: Info,
    service: Callable[..., Awaitable[Page[S]]],
    convert: Callable[[S], T],
    **filters: Any,
) -> Connection[T]:
    """The body every list field shares: ``service(viewer, **filters)`` (``first`` and ``after``
    among them, bounded and decoded by the service's ``keyset_page``/``offset_page``), its page
    converted node by node."""
    return connection(await service(viewer(info), **filters), convert)


async def run(
    info: Info,
    service: Callable[..., Awaitable[S]],
    *args: Any,
    convert: Callable[[S], T] | None = None,
    gateway: bool = True,
    **options: Any,
) -> Any:
    """The body every create/update/delete/set/get resolver shares: call the admin service as
    the viewer, ``service(gateway, viewer, *args, **options)`` (``service(viewer, ...)`` with
    ``gateway=False``), with each strawberry input among ``args`` passed as the fields the
    client sent (``changes``), and ``convert`` the row it returns (``UserType.of``).
    Authorization, scope, validation and NOT_FOUND stay in the service, so the errors a client
    sees are the service's own."""
    sent = [changes(a) if _is_input(a) else a for a in args]
    me = viewer(info)
    if gateway:
        out = await service(info.context.gateway, me, *sent, **options)
    else:
        out = await service(me, *sent, **options)
    return out if convert is None else convert(out)


async def related(
    loader: DataLoader[int, R | None], key: int | None, convert: Callable[[R], T]
) -> T | None:
    """A field naming another row by id (``organizationId`` -> ``organization``): loaded in one
    batch per request (``Context.loaders``); null when there is none or it was deleted."""
    if key is None:
        return None
    row = await loader.load(key)
    return None if row is None else convert(row)


_DATA_FIELDS: dict[type, tuple[str, ...]] = {}


def from_row(cls: type[T], row: Any, **special: Any) -> T:
    """An object type filled from ``row``: each field without a resolver read from the row's
    attribute of the same name (a foreign key's ``organization_id`` too), but those in
    ``special`` (an enum of a stored string, a computed value, a column of another name).
    A field the row lacks fails loudly (AttributeError), never as a silent null."""
    names = _DATA_FIELDS.get(cls)
    if names is None:
        definition = get_object_definition(cls, strict=True)
        names = tuple(f.python_name for f in definition.fields if f.base_resolver is None)
        _DATA_FIELDS[cls] = names
    values = {name: getattr(row, name) for name in names if name not in special}
    return cast(T, cast(Any, cls)(**values, **special))


def _is_input(value: Any) -> bool:
    """A strawberry input object (not any dataclass: a service may take one, e.g. an HTTP
    client)."""
    if isinstance(value, type):
        return False
    definition = get_object_definition(value)
    return definition is not None and definition.is_input


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
