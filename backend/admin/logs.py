"""Gateway logs (the request log) and per-user usage (from hourly rollups), scoped by role.

A row belongs to the organization its request was made under (``org_id``, written from the
caller's principal), never to the user's current one: users move between organizations, and their
history stays with the organization that paid for it. Members see their own rows made under their
current organization, org_admins every row made under theirs (a user who moved in brings nothing
along; one who moved out leaves their rows behind), super_admins all.

Members are scoped by organization too because an org_admin can take over a member's account
(set its password): "own rows" across organizations would hand org B's admin org A's
conversations through a user who moved from A to B.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from backend.admin import logsearch
from backend.admin import validate as v
from backend.admin.access import (
    Actor,
    is_admin,
    is_super,
    org_scope,
    own_org,
    require_user_access,
)
from backend.admin.errors import Forbidden, InvalidInput
from backend.admin.logsearch import DEFAULT_BUDGET_S, Clock, Counted, Window
from backend.admin.lookup import found
from backend.admin.pagination import Page, Sort, offset_page
from backend.data import windows
from backend.data.models.logs import RequestLog
from backend.data.models.tenancy import User
from backend.proxy.gemini import LOGGED_ENDPOINTS as GEMINI_ENDPOINTS

#: Newest first by the time the request was made (``id`` breaks ties): the ``(column,
#: created_at)`` indexes serve both a filter and its order, and a time window is a range of them.
LOG_SORTS = {
    "NEWEST": Sort("log:newest-at", "created_at", True),
    "OLDEST": Sort("log:oldest-at", "created_at", False),
}
CENT = Decimal("0.00000001")


def log_scope(actor: Actor, action: str = "view gateway logs") -> dict[str, Any]:
    """Filters on ``RequestLog`` limiting reads to the rows ``actor`` may see (module docstring).

    ``org_id=None`` filters on IS NULL: a member without an organization sees the rows they made
    without one.
    """
    if not is_admin(actor):
        return {"user_id": actor.id, "org_id": own_org(actor)}
    own = org_scope(actor, action)
    return {} if own is None else {"org_id": own}


async def activity_scope(actor: Actor, user: User) -> dict[str, Any]:
    """Filters on ``RequestLog`` for ``actor`` exporting ``user``'s activity; Forbidden if none.

    An org_admin may export the rows made under their organization by a user who belongs to it
    now or made requests under it before moving out; a user exports their own rows made under
    their current organization.
    """
    action = "export the activity of"
    if is_super(actor):
        return {}
    if actor.id == user.id:
        return {"org_id": own_org(actor)}
    if actor.role == "org_admin" and user.role != "super_admin":
        own = org_scope(actor, action)
        current = user.organization_id  # type: ignore[attr-defined]
        if current == own or await RequestLog.exists(user_id=user.id, org_id=own):
            return {"org_id": own}
    require_user_access(actor, user, action, self_ok=True)
    raise Forbidden(f"you may only {action} users of your own organization")


def _scoped_logs(actor: Actor) -> QuerySet[RequestLog]:
    return RequestLog.filter(**log_scope(actor))


#: The gateway's doors as the logs name them: a filter value -> the endpoint paths logged for it
#: (a door whose path holds the model, such as Gemini's, is logged with ``{model}``; Gemini's
#: methods each have their own path, ``proxy.gemini.LOGGED_ENDPOINTS``).
ENDPOINTS: dict[str, tuple[str, ...]] = {
    "chat_completions": ("/v1/chat/completions",),
    "messages": ("/v1/messages",),
    "count_tokens": ("/v1/messages/count_tokens",),
    "responses": ("/v1/responses",),
    "stored_responses": (
        "/v1/responses/{id}",
        "/v1/responses/{id}/input_items",
    ),
    "gemini": tuple(e for e in GEMINI_ENDPOINTS if "{model}" in e),
    "embeddings": ("/v1/embeddings",),
    "models": ("/v1/models", "/v1beta/models"),
}


@dataclass(frozen=True, slots=True)
class LogFilter:
    #: Only requests to these endpoints (logged paths; see ``ENDPOINTS``).
    endpoints: tuple[str, ...] | None = None
    user_id: int | None = None
    org_id: int | None = None
    app_id: int | None = None
    model: str | None = None
    provider: str | None = None
    status: int | None = None
    errors_only: bool = False
    key_prefix: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    include_superseded: bool = False
    #: Every row of one request (its fallback attempts too, with ``include_superseded``).
    request_id: str | None = None
    #: Free text: a request id or key prefix it starts with, or part of a model name.
    search: str | None = None


#: Longest free-text search accepted (ids and model names are shorter).
MAX_SEARCH = 200
#: Most rows ``count_logs`` counts (a bounded count stays fast on a large table).
DEFAULT_COUNT_LIMIT = 10_000
MAX_COUNT_LIMIT = 100_000
#: What a page's ``totalCount`` counts up to (``totalIsEstimate`` beyond).
TOTAL_COUNT_LIMIT = DEFAULT_COUNT_LIMIT


def _filtered(actor: Actor, f: LogFilter) -> QuerySet[RequestLog]:
    qs = _scoped_logs(actor)
    if f.endpoints is not None:
        qs = qs.filter(endpoint__in=list(f.endpoints))
    if f.user_id is not None:
        qs = qs.filter(user_id=f.user_id)
    if f.org_id is not None:
        qs = qs.filter(org_id=f.org_id)
    if f.app_id is not None:
        qs = qs.filter(app_id=f.app_id)
    if f.model:
        qs = qs.filter(Q(requested_model=f.model) | Q(actual_model=f.model))
    if f.provider:
        qs = qs.filter(provider=f.provider)
    if f.status is not None:
        qs = qs.filter(status=f.status)
    if f.errors_only:
        qs = qs.filter(status__gte=400)
    if f.key_prefix:
        qs = qs.filter(key_prefix=f.key_prefix)
    if f.since is not None:
        qs = qs.filter(created_at__gte=v.aware(f.since, "since"))
    if f.until is not None:
        qs = qs.filter(created_at__lt=v.aware(f.until, "until"))
    if not f.include_superseded:
        qs = qs.filter(superseded=False)
    if f.request_id:
        qs = qs.filter(request_id=f.request_id)
    if f.search is not None and f.search.strip():
        qs = qs.filter(_search(f.search))
    return qs


def _search(text: str) -> Q:
    term = text.strip()
    if len(term) > MAX_SEARCH:
        raise InvalidInput(f"search may be at most {MAX_SEARCH} characters", field="search")
    # Ids and key prefixes match from their start (an index range), models anywhere in the name.
    return (
        Q(request_id__startswith=term)
        | Q(key_prefix__startswith=term)
        | Q(requested_model__icontains=term)
        | Q(actual_model__icontains=term)
    )


def _window(f: LogFilter) -> Window:
    return Window(
        None if f.since is None else v.aware(f.since, "since"),
        None if f.until is None else v.aware(f.until, "until"),
    )


async def list_logs(
    actor: Actor,
    filters: LogFilter,
    *,
    sort: str = "NEWEST",
    first: int | None = None,
    after: str | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    clock: Clock = time.perf_counter,
    deadline: float | None = None,
) -> Page[RequestLog]:
    """A page of the log, searched in time slices within ``budget_s`` (``admin.logsearch``: a
    rare filter may answer a partial page with ``searched_to`` set); its ``count`` is
    ``count_logs``'s."""
    qs = _filtered(actor, filters)
    page = await logsearch.page(
        qs,
        LOG_SORTS[sort],
        first=first,
        after=after,
        window=_window(filters),
        budget_s=budget_s,
        clock=clock,
        deadline=deadline,
    )

    async def count() -> int:
        counted = await count_logs(actor, filters, limit=TOTAL_COUNT_LIMIT, deadline=deadline)
        return counted.count

    page.count = count
    return page


