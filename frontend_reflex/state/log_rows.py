"""Gateway Logs without Reflex: the explorer's filter fields, how a row reads, and which live
rows a filter lets through (the same conditions as the API's ``GatewayLogFilter``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from frontend_reflex import fmt
from frontend_reflex.state.filters import FilterField, parse_time, window

#: The doors the endpoint filter offers: GraphQL ``GatewayEndpoint`` name -> (label, the paths
#: rows through it are logged with; live rows are filtered by them). The dashboard does not
#: import the backend: ``tests/browser/test_logs_filter_units.py`` keeps this equal to it.
DOORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "CHAT_COMPLETIONS": ("Chat completions", ("/v1/chat/completions",)),
    "MESSAGES": ("Messages", ("/v1/messages",)),
    "COUNT_TOKENS": ("Count tokens", ("/v1/messages/count_tokens",)),
    "RESPONSES": ("Responses", ("/v1/responses",)),
    "STORED_RESPONSES": (
        "Stored responses",
        ("/v1/responses/{id}", "/v1/responses/{id}/input_items"),
    ),
    "GEMINI": (
        "Gemini",
        tuple(
            f"/{version}/models/{{model}}{method}"
            for version in ("v1beta", "v1")
            for method in (
                "",
                ":generateContent",
                ":streamGenerateContent",
                ":countTokens",
                ":embedContent",
                ":batchEmbedContents",
            )
        ),
    ),
    "EMBEDDINGS": ("Embeddings", ("/v1/embeddings",)),
    "MODELS": ("Model lists", ("/v1/models", "/v1beta/models")),
}
ALL_DOORS = "All endpoints"
DOOR_LABELS = [ALL_DOORS, *(label for label, _ in DOORS.values())]
#: (value, label) pairs of the endpoint select.
DOOR_OPTIONS = [("", ALL_DOORS), *((name, label) for name, (label, _) in DOORS.items())]

#: Every filter of ``GatewayLogFilter`` the explorer offers, by URL parameter.
LOG_FIELDS: tuple[FilterField, ...] = (
    FilterField("q", gql="search"),
    FilterField("org", "int", gql="organizationId"),
    FilterField("user", "int", gql="userId"),
    FilterField("app", "int", gql="appId"),
    FilterField("model"),
    FilterField("provider"),
    FilterField("status", "int"),
    FilterField("errors", "bool", gql="errorsOnly"),
    FilterField("key", gql="keyPrefix"),
    FilterField("endpoint", "choice", choices=tuple(DOORS)),
    FilterField("range", "range", gql="-"),
    FilterField("since", "time"),
    FilterField("until", "time"),
)

#: How a refusal kind reads in a row's badge (``RefusalKind`` names).
REFUSALS = {
    "SPEND_CAP": "spend cap",
    "RATE_LIMIT": "rate limit",
    "MODEL_NOT_ALLOWED": "model not allowed",
    "UNPRICED_MODEL": "unpriced model",
    "BUDGET_UNAVAILABLE": "budget store down",
    "AUTHENTICATION": "key refused",
    "ACCESS": "access refused",
    "DLP": "DLP",
    "DEPLOYMENT_LIMIT": "deployments full",
    "CIRCUIT_OPEN": "circuit open",
}


def request_href(request_id: Any) -> str:
    return f"/request?id={quote(str(request_id or ''), safe='')}"


def why_failed(r: Mapping[str, Any]) -> str:
    """Who failed a request, in two words: the gateway's refusal or the provider's status."""
    refusal = r.get("refusal")
    if isinstance(refusal, Mapping) and refusal.get("kind"):
        return REFUSALS.get(str(refusal["kind"]), str(refusal["kind"]).lower())
    upstream = r.get("upstreamStatus")
    if upstream:
        return f"provider {upstream}"
    return str(r.get("errorType") or "")


def log_row(r: Mapping[str, Any]) -> dict[str, str]:
    user = r.get("user")
    status = int(fmt.to_float(r.get("status")))
    return {
        # The stream's events carry no row id: the request id (and the model and deployment
        # that answered, for fallback attempts) names a row in both the stream and the query.
        "id": f"{r.get('requestId')}:{r.get('actualModel')}:{r.get('deployment')}:{status}",
        "request_id": str(r.get("requestId") or ""),
        "href": request_href(r.get("requestId")),
        "time": fmt.when(r.get("createdAt")),
        "key": fmt.text(r.get("keyPrefix")),
        "user": _caller(user, r.get("app")),
        "endpoint": fmt.text(r.get("endpoint")),
        "requested": fmt.text(r.get("requestedModel")),
        "actual": fmt.text(r.get("actualModel")),
        # The provider deployment (account) that answered; "" for the provider's own.
        "deployment": str(r.get("deployment") or ""),
        "tokens": f"{fmt.number(r.get('inputTokens'))} / {fmt.number(r.get('outputTokens'))}",
        "cost": fmt.money(r.get("costUsd")),
        "latency": f"{fmt.number(round(fmt.to_float(r.get('latencyMs'))))} ms",
        "status": str(status or ""),
        "failed": "yes" if status >= 400 else "",
        "why": why_failed(r) if status >= 400 else "",
    }


def _caller(user: Any, app: Any) -> str:
    if isinstance(user, Mapping) and user:
        return fmt.name_of(user)
    if isinstance(app, Mapping) and app:
        return f"app: {fmt.name_of(app)}"
    return "—"


def door_of(label: str) -> str:
    """The ``GatewayEndpoint`` name of a filter label ("" for all endpoints)."""
    return next((name for name, (shown, _) in DOORS.items() if shown == label), "")


def matches(door: str, row: Mapping[str, Any]) -> bool:
    """Whether a live row passes the endpoint filter ``door`` ("" passes everything)."""
    if not door:
        return True
    paths = DOORS[door][1] if door in DOORS else ()
    return row.get("endpoint") in paths


def _id_of(obj: Any) -> str:
    return str(obj.get("id") or "") if isinstance(obj, Mapping) else ""


def live_matches(values: Mapping[str, str], ev: Mapping[str, Any], now: dt.datetime) -> bool:
    """Whether a live event belongs on the first page of the filtered list (the API's rules:
    ``admin.logs.list_logs``)."""
    if not matches(values.get("endpoint", ""), ev):
        return False
    ids = {
        "org": str(ev.get("organizationId") or ""),
        "user": _id_of(ev.get("user")) or str(ev.get("userId") or ""),
        "app": str(ev.get("appId") or ""),
    }
    if any(values.get(k) and values[k] != v for k, v in ids.items()):
        return False
    model = values.get("model", "")
    if model and model not in (ev.get("requestedModel"), ev.get("actualModel")):
        return False
    if values.get("provider") and values["provider"] != ev.get("provider"):
        return False
    status = int(fmt.to_float(ev.get("status")))
    if values.get("status") and str(status) != values["status"]:
        return False
    if values.get("errors") and status < 400:
        return False
    if values.get("key") and values["key"] != ev.get("keyPrefix"):
        return False
    if values.get("q") and not _search_hit(values["q"], ev):
        return False
    since, until = window(values, now)
    created = fmt.parse_time(ev.get("createdAt"))
    if created is not None and since is not None and created < since:
        return False
    return not (until is not None and (created is None or created >= until))


def _search_hit(term: str, ev: Mapping[str, Any]) -> bool:
    term = term.strip()
    low = term.lower()
    return (
        str(ev.get("requestId") or "").startswith(term)
        or str(ev.get("keyPrefix") or "").startswith(term)
        or low in str(ev.get("requestedModel") or "").lower()
        or low in str(ev.get("actualModel") or "").lower()
    )


def live_possible(values: Mapping[str, str], now: dt.datetime) -> bool:
    """A custom range that ended in the past gets no new rows."""
    if values.get("range") != "custom":
        return True
    until = parse_time(values.get("until", ""))
    return until is None or until > now
