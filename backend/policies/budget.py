"""Budget policy: reserve the worst case before the call, settle the real cost after.

The worst case is the most expensive candidate (a fallback may answer) for the request's input
estimate plus its output limit plus the web searches its server tools may run. A capped
caller's request always carries both limits upstream: when the client names no ``max_tokens``,
the reserved one (``default_reserve_output_tokens``) is sent, and an Anthropic web search tool
without ``max_uses`` is sent with the reserved number of searches
(``default_reserve_web_searches``), so no answer can cost more than was reserved.

A model without a known price cannot be counted against a cap. For a capped caller it is
refused, naming the model (or, when it is only a fallback, skipped), unless the operator set
``unpriced_model_price``: then such models are reserved and billed at that price. Callers
without a cap are unaffected (their unpriced rows log cost "unknown").
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from typing import TypeGuard

from backend.budget.caps import Cap, applicable_caps
from backend.budget.ratelimit import has_token_limit
from backend.gateway import Gateway
from backend.ir.chat import ChatRequest, EmbeddingRequest, Opaque, Tool
from backend.ir.errors import PermissionDenied
from backend.ir.estimate import TokenRates, estimate_tokens
from backend.policies import limits as limits_policy
from backend.policies.context import RequestContext
from backend.pricing.book import ModelPricing
from backend.protocols.openai_chat.vocab import FLAGS_KEY

#: A reservation should not undershoot: images at the dearest provider's typical cost.
RESERVATION_RATES = TokenRates(per_message=0, per_image=1600)
CHARS_PER_TOKEN = RESERVATION_RATES.chars_per_token


def estimate_input_tokens(req: ChatRequest) -> int:
    return estimate_tokens(req, RESERVATION_RATES)


def output_limit(gw: Gateway, req: ChatRequest) -> int:
    """The output tokens a request may use: its own limit, else the reserved default."""
    if req.max_tokens is not None:
        return req.max_tokens
    default = gw.settings.default_reserve_output_tokens
    budget = (req.thinking or {}).get("budget_tokens")
    if isinstance(budget, int) and budget >= default:
        # Anthropic wants max_tokens above the thinking budget: leave the default for the answer.
        return budget + default
    return default


#: The ``type`` of Anthropic's web search server tools (``web_search_20250305``...): each
#: search is billed on top of the tokens, and ``max_uses`` bounds how many one request runs.
WEB_SEARCH_TOOL = "web_search_"


def _is_web_search(tool: Tool | Opaque) -> TypeGuard[Opaque]:
    return isinstance(tool, Opaque) and tool.kind.startswith(WEB_SEARCH_TOOL)


def _max_uses(tool: Opaque) -> int | None:
    uses = tool.data.get("max_uses")
    return uses if isinstance(uses, int) and not isinstance(uses, bool) and uses > 0 else None


def search_limit(gw: Gateway, req: ChatRequest) -> int:
    """The web searches a request may run: each search tool's ``max_uses``, else the reserved
    default (what ``bound_output`` sends for a capped caller)."""
    default = gw.settings.default_reserve_web_searches
    return sum(_max_uses(tool) or default for tool in req.tools if _is_web_search(tool))


def _unbounded_search(tool: Tool | Opaque) -> TypeGuard[Opaque]:
    # A ``max_uses`` that is there but invalid is the client's to fix: the provider refuses it.
    return _is_web_search(tool) and "max_uses" not in tool.data


def _bound_searches(gw: Gateway, req: ChatRequest) -> ChatRequest:
    if not any(_unbounded_search(t) for t in req.tools):
        return req
    default = gw.settings.default_reserve_web_searches
    tools: list[Tool | Opaque] = [
        Opaque(t.protocol, {**t.data, "max_uses": default}) if _unbounded_search(t) else t
        for t in req.tools
    ]
    return dataclasses.replace(req, tools=tools)


def bound_output(ctx: RequestContext, gw: Gateway, req: ChatRequest) -> ChatRequest:
    """The request to send: a capped caller's (or one with a tokens-per-minute limit) gets the
    reserved output limit if it had none; a capped caller's web search tools without
    ``max_uses`` get the reserved number of searches."""
    assert ctx.principal is not None
    capped = bool(applicable_caps(ctx.principal))
    if capped and req.tools:
        req = _bound_searches(gw, req)
    if req.max_tokens is not None:
        return req
    if not capped and not has_token_limit(ctx.principal):
        return req
    extra = req.extra
    flags = extra.get(FLAGS_KEY)
    if isinstance(flags, dict):
        # From an OpenAI client: use OpenAI's current name for the limit (reasoning models
        # refuse ``max_tokens``).
        extra = {**extra, FLAGS_KEY: {**flags, "max_tokens_field": "max_completion_tokens"}}
    return dataclasses.replace(req, max_tokens=output_limit(gw, req), extra=extra)


def unpriced_default(gw: Gateway) -> ModelPricing | None:
    """The operator's price for models without one (``SWITCHBOARD_UNPRICED_MODEL_PRICE``)."""
    configured = gw.settings.unpriced_model_price
    if configured is None:
        return None
    return ModelPricing(configured[0], configured[1], None, None, "unpriced-default")


