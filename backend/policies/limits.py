"""Limits policy: model allowlists, then requests- and tokens-per-minute admission.

Allowlists. An organization, user, app or key may list the models or aliases it may use (glob
patterns, case-insensitive: ``gpt-4o*``, ``openai/*``, ``agent/reviewer``, an alias name). Every
list that applies to a request must allow it, so the tightest applies. A candidate model is
allowed by a list when a pattern matches its ``provider/model`` name or its bare model id; the
primary is also allowed when a pattern matches the name the client asked for or a name an alias
rewrote on the way (an allowed alias allows what it points at). Fallbacks are kept only when a
list allows them themselves; when no candidate is left the request is refused with 403 naming
the model, the level and what it may use.

Rate limits (``backend.budget.ratelimit``). A request reserves one request and its worst-case
tokens (estimated input plus the output limit, the same estimate caps reserve) in every limit
that applies; the reservation is settled to the real input plus output tokens when the request
ends (0 for a response-cache hit, which costs the provider nothing), in whatever way it ends.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from backend.budget.ratelimit import applicable_limits
from backend.gateway import Gateway
from backend.ir.chat import ChatRequest
from backend.ir.errors import PermissionDenied
from backend.policies.context import RequestContext
from backend.routing.resolve import Resolution
from backend.state.snapshot import Principal

#: Patterns named in a refusal, at most.
_SHOWN = 10


def allowlists(principal: Principal) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(level, owner, patterns)`` of every allowlist that applies, key first."""
    out: list[tuple[str, str, tuple[str, ...]]] = []
    key, user, app, org = principal.key, principal.user, principal.app, principal.org
    if key.limits.allowed_models is not None:
        out.append(("key", key.prefix, key.limits.allowed_models))
    if key.user_id is not None and user is not None and user.limits.allowed_models is not None:
        out.append(("user", user.email, user.limits.allowed_models))
    if key.app_id is not None and app is not None and app.limits.allowed_models is not None:
        out.append(("app", app.slug, app.limits.allowed_models))
    if org is not None and org.limits.allowed_models is not None:
        out.append(("organization", org.name, org.limits.allowed_models))
    return out


def matches(patterns: tuple[str, ...], name: str) -> bool:
    name = name.lower()
    return any(fnmatchcase(name, p.lower()) for p in patterns)


def _model_allowed(patterns: tuple[str, ...], candidate: str) -> bool:
    bare = candidate.partition("/")[2]
    return matches(patterns, candidate) or (bool(bare) and matches(patterns, bare))


def allowed_candidates(principal: Principal, resolution: Resolution) -> list[str]:
    """The resolution's candidates every applicable allowlist allows; 403 when none is left."""
    candidates = list(resolution.candidates)
    lists = allowlists(principal)
    if not lists:
        return candidates
    names = (resolution.requested, *resolution.alias_path)
    for level, owner, patterns in lists:
        named = any(matches(patterns, n) for n in names)
        kept = [
            c
            for c in candidates
            if (named and c == resolution.primary) or _model_allowed(patterns, c)
        ]
        if not kept:
            raise not_allowed(resolution.requested, resolution.primary, level, owner, patterns)
        candidates = kept
    return candidates


def allowed_primary(principal: Principal, resolution: Resolution) -> str:
    """The primary model, when every allowlist allows it (endpoints without fallback)."""
    allowed = allowed_candidates(principal, resolution)
    if resolution.primary in allowed:
        return resolution.primary
    level, owner, patterns = next(
        (lvl, own, pats)
        for lvl, own, pats in allowlists(principal)
        if not _model_allowed(pats, resolution.primary)
        and not any(matches(pats, n) for n in (resolution.requested, *resolution.alias_path))
    )
    raise not_allowed(resolution.requested, resolution.primary, level, owner, patterns)


def not_allowed(
    requested: str, resolved: str, level: str, owner: str, patterns: tuple[str, ...]
) -> PermissionDenied:
    shown = ", ".join(patterns[:_SHOWN]) + (", ..." if len(patterns) > _SHOWN else "")
    via = f" (resolved to '{resolved}')" if resolved != requested else ""
    allowed = f"it may use: {shown}" if patterns else "it may use no model"
    return PermissionDenied(
        f"Model '{requested}'{via} is not allowed for {level} {owner}; {allowed}.",
        code="model_not_allowed",
        param="model",
        detail={"model": requested, "level": level},
    )


async def admit(ctx: RequestContext, gw: Gateway, req: ChatRequest) -> None:
    """Reserve one request and the worst-case tokens in every rpm/tpm limit of the caller."""
    # Imported here: the budget policy settles through this module.
    from backend.policies.budget import estimate_input_tokens, output_limit

    assert ctx.principal is not None
    limits = applicable_limits(ctx.principal)
    if not limits:
        return
    tokens = 0
    if any(limit.metric == "tokens" for limit in limits):
        tokens = estimate_input_tokens(req) + output_limit(gw, req)
    await admit_tokens(ctx, gw, tokens)


async def admit_tokens(ctx: RequestContext, gw: Gateway, tokens: int) -> None:
    assert ctx.principal is not None
    ticket = await gw.budget.acquire_rate(ctx.principal, tokens, ctx.created_at)
    ctx.rate_ticket = ticket
    ctx.rate_headers = ticket.headers


def settle(ctx: RequestContext, gw: Gateway) -> None:
    """Settle the token reservation to what the request really used (once)."""
    ticket, ctx.rate_ticket = ctx.rate_ticket, None
    if ticket is not None:
        gw.budget.settle_rate(ticket, 0 if ctx.cache_hit else ctx.usage.total_tokens)
