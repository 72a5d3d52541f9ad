"""A row by id for the admin services, or NOT_FOUND in one wording: "<what> <id> does not exist".

A row outside the viewer's scope is refused by the caller's access check (FORBIDDEN), or, where
even its existence is another organization's business, by passing a scoped queryset (the log) or
raising ``not_found`` after the check (aliases, admin tokens): the same answer as a missing row.
"""

from __future__ import annotations

from typing import Any, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

from backend.admin.errors import NotFound

M = TypeVar("M", bound=Model)


def not_found(what: str, ident: object) -> NotFound:
    return NotFound(f"{what} {ident} does not exist")


async def found(rows: type[M] | QuerySet[M], ident: int, what: str, **filters: Any) -> M:
    """The row of ``rows`` (a model or a scoped queryset) with this id, or NOT_FOUND."""
    qs = rows if isinstance(rows, QuerySet) else rows.all()
    row = await qs.get_or_none(id=ident, **filters)
    if row is None:
        raise not_found(what, ident)
    return row