def billable(ctx: RequestContext, gw: Gateway, candidates: list[str]) -> list[str]:
    """The candidates a capped caller may be served: those with a price (or the default one).

    Raises ``PermissionDenied`` naming the model when none has a price.
    """
    assert ctx.principal is not None
    caps = applicable_caps(ctx.principal)
    if not caps or gw.settings.unpriced_model_price is not None:
        return candidates
    prices = gw.router.prices
    priced = [m for m in candidates if prices.price(m) is not None]
    if not priced:
        raise unpriced_refusal(candidates[0], caps[0])
    return priced


def unpriced_refusal(model: str, cap: Cap) -> PermissionDenied:
    return PermissionDenied(
        f"Model '{model}' has no known price, so its cost cannot be counted against the "
        f"{cap.describe()}. Ask an administrator to set a price for it (Available Models), "
        "or use a model with a price.",
        code="unpriced_model",
        param="model",
        detail={"model": model},
    )


def worst_case(gw: Gateway, req: ChatRequest, candidates: list[str]) -> Decimal:
    est_in = estimate_input_tokens(req)
    max_out = output_limit(gw, req)
    searches = search_limit(gw, req) if req.tools else 0
    default = unpriced_default(gw)
    worst = Decimal(0)
    for model in candidates:
        w = gw.router.prices.worst_case(model, est_in, max_out, searches)
        if w is None and default is not None:
            w = default.linear_cost(est_in, max_out)
        if w is not None and w > worst:
            worst = w
    return worst


async def reserve(
    ctx: RequestContext, gw: Gateway, req: ChatRequest, candidates: list[str]
) -> None:
    assert ctx.principal is not None
    # Without a cap there is nothing to hold the worst case against: skip pricing it.
    amount = worst_case(gw, req, candidates) if applicable_caps(ctx.principal) else Decimal(0)
    ctx.reservation = await gw.budget.reserve(ctx.principal, amount, ctx.created_at)


def embedding_tokens(req: EmbeddingRequest) -> int:
    """The input tokens of an embedding request, estimated (token id lists counted exactly)."""
    return sum(
        math.ceil(len(item) / CHARS_PER_TOKEN) if isinstance(item, str) else len(item)
        for item in req.input
    )


def embedding_worst_case(gw: Gateway, req: EmbeddingRequest, model: str) -> Decimal:
    """Every input token at the model's input price (embeddings produce no output tokens)."""
    tokens = embedding_tokens(req)
    worst = gw.router.prices.worst_case(model, max(tokens, 1), 0)
    default = unpriced_default(gw)
    if worst is None and default is not None:
        worst = default.linear_cost(max(tokens, 1), 0)
    return worst or Decimal(0)


async def reserve_embedding(
    ctx: RequestContext, gw: Gateway, req: EmbeddingRequest, model: str
) -> None:
    """Embeddings count against caps like chat: refused unpriced, reserved, settled after."""
    assert ctx.principal is not None
    billable(ctx, gw, [model])
    amount = embedding_worst_case(gw, req, model) if applicable_caps(ctx.principal) else Decimal(0)
    ctx.reservation = await gw.budget.reserve(ctx.principal, amount, ctx.created_at)


async def settle(ctx: RequestContext, gw: Gateway) -> None:
    """Price the usage (0 for cache hits, None when unknown) and settle the reservation once
    (the rate-limit tokens too)."""
    limits_policy.settle(ctx, gw)
    reservation, ctx.reservation = ctx.reservation, None
    if ctx.cache_hit:
        ctx.cost = Decimal(0)
    elif ctx.actual_model is not None:
        ctx.cost = gw.router.prices.cost(ctx.actual_model, ctx.usage)
        ctx.price = gw.router.prices.price(ctx.actual_model)
        if ctx.cost is None and reservation is not None and not reservation.is_noop:
            # A capped caller served an unpriced model: only possible at the default price.
            default = unpriced_default(gw)
            if default is not None:
                ctx.price = default
                u = ctx.usage
                ctx.cost = default.linear_cost(
                    u.input_tokens, u.output_tokens, u.cached_tokens, u.cache_write_tokens
                )
    if reservation is not None:
        await gw.budget.settle(reservation, ctx.cost)


async def release(ctx: RequestContext, gw: Gateway) -> None:
    """Give the reservation back; rate-limit tokens settle to what was used (usually 0)."""
    limits_policy.settle(ctx, gw)
    reservation, ctx.reservation = ctx.reservation, None
    if reservation is not None:
        await gw.budget.release(reservation)
