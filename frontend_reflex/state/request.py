"""Request detail: everything the log knows of one request, its fallback attempts included.

Opened from a Gateway Logs row, a DLP activity row or an error report (``/request?id=<request
id>``). The API scopes the read: a member opens their own requests only, an org_admin those
made under their organization; another's id reads as "not found".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.log_rows import REFUSALS

#: Most characters of a body shown on the page (the log keeps up to 1 MiB).
SHOWN_BODY = 100_000


def _rate(value: Any) -> str:
    if value in (None, ""):
        return ""
    try:
        return f"${Decimal(str(value)).normalize():f}"
    except InvalidOperation:
        return str(value)


def price_text(price: Any) -> str:
    """``$0.15 in / $0.6 out / $0.075 cached per 1M tokens (price-table)``."""
    if not isinstance(price, Mapping):
        return "no price used"
    parts = [f"{_rate(price.get('inputPerMtok'))} in", f"{_rate(price.get('outputPerMtok'))} out"]
    if price.get("cachedPerMtok") not in (None, ""):
        parts.append(f"{_rate(price['cachedPerMtok'])} cached")
    if price.get("cacheWritePerMtok") not in (None, ""):
        parts.append(f"{_rate(price['cacheWritePerMtok'])} cache write")
    return f"{' / '.join(parts)} per 1M tokens ({price.get('source') or 'unknown source'})"


def body_text(raw: Any) -> str:
    """A body as people read it: indented JSON when it is JSON, cut to ``SHOWN_BODY``."""
    if not raw:
        return ""
    text = str(raw)
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    if len(text) > SHOWN_BODY:
        return text[:SHOWN_BODY] + f"\n… ({len(text) - SHOWN_BODY:,} more characters)"
    return text


def _ms(value: Any) -> str:
    return "—" if value in (None, "") else f"{fmt.to_float(value):,.0f} ms"


def attempt_row(n: int, r: Mapping[str, Any]) -> dict[str, str]:
    status = int(fmt.to_float(r.get("status")))
    upstream = r.get("upstreamStatus")
    refusal = r.get("refusal") if isinstance(r.get("refusal"), Mapping) else None
    if refusal:
        who = f"gateway: {REFUSALS.get(str(refusal.get('kind')), str(refusal.get('kind')))}"
    elif upstream:
        who = f"provider answered {upstream}"
    elif status >= 400:
        who = f"gateway: {r.get('errorType') or 'error'}"
    else:
        who = "answered"
    return {
        "n": str(n),
        "time": fmt.when(r.get("createdAt")),
        "model": fmt.text(r.get("actualModel")),
        "provider": fmt.text(r.get("provider"))
        + (f" via {r['deployment']}" if r.get("deployment") else ""),
        "status": str(status or ""),
        "failed": "yes" if status >= 400 else "",
        "who": who,
        "code": fmt.text(r.get("errorCode"), ""),
        "error": fmt.text(r.get("errorMessage"), ""),
        "latency": _ms(r.get("latencyMs")),
        "role": "fallback attempt" if r.get("superseded") else "the request's answer",
    }


def _who(r: Mapping[str, Any]) -> str:
    user, app = r.get("user"), r.get("app")
    if isinstance(user, Mapping) and user:
        return f"{user.get('name')} <{user.get('email')}>"
    if isinstance(app, Mapping) and app:
        return f"app {app.get('name')}"
    return "—"


def summary(final: Mapping[str, Any]) -> dict[str, str]:
    status = int(fmt.to_float(final.get("status")))
    tags = final.get("tags") or []
    return {
        "request_id": fmt.text(final.get("requestId")),
        "time": fmt.when(final.get("createdAt")),
        "endpoint": fmt.text(final.get("endpoint")),
        "key": fmt.text(final.get("keyPrefix")),
        "who": _who(final),
        "requested": fmt.text(final.get("requestedModel")),
        "model": fmt.text(final.get("actualModel")),
        "provider": fmt.text(final.get("provider"))
        + (f" via {final['deployment']}" if final.get("deployment") else ""),
        "status": str(status or ""),
        "failed": "yes" if status >= 400 else "",
        "error_type": fmt.text(final.get("errorType"), ""),
        "error_code": fmt.text(final.get("errorCode"), ""),
        "error": fmt.text(final.get("errorMessage"), ""),
        "upstream": fmt.text(final.get("upstreamStatus"), ""),
        "input": fmt.number(final.get("inputTokens")),
        "cached": fmt.number(final.get("cachedTokens")),
        "output": fmt.number(final.get("outputTokens")),
        "reasoning": fmt.number(final.get("reasoningTokens")),
        "cost": fmt.money(final.get("costUsd")),
        "price": price_text(final.get("price")),
        "latency": _ms(final.get("latencyMs")),
        "ttft": _ms(final.get("ttftMs")) if final.get("streamed") else "not streamed",
        "cache_hit": "yes (no provider call, no cost)" if final.get("cacheHit") else "no",
        "agent": fmt.text(final.get("agentId")),
        "tier": queries.stored(final.get("tier"), "—"),
        "tags": ", ".join(str(t) for t in tags) or "—",
        "attempts": str(final.get("attempts") or 1),
    }


def refusal_view(final: Mapping[str, Any]) -> dict[str, str]:
    """The cap or limit that refused the request ({} when the gateway did not refuse it)."""
    refusal = final.get("refusal")
    if not isinstance(refusal, Mapping) or not refusal.get("kind"):
        return {}
    kind = str(refusal["kind"])
    scope = refusal.get("scope")
    return {
        "kind": REFUSALS.get(kind, kind.lower()),
        "summary": fmt.text(refusal.get("summary")),
        "scope": f"{scope} #{refusal.get('scopeId')}" if scope else "",
        "limit": fmt.text(refusal.get("limit"), ""),
        "used": fmt.text(refusal.get("used"), ""),
        "resets": fmt.when(refusal.get("resetsAt")) if refusal.get("resetsAt") else "",
    }


def final_row(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The request's own row (the one no fallback replaced), else its last attempt."""
    own = [n for n in nodes if not n.get("superseded")]
    return (own or nodes)[-1]


class RequestState(AuthState):
    request_id: str = ""
    info: dict[str, str] = {}
    attempts: list[dict[str, str]] = []
    refusal: dict[str, str] = {}
    request_body: str = ""
    response_body: str = ""
    loading: bool = False
    error: str = ""

    @rx.var
    def found(self) -> bool:
        return bool(self.info)

    @rx.var
    def refused(self) -> bool:
        return bool(self.refusal)

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard()
        if redirect is not None:
            yield redirect
            return
        self.request_id = str(self.router.url.query_parameters.get("id") or "").strip()
        self.info, self.attempts, self.refusal = {}, [], {}
        self.request_body = self.response_body = ""
        if not self.request_id:
            self.error = "No request id: open a request from Gateway Logs."
            return
        self.loading = True
        yield
        try:
            data = await self._gql(queries.REQUEST_DETAIL, {"id": self.request_id})
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            yield self._on_api_error(exc)
            return
        self.loading = False
        nodes = fmt.nodes(data.get("gatewayLogs"))
        if not nodes:
            self.error = (
                f"No request {self.request_id} in the log you may see (it may still be being "
                "written, or belong to another organization)."
            )
            return
        final = final_row(nodes)
        self.error = ""
        self.info = summary(final)
        self.refusal = refusal_view(final)
        self.attempts = [attempt_row(i, n) for i, n in enumerate(nodes, start=1)]
        self.request_body = body_text(final.get("requestBody"))
        self.response_body = body_text(final.get("responseBody"))