async def count_logs(
    actor: Actor,
    filters: LogFilter,
    *,
    limit: int = DEFAULT_COUNT_LIMIT,
    budget_s: float = DEFAULT_BUDGET_S,
    clock: Clock = time.perf_counter,
    deadline: float | None = None,
) -> Counted:
    """Rows matching ``filters`` (as ``list_logs``), counted up to ``limit`` newest first.

    Exact when at most ``limit`` rows match and they were all counted within ``budget_s``;
    else a lower bound: ``limit`` ("more than"), or the rows since ``Counted.since`` when a
    rare filter over a long window ran out of time.
    """
    if not 1 <= limit <= MAX_COUNT_LIMIT:
        raise InvalidInput(f"upTo must be from 1 to {MAX_COUNT_LIMIT}", field="upTo")
    return await logsearch.count(
        _filtered(actor, filters),
        "created_at",
        limit=limit,
        window=_window(filters),
        budget_s=budget_s,
        clock=clock,
        deadline=deadline,
    )


async def get_log(actor: Actor, log_id: int) -> RequestLog:
    row = await found(_scoped_logs(actor), log_id, "log entry")
    return row


@dataclass(frozen=True, slots=True)
class UserUsage:
    user_id: int
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: Decimal
    unknown_cost_requests: int = 0


