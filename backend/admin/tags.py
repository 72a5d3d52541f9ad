"""Spend by cost-attribution tag (``metadata.tags`` / ``x-switchboard-tags``), from hourly
``TagRollup`` rows (``TagDaily`` for the whole days of a long window), scoped like usage: a
member sees their own requests made under their current organization, an org_admin every
request made under theirs, a super_admin all.

A request with several tags counts fully under each of them, so the tags' totals may add up to
more than the traffic. Requests without a known price are counted in ``unknown_cost_requests``
and never added to ``cost_usd`` as $0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from backend.admin.access import Actor, is_admin, org_scope, own_org
from backend.admin.errors import InvalidInput
from backend.data import windows

MAX_TAG_FILTER = 100


@dataclass(frozen=True, slots=True)
class TagSpend:
    tag: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    unknown_cost_requests: int


async def spend_by_tag(
    actor: Actor,
    *,
    since: dt.datetime,
    until: dt.datetime,
    tags: list[str] | None = None,
    organization_id: int | None = None,
    user_id: int | None = None,
    app_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[TagSpend]:
    """Totals per tag over ``[since, until)`` to the hour, highest cost first (hourly rollups,
    daily ones for the whole days of a long window: ``data.windows``)."""
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    if not is_admin(actor):
        # Rollups store "none" as 0.
        scope: dict[str, Any] = {"user_id": actor.id, "org_id": own_org(actor) or 0}
    else:
        own = org_scope(actor, "view spend by tag")
        scope = {} if own is None else {"org_id": own}
    asked = {
        k: v
        for k, v in (("org_id", organization_id), ("user_id", user_id), ("app_id", app_id))
        if v is not None
    }
    filters = windows.both(scope, asked)
    if tags is not None and len(tags) > MAX_TAG_FILTER:
        raise InvalidInput(f"at most {MAX_TAG_FILTER} tags", field="tags")
    if filters is None:
        return []
    wanted = None if tags is None else list(tags)
    rows = await windows.grouped(
        "tag",
        since,
        until,
        group_by=("tag",),
        sums=(
            "requests",
            "errors",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "unknown_cost_requests",
        ),
        filters=filters,
        narrow=None if wanted is None else (lambda qs: qs.filter(tag__in=wanted)),
        now=now,
    )
    out = [
        TagSpend(
            r["tag"],
            r["requests"],
            r["errors"],
            r["input_tokens"],
            r["output_tokens"],
            r["cost_usd"],
            r["unknown_cost_requests"],
        )
        for r in rows
    ]
    out.sort(key=lambda t: (-t.cost_usd, t.tag))
    return out
