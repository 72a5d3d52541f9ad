"""From the model a client asked for to the ordered list of models that may answer it.

    requested ──agent tier──► model ──aliases──► primary ──chain──► [primary, fallback...]

Agent tiers. ``agent/<agent_id>`` selects the agent's ``normal`` model; ``agent/<agent_id>:heavy``
(or ``:max``/``:normal``) another tier. The pipeline may also pass a tier it read from the
``x-switchboard-tier`` header; a tier suffix in the model name wins over the header. A tier the
agent has no model for falls back to ``normal`` (``Resolution.effective_tier`` says so). An
unknown agent is ``NotFound``; an unknown tier name ``InvalidRequest``. A tier sent with a plain
model name is ignored (``Resolution.tier`` is ``None``).

Aliases. At each step the caller's organisation's alias (user keys through the user's
organisation, app keys through the app's: ``Principal.org``) beats a global alias of the same
name. Aliases may point at aliases; following stops at the first name seen twice (a cycle in the
configuration never loops) and after ``MAX_ALIAS_HOPS``.

Chains. ``RoutingConfig.chains`` is looked up by the primary as written, then by its canonical
``provider/model`` key, then by its bare model id if that bare name means the same model. Chain
entries go through the same alias rules; an entry that does not name a servable model is dropped
(a bad chain entry must not break the primary), duplicates too.

Every candidate is canonical ``provider/model`` (see ``backend.routing.refs``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from backend.ir.errors import GatewayError, InvalidRequest, NotFound
from backend.routing.refs import BUILTIN_PROVIDERS, ModelRef, parse_model_ref
from backend.state.snapshot import AgentInfo, Principal, RoutingConfig

log = logging.getLogger("switchboard.routing")

AGENT_PREFIX = "agent/"
TIERS: tuple[str, ...] = ("normal", "heavy", "max")
DEFAULT_TIER = "normal"
MAX_ALIAS_HOPS = 8


@dataclass(frozen=True, slots=True)
class Resolution:
    #: What the client sent, verbatim.
    requested: str
    #: The agent named by ``agent/<id>``, else ``None``.
    agent_id: str | None
    #: The tier asked for (suffix, header or the default ``normal``); ``None`` without an agent.
    tier: str | None
    #: Canonical ``provider/model`` of the first choice (before the strategy reorders).
    primary: str
    #: ``[primary, *fallback chain]``, canonical and deduplicated, in configured order.
    candidates: list[str]
    #: The tier whose model was used (``normal`` when the asked tier has none).
    effective_tier: str | None = None
    #: The names aliases rewrote, in order (``[]`` when no alias applied).
    alias_path: tuple[str, ...] = ()


def split_agent(requested: str, tier: str | None) -> tuple[str, str] | None:
    """``(agent_id, tier)`` for an ``agent/...`` model name, else ``None``."""
    if not requested.startswith(AGENT_PREFIX):
        return None
    rest = requested[len(AGENT_PREFIX) :].strip()
    agent_id, sep, suffix = rest.rpartition(":")
    if not sep:
        agent_id, suffix = rest, ""
    chosen = (suffix or tier or DEFAULT_TIER).strip().lower()
    if chosen not in TIERS:
        source = "model suffix" if suffix else "x-switchboard-tier header"
        raise InvalidRequest(
            f"unknown agent tier {chosen!r} in the {source}; use one of {', '.join(TIERS)}",
            code="invalid_tier",
            param="model" if suffix else None,
        )
    if not agent_id:
        raise NotFound(
            f"model {requested!r} names no agent; use agent/<agent_id>[:normal|heavy|max]",
            code="agent_not_found",
            param="model",
        )
    return agent_id, chosen


def agent_model(agent: AgentInfo, tier: str) -> tuple[str, str]:
    """The agent's model for ``tier`` and the tier actually used."""
    model = {"normal": agent.normal_model, "heavy": agent.heavy_model, "max": agent.max_model}[tier]
    if model:
        return model, tier
    return agent.normal_model, DEFAULT_TIER


def apply_aliases(
    name: str, principal: Principal | None, routing: RoutingConfig
) -> tuple[str, tuple[str, ...]]:
    """Follow aliases from ``name``; returns the final name and the names that were rewritten."""
    org_id = principal.org_id if principal is not None else None
    org = routing.org_aliases.get(org_id, {}) if org_id is not None else {}
    seen = [name]
    current = name
    for _ in range(MAX_ALIAS_HOPS):
        target = org.get(current)
        if target is None:
            target = routing.global_aliases.get(current)
        if target is None or target == current:
            break
        if target in seen:
            log.warning("alias cycle %s -> %s; stopping at %s", " -> ".join(seen), target, current)
            break
        seen.append(target)
        current = target
    return current, tuple(seen[:-1])


def resolve(
    requested: str,
    principal: Principal | None,
    routing: RoutingConfig,
    tier: str | None = None,
    *,
    providers: Collection[str] = BUILTIN_PROVIDERS,
    ollama_models: Collection[str] = (),
) -> Resolution:
    """Resolve a requested model name; raises ``NotFound``/``InvalidRequest`` (never retryable).

    ``providers``: provider names accepted as ``<provider>/`` prefixes (custom ones included);
    ``ollama_models``: the normalised names discovered on Ollama (for bare names).
    """
    agent_id: str | None = None
    asked_tier: str | None = None
    effective_tier: str | None = None
    name = requested.strip()
    agent_part = split_agent(name, tier)
    if agent_part is not None:
        agent_id, asked_tier = agent_part
        agent = routing.agents.get(agent_id)
        if agent is None:
            known = ", ".join(sorted(routing.agents)) or "none configured"
            raise NotFound(
                f"unknown agent {agent_id!r} (agents: {known})",
                code="agent_not_found",
                param="model",
            )
        name, effective_tier = agent_model(agent, asked_tier)

    target, alias_path = apply_aliases(name, principal, routing)
    ref = parse_model_ref(target, providers=providers, ollama_models=ollama_models)
    primary = ref.key

    chain = _chain_for(routing, target, ref, providers, ollama_models)
    candidates = [primary]
    for entry in chain:
        entry_target, _ = apply_aliases(entry, principal, routing)
        try:
            key = parse_model_ref(
                entry_target, providers=providers, ollama_models=ollama_models
            ).key
        except GatewayError:
            log.warning(
                "fallback chain of %s names an unservable model %r; skipped", primary, entry
            )
            continue
        if key not in candidates:
            candidates.append(key)
    return Resolution(
        requested=requested,
        agent_id=agent_id,
        tier=asked_tier,
        primary=primary,
        candidates=candidates,
        effective_tier=effective_tier,
        alias_path=alias_path,
    )


def _chain_for(
    routing: RoutingConfig,
    target: str,
    ref: ModelRef,
    providers: Collection[str],
    ollama_models: Collection[str],
) -> tuple[str, ...]:
    for key in (target, ref.key):
        if key in routing.chains:
            return routing.chains[key]
    if ref.model in routing.chains:
        try:
            same = (
                parse_model_ref(ref.model, providers=providers, ollama_models=ollama_models) == ref
            )
        except GatewayError:
            same = False
        if same:
            return routing.chains[ref.model]
    return ()
