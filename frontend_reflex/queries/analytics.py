"""Documents of analytics, the audit log and the catalog with its price overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from frontend_reflex.queries.common import Op, _ids, enum_name

# -- analytics ---------------------------------------------------------------------------------
_TOTALS = (
    "requests errors errorRate inputTokens outputTokens cachedTokens costUsd "
    "unknownCostRequests avgLatencyMs p50Ms p95Ms"
)

ANALYTICS = f"""
query Analytics($d: AnalyticsDimension!, $s: DateTime!, $u: DateTime!, $f: AnalyticsFilter,
                $l: Int) {{
  analytics(dimension: $d, since: $s, until: $u, filter: $f, limit: $l) {{
    dimension since until granularity groupCount
    groups {{ key label entityId totals {{ {_TOTALS} }} }}
    total {{ {_TOTALS} }}
    series {{ bucket requests errors costUsd unknownCostRequests }}
  }}
}}"""


def analytics(
    dimension: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    limit: int = 100,
    filters: Mapping[str, Any] | None = None,
) -> Op:
    """``dimension`` as stored (``model``, ``org``...); the window [since, until) in UTC."""
    names = {"org": "ORGANIZATION"}
    return ANALYTICS, {
        "d": names.get(dimension, enum_name(dimension)),
        "s": since.isoformat(),
        "u": until.isoformat(),
        "f": _ids(filters) if filters else None,
        "l": limit,
    }


#: One page of a usage table (the Usage page's users or apps): no series, no window total.
USAGE_GROUPS = f"""
query UsageGroups($d: AnalyticsDimension!, $s: DateTime!, $u: DateTime!, $l: Int!, $o: Int!) {{
  analytics(dimension: $d, since: $s, until: $u, limit: $l, offset: $o) {{
    groupCount
    groups {{ key label entityId totals {{ {_TOTALS} }} }}
  }}
}}"""


#: One page of the Analytics table in the order chosen (``AnalyticsSort``); no series, no total.
ANALYTICS_PAGE = f"""
query AnalyticsPage($d: AnalyticsDimension!, $s: DateTime!, $u: DateTime!, $f: AnalyticsFilter,
                    $l: Int!, $o: Int!, $sort: AnalyticsSort!) {{
  analytics(dimension: $d, since: $s, until: $u, filter: $f, limit: $l, offset: $o, sort: $sort) {{
    groupCount
    groups {{ key label entityId totals {{ {_TOTALS} }} }}
  }}
}}"""


def analytics_page(
    dimension: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    limit: int,
    offset: int,
    sort: str,
) -> Op:
    """``limit`` groups after ``offset`` in the order ``sort`` (an ``AnalyticsSort`` name)."""
    _doc, variables = analytics(dimension, since, until, limit=limit)
    return ANALYTICS_PAGE, {**variables, "o": offset, "sort": sort}


def usage_groups(
    dimension: str, since: dt.datetime, until: dt.datetime, *, limit: int, offset: int
) -> Op:
    """``limit`` groups of ``dimension`` (``user`` or ``app``) after the first ``offset``."""
    return USAGE_GROUPS, {
        "d": enum_name(dimension),
        "s": since.isoformat(),
        "u": until.isoformat(),
        "l": limit,
        "o": offset,
    }


# -- audit log ---------------------------------------------------------------------------------
AUDIT = """
query Audit($first: Int, $after: String, $a: String, $t: String, $who: Int, $s: DateTime,
            $u: DateTime) {
  auditLog(first: $first, after: $after, action: $a, target: $t, actorId: $who, since: $s,
           until: $u) {
    nodes { id createdAt actorId actor { id name email } action target detail }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}"""

# -- catalog and price overrides ---------------------------------------------------------------
PRICE_OVERRIDES = """
query Prices { priceOverrides { model inputPerMtok outputPerMtok cachedPerMtok contextWindow } }"""


def set_price(model: str, fields: Mapping[str, Any]) -> Op:
    doc = """
mutation SetPrice($m: String!, $i: PriceOverrideInput!) {
  setPriceOverride(model: $m, input: $i) { model }
}"""
    return doc, {"m": model, "i": dict(fields)}


def delete_price(model: str) -> Op:
    return "mutation DeletePrice($m: String!) { deletePriceOverride(model: $m) }", {"m": model}
