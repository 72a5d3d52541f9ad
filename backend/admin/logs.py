"""Gateway logs (the request log) and per-user usage (from hourly rollups), scoped by role.

Members see their own requests and usage, org_admins their organization's, super_admins all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Sum
from tortoise.queryset import QuerySet

from backend.admin import validate as v
from backend.admin.access import Actor, is_admin, org_scope
from backend.admin.errors import NotFound
from backend.admin.pagination import Page, Sort, keyset_page, offset_page
from backend.data.models.logs import RequestLog, UsageRollup

LOG_SORTS = {
    "NEWEST": Sort("log:newest", "id", True),
    "OLDEST": Sort("log:oldest", "id", False),
}
CENT = Decimal("0.00000001")


def _scoped_logs(actor: Actor) -> QuerySet[RequestLog]:
    if not is_admin(actor):
        return RequestLog.filter(user_id=actor.id)
    own = org_scope(actor, "view gateway logs")
    return RequestLog.all() if own is None else RequestLog.filter(org_id=own)


@dataclass(frozen=True, slots=True)
class LogFilter:
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


async def list_logs(
    actor: Actor,
    filters: LogFilter,
    *,
    sort: str = "NEWEST",
    first: int | None = None,
    after: str | None = None,
) -> Page[RequestLog]:
    qs = _scoped_logs(actor)
    f = filters
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
    return await keyset_page(qs, LOG_SORTS[sort], first=first, after=after)


async def get_log(actor: Actor, log_id: int) -> RequestLog:
    row = await _scoped_logs(actor).filter(id=log_id).first()
    if row is None:
        raise NotFound(f"log entry {log_id} does not exist")
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
) -> list[UserUsage]:
    """Totals per user over ``[since, until)``, to the hour (rollups are hourly)."""
    qs = UsageRollup.filter(bucket__gte=since, bucket__lt=until).exclude(user_id=0)
    if not is_admin(actor):
        qs = qs.filter(user_id=actor.id)
    else:
        own = org_scope(actor, "view usage")
        if own is not None:
            qs = qs.filter(org_id=own)
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    if organization_id is not None:
        qs = qs.filter(org_id=organization_id)
    rows = (
        await qs.annotate(
            n=Sum("requests"),
            e=Sum("errors"),
            i=Sum("input_tokens"),
            o=Sum("output_tokens"),
            c=Sum("cached_tokens"),
            cost=Sum("cost_usd"),
        )
        .group_by("user_id")
        .values("user_id", "n", "e", "i", "o", "c", "cost")
    )
    return [
        UserUsage(
            r["user_id"],
            int(r["n"] or 0),
            int(r["e"] or 0),
            int(r["i"] or 0),
            int(r["o"] or 0),
            int(r["c"] or 0),
            money(r["cost"]),
        )
        for r in rows
    ]


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
) -> Page[UserUsage]:
    rows = await usage_by_user(
        actor, since=since, until=until, user_id=user_id, organization_id=organization_id
    )
    rows.sort(key=_usage_key(sort))
    key = f"usage:{sort}:{since.isoformat()}:{until.isoformat()}"
    return offset_page(rows, key, first=first, after=after)
