"""Root fields declared instead of written: an entity's create/update/delete/get/list fields,
each one line of what differs (service, GraphQL type, permission, description, arguments)::

    @strawberry.type
    class TenancyMutation:
        create_app = create(svc.create_app, AppType, IsAdmin, "Create an app.", _NewApp)
        update_app = update(svc.update_app, AppType, IsAdmin, "Change an app.", _AppId, AppIn)
        delete_app = delete(svc.delete_app, IsAdmin, _AppId)

The resolver each builds has ``common.run`` as its body: the admin service called as the viewer,
so authorization, the viewer's scope, NOT_FOUND and validation (and their messages and codes) are
the service's. Its GraphQL arguments are the keyword ``args``, in order, each an ``Annotated``
type with its description: the schema is what a hand-written method with that signature gives.
A field that does more than call one service and convert its answer stays a written method.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.permission import BasePermission

from backend.graphql.common import run
from backend.graphql.context import Info

T = TypeVar("T")

#: The ``input`` argument of a change: ``input: Changes[UpdateUserInput]``.
Changes = Annotated[T, strawberry.argument(description="The changes.")]

DELETED_ID = "Returns the deleted id."

Service = Callable[..., Awaitable[Any]]
Permission = type[BasePermission]


def field(
    service: Service,
    returns: Any,
    permission: Permission,
    description: str,
    *,
    convert: Callable[[Any], Any] | None = None,
    gateway: bool = True,
    mutation: bool = False,
    **args: Any,
) -> Any:
    """A root field whose resolver is ``run(info, service, *args, convert=, gateway=)``."""
    names = tuple(args)

    async def resolve(self: Any, info: Info, **sent: Any) -> Any:
        values = [sent[name] for name in names]
        return await run(info, service, *values, convert=convert, gateway=gateway)

    p = inspect.Parameter
    params = [
        p("self", p.POSITIONAL_OR_KEYWORD),
        p("info", p.POSITIONAL_OR_KEYWORD, annotation=Info),
    ]
    params += [p(name, p.KEYWORD_ONLY, annotation=kind) for name, kind in args.items()]
    # Strawberry reads a resolver's arguments and type from its signature.
    resolve.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    resolve.__qualname__ = f"{service.__module__}.{service.__qualname__}"
    make = strawberry.mutation if mutation else strawberry.field
    return make(resolver=resolve, permission_classes=[permission], description=description)


#: ``field`` as a mutation.
mutation = partial(field, mutation=True)


def create(
    service: Service,
    node: Any,
    permission: Permission,
    description: str,
    input: Any,
    *,
    gateway: bool = True,
) -> Any:
    """``createX(input): X``; ``node`` is the GraphQL type, ``node.of`` converts the row."""
    return mutation(
        service, node, permission, description, convert=node.of, gateway=gateway, input=input
    )


def update(
    service: Service,
    node: Any,
    permission: Permission,
    description: str,
    id: Any,
    input: Any,
    *,
    gateway: bool = True,
) -> Any:
    """``updateX(id, input: the changes): X``; ``input`` is the input class."""
    changes = Changes[input]
    return mutation(
        service,
        node,
        permission,
        description,
        convert=node.of,
        gateway=gateway,
        id=id,
        input=changes,
    )


def delete(
    service: Service,
    permission: Permission,
    id: Any,
    description: str = DELETED_ID,
    *,
    gateway: bool = True,
) -> Any:
    """``deleteX(id): Int``, the deleted id."""
    return mutation(service, int, permission, description, gateway=gateway, id=id)


def get(service: Service, node: Any, permission: Permission, description: str, id: Any) -> Any:
    """``x(id): X`` by ``service(viewer, id)``: within the viewer's scope, or NOT_FOUND."""
    return field(service, node, permission, description, convert=node.of, gateway=False, id=id)


def listing(service: Service, node: Any, permission: Permission, description: str) -> Any:
    """``xs: [X!]!`` by ``service(viewer)`` (a short list: no paging)."""
    return field(
        service,
        list[node],
        permission,
        description,
        convert=lambda rows: [node.of(r) for r in rows],
        gateway=False,
    )