USAGE_SORTS = ("COST_DESC", "REQUESTS_DESC", "TOKENS_DESC", "USER_ASC")


def _usage_key(sort: str) -> Any:
    if sort == "REQUESTS_DESC":
        return lambda u: (-u.requests, u.user_id)
    if sort == "TOKENS_DESC":
        return lambda u: (-(u.input_tokens + u.output_tokens), u.user_id)
    if sort == "USER_ASC":
        return lambda u: u.user_id
    return lambda u: (-u.cost_usd, u.user_id)


async def usage_by_user(
    actor: Actor,
    *,
    since: dt.datetime,
    until: dt.datetime,
    user_id: int | None = None,
    organization_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[UserUsage]:
    """Totals per user over ``[since, until)``, to the hour (hourly rollups, daily ones for
    the whole days of a long window: ``data.windows``)."""
    if not is_admin(actor):
        # Rollups store "no organization" as 0 (see UsageRollup).
        scope: dict[str, Any] = {"user_id": actor.id, "org_id": own_org(actor) or 0}
    else:
        own = org_scope(actor, "view usage")
        scope = {} if own is None else {"org_id": own}
    asked = {k: v for k, v in (("user_id", user_id), ("org_id", organization_id)) if v is not None}
    filters = windows.both(scope, asked)
    if filters is None:
        return []
    rows = await windows.grouped(
        "usage",
        since,
        until,
        group_by=("user_id",),
        sums=USAGE_SUMS,
        filters=filters,
        narrow=lambda qs: qs.exclude(user_id=0),
        now=now,
    )
    return [UserUsage(r["user_id"], *(r[s] for s in USAGE_SUMS)) for r in rows]


#: UserUsage's totals, in its field order.
USAGE_SUMS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "unknown_cost_requests",
)


def money(value: Any) -> Decimal:
    """A summed amount as an exact 8-decimal Decimal (SQLite sums decimals as floats)."""
    if value is None:
        return Decimal(0).quantize(CENT)
    return Decimal(str(value)).quantize(CENT)


async def usage_page(
    actor: Actor,
    *,
    since: dt.datetime,
    until: dt.datetime,
    user_id: int | None = None,
    organization_id: int | None = None,
    sort: str = "COST_DESC",
    first: int | None = None,
    after: str | None = None,
    now: dt.datetime | None = None,
) -> Page[UserUsage]:
    rows = await usage_by_user(
        actor,
        since=since,
        until=until,
        user_id=user_id,
        organization_id=organization_id,
        now=now,
    )
    rows.sort(key=_usage_key(sort))
    key = f"usage:{sort}:{since.isoformat()}:{until.isoformat()}"
    return offset_page(rows, key, first=first, after=after)
