"""DLP policy: which requests are protected, redaction before the call, restoration after.

Protection is on per organization (for its users' keys) or per app (for the app's key). The
rules come from the scope's ``DlpPolicy`` row; a scope with DLP on and no row uses every built-in
rule. Activity rows (kind, scope, rule, matches, size, request id) never hold a value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from backend.dlp.redact import Redactor, RedactorCache, redact_embeddings, redact_request
from backend.dlp.restore import StreamRestorer, restore_response
from backend.dlp.rules import DlpPolicy
from backend.dlp.vault import Finding, Vault
from backend.gateway import Gateway
from backend.ir.chat import ChatRequest, ChatResponse, EmbeddingRequest
from backend.ir.stream import StreamEnd, StreamError, StreamEvent
from backend.policies.context import RequestContext
from backend.state.snapshot import Principal
from backend.state.store import ConfigStore


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    label: str  # "org:acme" / "app:billing"
    org_id: int | None
    app_id: int | None


class DlpPolicies:
    """Compiled redactors per protected scope, rebuilt when policies or tenancy change."""

    def __init__(self, store: ConfigStore) -> None:
        self._store = store
        self._cache = RedactorCache()

    async def refresh(self) -> None:
        self._cache.clear()

    def for_principal(self, principal: Principal) -> tuple[Scope, Redactor] | None:
        if principal.app is not None:
            if not principal.app.dlp_enabled:
                return None
            row = self._store.dlp.get(("app", principal.app.id))
            scope = Scope(f"app:{principal.app.slug}", principal.app.org_id, principal.app.id)
        else:
            org = principal.org
            if org is None or not org.dlp_enabled:
                return None
            row = self._store.dlp.get(("org", org.id))
            scope = Scope(f"org:{org.slug}", org.id, None)
        policy = DlpPolicy() if row is None else DlpPolicy(row.rules, row.custom_rules)
        return scope, self._cache.get(policy)


_VERBS = {"redact": "replaced by placeholders", "restore": "restored in the answer"}


def _activity(
    ctx: RequestContext, scope: Scope, kind: str, findings: Iterable[Finding], size: int
) -> None:
    for f in findings:
        if f.count:
            ctx.dlp_activity.append(
                {
                    "created_at": ctx.created_at,
                    "kind": kind,
                    "scope": scope.label,
                    "org_id": scope.org_id,
                    "app_id": scope.app_id,
                    "rule": f.rule,
                    "matches": f.count,
                    "size": size,
                    "request_id": ctx.request_id,
                    "detail": f"{f.count} value(s) {_VERBS[kind]}",
                }
            )


def _request_size(req: ChatRequest) -> int:
    size = sum(len(p.text) for p in req.system)
    for m in req.messages:
        for part in m.parts:
            size += len(getattr(part, "text", "") or getattr(part, "arguments", "") or "")
    return size


def redact(ctx: RequestContext, gw: Gateway, req: ChatRequest) -> ChatRequest:
    assert ctx.principal is not None
    found = gw.dlp.for_principal(ctx.principal)
    if found is None:
        return req
    scope, redactor = found
    try:
        redacted, vault, findings = redact_request(req, redactor)
    except Exception:
        ctx.dlp_activity.append(
            {
                "created_at": ctx.created_at,
                "kind": "block",
                "scope": scope.label,
                "org_id": scope.org_id,
                "app_id": scope.app_id,
                "rule": "*",
                "matches": 0,
                "size": _request_size(req),
                "request_id": ctx.request_id,
                "detail": "request refused: a detector failed (fail closed)",
            }
        )
        raise
    ctx.vault = (scope, vault)
    _activity(ctx, scope, "redact", findings, _request_size(req))
    return redacted


def redact_embedding(ctx: RequestContext, gw: Gateway, req: EmbeddingRequest) -> EmbeddingRequest:
    assert ctx.principal is not None
    found = gw.dlp.for_principal(ctx.principal)
    if found is None:
        return req
    scope, redactor = found
    redacted, _vault, findings = redact_embeddings(req, redactor)
    size = sum(len(t) for t in req.input if isinstance(t, str))
    _activity(ctx, scope, "redact", findings, size)
    return redacted


def _vault(ctx: RequestContext) -> tuple[Scope, Vault] | None:
    if ctx.vault is None or not ctx.vault[1]:
        return None
    return ctx.vault  # type: ignore[no-any-return]


def restore(ctx: RequestContext, resp: ChatResponse) -> ChatResponse:
    found = _vault(ctx)
    if found is None:
        return resp
    scope, vault = found
    restored = restore_response(resp, vault)
    _activity(ctx, scope, "restore", vault.restore_findings(), 0)
    return restored


def stream_restorer(ctx: RequestContext) -> Callable[[StreamEvent], list[StreamEvent]] | None:
    """A per-stream restoring filter, or None when there is nothing to restore (zero cost)."""
    found = _vault(ctx)
    if found is None:
        return None
    scope, vault = found
    restorer = StreamRestorer(vault)

    def feed(ev: StreamEvent) -> list[StreamEvent]:
        out: list[Any] = restorer.feed(ev)
        if isinstance(ev, (StreamEnd, StreamError)):
            _activity(ctx, scope, "restore", vault.restore_findings(), 0)
        return out

    return feed
