"""Budget policy: reserve the worst case before the call, settle the real cost after.

The worst case is the most expensive candidate (a fallback may answer) for the request's input
estimate plus its ``max_tokens`` (or the configured default when the client names none). A model
without a known price reserves nothing: its cost is "unknown" and cannot count against a cap.
"""

from __future__ import annotations

from decimal import Decimal

from backend.budget.caps import applicable_caps
from backend.gateway import Gateway
from backend.ir.chat import ChatRequest
from backend.ir.estimate import TokenRates, estimate_tokens
from backend.policies.context import RequestContext

#: A reservation should not undershoot: images at the dearest provider's typical cost.
RESERVATION_RATES = TokenRates(per_message=0, per_image=1600)


def estimate_input_tokens(req: ChatRequest) -> int:
    return estimate_tokens(req, RESERVATION_RATES)


def worst_case(gw: Gateway, req: ChatRequest, candidates: list[str]) -> Decimal:
    est_in = estimate_input_tokens(req)
    max_out = req.max_tokens or gw.settings.default_reserve_output_tokens
    worst = Decimal(0)
    for model in candidates:
        w = gw.router.prices.worst_case(model, est_in, max_out)
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


async def settle(ctx: RequestContext, gw: Gateway) -> None:
    """Price the usage (0 for cache hits, None when unknown) and settle the reservation once."""
    if ctx.cache_hit:
        ctx.cost = Decimal(0)
    elif ctx.actual_model is not None:
        ctx.cost = gw.router.prices.cost(ctx.actual_model, ctx.usage)
    reservation, ctx.reservation = ctx.reservation, None
    if reservation is not None:
        await gw.budget.settle(reservation, ctx.cost)


async def release(ctx: RequestContext, gw: Gateway) -> None:
    reservation, ctx.reservation = ctx.reservation, None
    if reservation is not None:
        await gw.budget.release(reservation)
