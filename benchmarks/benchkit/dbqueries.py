"""Every GraphQL list and dashboard query ``db_scale.py`` times, with the role that sends it.

Where the dashboard has the document, it is taken from ``frontend_reflex.queries`` (the exact
text the dashboard sends; a change there is measured here without an edit); the rest are the
API's list queries with each filter the dashboard's log explorer offers, the counts, the
request detail, and the lists an operator pages through. ``facts`` are the seeded ids
(``dbseed._facts``); ``{cursor:NAME}`` values are filled by ``db_scale.py`` before timing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from frontend_reflex import queries as fq

SUPER, ORG_ADMIN, MEMBER = "super_admin", "org_admin", "member"


@dataclass(frozen=True)
class Query:
    name: str
    doc: str
    variables: dict[str, Any] = field(default_factory=dict)
    role: str = SUPER
    group: str = ""


COUNT = "query Count($f: GatewayLogFilter, $n: Int!) { gatewayLogCount(filter: $f, upTo: $n) { count exact } }"  # noqa: E501
DETAIL = """
query Detail($id: Int!) {
  gatewayLog(id: $id) {
    id requestId createdAt keyPrefix endpoint requestedModel actualModel provider status
    errorType errorCode upstreamStatus errorMessage
    refusal { kind summary scope limit used resetsAt }
    inputTokens outputTokens cachedTokens reasoningTokens costUsd
    price { inputPerMtok outputPerMtok source }
    latencyMs ttftMs streamed attempts cacheHit agentId tier requestBody responseBody
    user { id name } app { id name }
  }
}"""
LOGS: str = fq.LOGS
OLDEST = LOGS.replace("sort: NEWEST", "sort: OLDEST")
AUDIT_OWN = """
query Audit($action: String, $first: Int) {
  auditLog(action: $action, first: $first) {
    nodes { id createdAt actorId action target detail } pageInfo { hasNextPage endCursor }
  }
}"""
KEYS = """
query Keys($first: Int) {
  apiKeys(first: $first) {
    nodes { id name prefix status createdAt lastUsedAt expiresAt kind
      spendThisPeriod { period costUsd requests unknownCostRequests }
      user { id name } app { id name } }
    pageInfo { hasNextPage endCursor }
  }
}"""
TAGS = """
query Tags($since: DateTime) {
  spendByTag(since: $since) { tag requests errors costUsd unknownCostRequests }
}"""
USAGE_SINCE = """
query UsageSince($since: DateTime, $first: Int) {
  userUsage(since: $since, first: $first, sort: COST_DESC) {
    nodes { userId requests errors inputTokens outputTokens costUsd unknownCostRequests
      user { id name } }
    pageInfo { hasNextPage endCursor }
  }
}"""
HOME_LONG = """
query HomeLong {
  dashboard {
    costTrends(days: 90) { day costUsd requests byModel { model costUsd } byProvider { provider costUsd } }
    providerLoad(hours: 2160) { provider requests share errors errorRate avgLatencyMs }
    topSpenders(days: 90, limit: 10) { userId costUsd requests tokens user { name } }
  }
}"""  # noqa: E501
LIVE_DAY = """
query LiveDay { dashboard { live(minutes: 1440) { requests errors p50Ms p95Ms minutes { minute requests } } } }
"""  # noqa: E501
ALERTS = "query Deliveries { alertDeliveries(first: 50) { id createdAt kind status } }"
LOGS_TOTAL = """
query LogsTotal($f: GatewayLogFilter) {
  gatewayLogs(first: 50, filter: $f) { nodes { id } totalCount totalIsEstimate searchedTo }
}"""
# The dashboard's own documents where it has them (issue 17's pages), else equivalents.
AUDIT: str = getattr(fq, "AUDIT", AUDIT_OWN)
KEYS_DOC: str = getattr(fq, "KEYS_PAGE", KEYS)
DLP_ACTIVITY: str | None = getattr(fq, "DLP_ACTIVITY", None)
REQUEST_DETAIL: str | None = getattr(fq, "REQUEST_DETAIL", None)
FILTER_OPTIONS: str | None = getattr(fq, "LOG_FILTER_OPTIONS", None)


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def catalogue(facts: dict[str, Any]) -> list[Query]:
    now = dt.datetime.fromisoformat(facts["now"])
    day_30 = now - dt.timedelta(days=30)
    week = now - dt.timedelta(days=7)
    one_day = {"since": _iso(day_30), "until": _iso(day_30 + dt.timedelta(days=1))}
    page = {"first": 50}

    def logs(name: str, f: dict[str, Any] | None = None, role: str = SUPER, **extra: Any) -> Query:
        return Query(name, LOGS, {**page, "f": f, **extra}, role, "logs")

    def count(
        name: str, f: dict[str, Any] | None = None, n: int = 10_000, role: str = SUPER
    ) -> Query:
        return Query(name, COUNT, {"f": f, "n": n}, role, "counts")

    org, user, key = facts["big_org"], facts["busy_user"], facts["busy_key"]
    combo = {"organizationId": org, "model": "gpt-4o", "errorsOnly": True, "since": _iso(week)}
    out = [
        # Home
        Query(
            "home: live 60 min, cost trends 7 d, load 24 h, top spenders",
            fq.dashboard(with_live=True),
            group="home",
        ),
        Query(
            "home as org_admin (its organization, live hour included)",
            fq.dashboard(with_live=True),
            role=ORG_ADMIN,
            group="home",
        ),
        Query("home over 90 days (trends, load, top spenders)", HOME_LONG, group="home"),
        Query("live traffic, last 24 h", LIVE_DAY, group="home"),
        # Usage and tags
        Query("usage per user, 30 d (page of 50)", fq.USAGE, page, group="usage"),
        Query(
            "usage per user, 90 d (page of 50)",
            USAGE_SINCE,
            {**page, "since": _iso(now - dt.timedelta(days=90))},
            group="usage",
        ),
        Query("usage of one user (month, week)", *fq.user_usage(str(user)), group="usage"),
        Query("usage as org_admin, 30 d", fq.USAGE, page, ORG_ADMIN, "usage"),
        Query(
            "usage as member (own month, week)", *fq.user_usage(None), role=MEMBER, group="usage"
        ),
        Query("spend by tag, 30 d", TAGS, {}, group="usage"),
        Query(
            "spend by tag, 90 d", TAGS, {"since": _iso(now - dt.timedelta(days=90))}, group="usage"
        ),
        *analytics_queries(facts, now),
        # Log explorer (the dashboard's document carries the page and its count)
        logs("logs: newest 50"),
        logs("logs: page 2", after="{cursor:page2}"),
        logs("logs: a page 60 days back", after="{cursor:deep}"),
        Query("logs: oldest first", OLDEST, page, group="logs"),
        logs("logs: user", {"userId": user}),
        logs("logs: organization", {"organizationId": org}),
        logs("logs: app", {"appId": facts["busy_app"]}),
        logs("logs: model", {"model": "gpt-4o"}),
        logs("logs: rare model (0.2 %)", {"model": "claude-opus-4"}),
        logs("logs: provider", {"provider": "gemini"}),
        logs("logs: status 503", {"status": 503}),
        logs("logs: errors only", {"errorsOnly": True}),
        logs("logs: key prefix", {"keyPrefix": key}),
        logs("logs: endpoint (Gemini door)", {"endpoint": "GEMINI"}),
        logs("logs: one day, 30 days ago", one_day),
        logs("logs: search request id", {"search": facts["newest_request_id"][:12]}),
        logs("logs: search model text", {"search": "haiku"}),
        logs(
            "logs: request id + attempts",
            {"requestId": facts["newest_request_id"], "includeSuperseded": True},
        ),
        logs("logs: with superseded attempts", {"includeSuperseded": True}),
        logs("logs: org + model + errors + 7 d", combo),
        logs(
            "logs: rare combination (org + acme + 403)",
            {"organizationId": org, "model": "acme-finetune", "status": 403},
        ),
        logs("logs as org_admin", None, ORG_ADMIN),
        logs("logs as org_admin, errors only", {"errorsOnly": True}, ORG_ADMIN),
        logs("logs as member (own)", None, MEMBER),
        Query("logs with totalCount", LOGS_TOTAL, {"f": None}, group="logs"),
        Query(
            "logs with totalCount, org + errors",
            LOGS_TOTAL,
            {"f": {"organizationId": org, "errorsOnly": True}},
            group="logs",
        ),
        # Counts (the explorer's total)
        count("count: all"),
        count("count: all, up to 100,000", n=100_000),
        count("count: organization", {"organizationId": org}),
        count("count: user", {"userId": user}),
        count("count: errors only", {"errorsOnly": True}),
        count("count: model", {"model": "gpt-4o"}),
        count("count: one day, 30 days ago", one_day),
        count("count: org + model + errors + 7 d", combo),
        count("count: search model text", {"search": "haiku"}),
        count("count as org_admin", None, role=ORG_ADMIN),
        count("count as member", None, role=MEMBER),
        # Request detail
        Query(
            "request detail (a refused request)",
            REQUEST_DETAIL or DETAIL,
            {"id": facts["failed_request_id"] if REQUEST_DETAIL else facts["failed_id"]},
            group="detail",
        ),
        # Other lists
        Query("error reports, newest 50", fq.ERRORS, page, group="lists"),
        Query("error reports as org_admin", fq.ERRORS, page, ORG_ADMIN, "lists"),
        Query("DLP protections (+ activity)", fq.DLP, group="lists"),
        Query("audit log, newest 50", AUDIT, page, group="lists"),
        Query(
            "audit log, one action", AUDIT_OWN, {**page, "action": "api_key.revoke"}, group="lists"
        ),
        Query("alert deliveries", ALERTS, group="lists"),
        Query("users (page of 50)", fq.USERS, page, group="lists"),
        Query("organizations", fq.ORGANIZATIONS, page, group="lists"),
        Query("apps", fq.APPS, page, group="lists"),
        Query("API keys with spend this period (50)", KEYS_DOC, page, group="lists"),
        Query("API keys as org_admin", KEYS_DOC, page, ORG_ADMIN, "lists"),
        Query("one user's keys (My account)", *fq.my_keys(str(user)), role=MEMBER, group="lists"),
    ]
    if DLP_ACTIVITY:
        out.append(Query("DLP activity page (50, total)", DLP_ACTIVITY, page, group="lists"))
    if FILTER_OPTIONS:
        out.append(Query("log explorer filter options", FILTER_OPTIONS, group="lists"))
    return out


def analytics_queries(facts: dict[str, Any], now: dt.datetime) -> list[Query]:
    """The analytics page (issue 17): each dimension over 30 days, and the extremes."""
    build = getattr(fq, "analytics", None)
    if build is None:
        return []

    def one(name: str, dim: str, days: float, role: str = SUPER, **filters: Any) -> Query:
        doc, variables = build(dim, now - dt.timedelta(days=days), now, filters=filters or None)
        return Query(f"analytics: {name}", doc, variables, role, "analytics")

    return [
        *(
            one(f"by {d}, 30 d", d, 30)
            for d in ("model", "provider", "user", "app", "key", "org", "tag")
        ),
        one("by model, 24 h", "model", 1),
        one("by model, 90 d", "model", 90),
        one("by user, 90 d", "user", 90),
        one("by model of one user, 90 d", "model", 90, userId=str(facts["busy_user"])),
        one("by user as org_admin, 30 d", "user", 30, ORG_ADMIN),
        one("by model as member, 30 d", "model", 30, MEMBER),
    ]


#: Setup queries whose endCursor the catalogue's ``{cursor:NAME}`` values use.
def cursor_setup(facts: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    now = dt.datetime.fromisoformat(facts["now"])
    return {
        "page2": (LOGS, {"first": 50, "f": None}),
        # A page whose last row is ~60 days old: its cursor then pages from there unfiltered.
        "deep": (LOGS, {"first": 1, "f": {"until": _iso(now - dt.timedelta(days=60))}}),
    }
