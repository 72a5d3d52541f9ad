"""Spend by cost-attribution tag (``metadata.tags`` / ``x-switchboard-tags``), from hourly
``TagRollup`` rows, scoped like usage: a member sees their own requests made under their current
organization, an org_admin every request made under theirs, a super_admin all.

A request with several tags counts fully under each of them, so the tags' totals may add up to
more than the traffic. Requests without a known price are counted in ``unknown_cost_requests``
and never added to ``cost_usd`` as $0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from tortoise.functions import Sum

from backend.admin.access import Actor, is_admin, org_scope, own_org
from backend.admin.errors import InvalidInput
from backend.admin.logs import money
from backend.data.models.logs import TagRollup

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
) -> list[TagSpend]:
    """Totals per tag over ``[since, until)`` to the hour, highest cost first."""
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    qs = TagRollup.filter(bucket__gte=since, bucket__lt=until)
    if not is_admin(actor):
        # Rollups store "none" as 0.
        qs = qs.filter(user_id=actor.id, org_id=own_org(actor) or 0)
    else:
        own = org_scope(actor, "view spend by tag")
        if own is not None:
            qs = qs.filter(org_id=own)
    if organization_id is not None:
        qs = qs.filter(org_id=organization_id)
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    if app_id is not None:
        qs = qs.filter(app_id=app_id)
    if tags is not None:
        if len(tags) > MAX_TAG_FILTER:
            raise InvalidInput(f"at most {MAX_TAG_FILTER} tags", field="tags")
        qs = qs.filter(tag__in=tags)
    rows = (
        await qs.annotate(
            n=Sum("requests"),
            e=Sum("errors"),
            i=Sum("input_tokens"),
            o=Sum("output_tokens"),
            cost=Sum("cost_usd"),
            u=Sum("unknown_cost_requests"),
        )
        .group_by("tag")
        .values("tag", "n", "e", "i", "o", "cost", "u")
    )
    out = [
        TagSpend(
            r["tag"],
            int(r["n"] or 0),
            int(r["e"] or 0),
            int(r["i"] or 0),
            int(r["o"] or 0),
            money(r["cost"]),
            int(r["u"] or 0),
        )
        for r in rows
    ]
    out.sort(key=lambda t: (-t.cost_usd, t.tag))
    return out
