"""The typed per-request context: gateway, authenticated viewer, per-request DataLoaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader
from tortoise.models import Model

from backend.admin.errors import NotAuthenticated
from backend.admin.keys import KeySpend, chain_spend_since
from backend.admin.tenancy import member_counts
from backend.data.models.tenancy import App, Organization, User
from backend.gateway import Gateway
from backend.security.login_guard import LoginGuard

M = TypeVar("M", bound=Model)


def _by_id(model: type[M]) -> Callable[[Sequence[int]], Awaitable[list[M | None]]]:
    async def load(ids: Sequence[int]) -> list[M | None]:
        rows = {r.pk: r for r in await model.filter(id__in=list(ids))}
        return [rows.get(i) for i in ids]

    return load


async def _member_counts(org_ids: Sequence[int]) -> list[int]:
    counts = await member_counts(list(org_ids))
    return [counts.get(i, 0) for i in org_ids]


@dataclass
class Loaders:
    """Batch the lookups list pages would otherwise make one row at a time (N+1)."""

    user: DataLoader[int, User | None] = field(default_factory=lambda: DataLoader(_by_id(User)))
    org: DataLoader[int, Organization | None] = field(
        default_factory=lambda: DataLoader(_by_id(Organization))
    )
    app: DataLoader[int, App | None] = field(default_factory=lambda: DataLoader(_by_id(App)))
    member_count: DataLoader[int, int] = field(default_factory=lambda: DataLoader(_member_counts))
    #: (key counter id, period, period start) -> its rotation chain's spend since then.
    key_spend: DataLoader[Any, KeySpend] = field(
        default_factory=lambda: DataLoader(chain_spend_since)
    )


@dataclass
class Context:
    gateway: Gateway
    #: Password workers and the failed-login throttle (owned by the app factory).
    login_guard: LoginGuard
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    #: The authenticated dashboard user or automation token owner; None when anonymous.
    viewer: User | None = None
    #: The presented session/admin token (logout revokes it).
    token: str | None = None
    #: The WebSocket ``connection_init`` payload (set by strawberry).
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(default_factory=Loaders)
    #: When this request's log searches must answer (``admin.logsearch``: a page and its
    #: counts share one time budget); set by the first one.
    search_deadline: float | None = None


Info = strawberry.Info[Context, None]


def client_address(context: Context) -> str:
    """Who is calling, for throttling: the trusted proxy's header if configured, else the peer."""
    client = context.request.client
    return context.login_guard.address_of(context.request.headers, client.host if client else None)


def viewer(info: Info) -> User:
    user = info.context.viewer
    if user is None:
        raise NotAuthenticated(
            "authentication required: send 'Authorization: Bearer <session or admin token>'"
        )
    return user
