"""DLP policy: which requests are protected, redaction before the call, restoration after.

Protection is on per organization (for its users' keys) or per app (for the app's key). The
rules come from the scope's ``DlpPolicy`` row; a scope with DLP on and no row uses every built-in
rule. Activity rows (kind, scope, rule, matches, size, request id) never hold a value.

Scans run through the gateway's ``ScanRunner`` (``backend.dlp.runner``): inline when small, in
a bounded pool of scan processes when large (a thread for small scans with custom rules),
always under a time bound that refuses the request with 503 ``dlp_timeout`` when it is exceeded
(fail closed).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any

from backend.dlp.redact import (
    DlpFailure,
    DlpTimeout,
    Redactor,
    RedactorCache,
    request_text_size,
)
from backend.dlp.restore import StreamRestorer, restore_response
from backend.dlp.rules import DlpPolicy, InvalidRule, check_custom_rule
from backend.dlp.runner import ScanRunner
from backend.dlp.vault import Finding, Vault
from backend.gateway import Gateway
from backend.ir.chat import ChatRequest, ChatResponse, EmbeddingRequest
from backend.ir.stream import StreamEnd, StreamError, StreamEvent
from backend.policies.context import RequestContext
from backend.state.snapshot import Principal
from backend.state.store import ConfigStore

log = logging.getLogger("switchboard.dlp")


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    label: str  # "org:acme" / "app:billing"
    org_id: int | None
    app_id: int | None


class DlpPolicies:
    """Compiled redactors per protected scope, rebuilt when policies or tenancy change."""

    def __init__(self, store: ConfigStore, scans: ScanRunner) -> None:
        self._store = store
        self._cache = RedactorCache()
        self.scans = scans

    async def refresh(self) -> None:
        self._cache.clear()

    def for_principal(self, principal: Principal) -> tuple[Scope, Redactor] | None:
        """The protected scope of ``principal`` and its compiled policy, None when DLP is off.

        Raises ``PolicyUnusable`` when the stored policy does not compile (a custom regex that
        was valid once, a rule id that no longer exists): the request must be refused.
        """
        found = self._policy(principal)
        if found is None:
            return None
        scope, policy = found
        try:
            return scope, self._cache.get(policy)
        except InvalidRule as exc:
            raise PolicyUnusable(scope, policy, exc) from None

    def _policy(self, principal: Principal) -> tuple[Scope, DlpPolicy] | None:
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
        return scope, policy


class PolicyUnusable(DlpFailure):
    """The scope's stored policy cannot be compiled, so nothing can be scanned (fail closed)."""

    def __init__(self, scope: Scope, policy: DlpPolicy, cause: InvalidRule) -> None:
        super().__init__(_unusable_rule(policy))
        self.scope = scope
        # For the operator's log; names the rule and the regex error, never request text.
        self.reason = str(cause)


def _unusable_rule(policy: DlpPolicy) -> str:
    for rule in policy.custom_rules:
        try:
            check_custom_rule(rule.name, rule.pattern)
        except InvalidRule:
            return rule.rule_id
    return "policy"


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
    return request_text_size(req)


def _block(ctx: RequestContext, scope: Scope, rule: str, size: int, why: str) -> None:
    ctx.dlp_activity.append(
        {
            "created_at": ctx.created_at,
            "kind": "block",
            "scope": scope.label,
            "org_id": scope.org_id,
            "app_id": scope.app_id,
            "rule": rule,
            "matches": 0,
            "size": size,
            "request_id": ctx.request_id,
            "detail": f"request refused: {why} (fail closed)",
        }
    )


def _protection(
    ctx: RequestContext, gw: Gateway, size: Callable[[], int]
) -> tuple[Scope, Redactor] | None:
    """The request's scope and redactor; a policy that cannot compile refuses the request."""
    assert ctx.principal is not None
    try:
        return gw.dlp.for_principal(ctx.principal)
    except PolicyUnusable as exc:
        log.warning("DLP policy of %s cannot be used: %s", exc.scope.label, exc.reason)
        _block(ctx, exc.scope, exc.rule, size(), "the DLP policy cannot be used")
        raise


async def redact(ctx: RequestContext, gw: Gateway, req: ChatRequest) -> ChatRequest:
    found = _protection(ctx, gw, lambda: _request_size(req))
    if found is None:
        return req
    scope, redactor = found
    size = _request_size(req)

    try:
        redacted, vault, findings = await gw.dlp.scans.redact(redactor, req, size)
    except DlpTimeout:
        _block(ctx, scope, "*", size, "the DLP scan did not finish in time")
        raise
    except Exception as exc:
        rule = exc.rule if isinstance(exc, DlpFailure) else "*"
        _block(ctx, scope, rule, size, "a detector failed")
        raise
    ctx.vault = (scope, vault)
    _activity(ctx, scope, "redact", findings, size)
    return redacted


async def redact_embedding(
    ctx: RequestContext, gw: Gateway, req: EmbeddingRequest
) -> EmbeddingRequest:
    size = sum(len(t) for t in req.input if isinstance(t, str))
    found = _protection(ctx, gw, lambda: size)
    if found is None:
        return req
    scope, redactor = found

    try:
        redacted, _vault, findings = await gw.dlp.scans.redact(redactor, req, size)
    except DlpTimeout:
        _block(ctx, scope, "*", size, "the DLP scan did not finish in time")
        raise
    except DlpFailure as exc:
        _block(ctx, scope, exc.rule, size, "a detector failed")
        raise
    _activity(ctx, scope, "redact", findings, size)
    return redacted


async def redact_note(principal: Principal, gw: Gateway, text: str) -> str:
    """A free text the gateway stores for a caller (a client error report), redacted by the
    caller's policy. Placeholders are not restored: nothing answers it. Fails closed."""
    try:
        found = gw.dlp.for_principal(principal)
    except PolicyUnusable as exc:
        log.warning("DLP policy of %s cannot be used: %s", exc.scope.label, exc.reason)
        raise
    if found is None or not text:
        return text
    redactor = found[1]

    redacted, _vault, _findings = await gw.dlp.scans.redact(redactor, text, len(text))
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
