"""The Budget contract shared by the in-process and the Redis implementation.

Money is counted in integer units of 10^-8 USD (the scale of every money column), so both
implementations add exactly the same numbers and Redis can use INCRBY instead of float arithmetic.

A request's life with a budget::

    ticket = await budget.acquire_rate(principal, tokens, now)  # RateLimited (429, Retry-After)
    res = await budget.reserve(principal, worst_case, now)  # QuotaExceeded (429)
    try:
        ... call the provider ...
    except BaseException:
        await budget.release(res)
        raise
    await budget.settle(res, actual_cost_or_None)
    budget.settle_rate(ticket, actual_tokens)

``settle`` and ``release`` are idempotent and never raise for store trouble; whichever comes first
wins. A reservation never settled nor released stops counting after ``reservation_ttl_s``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol, runtime_checkable

from backend.budget.caps import Cap, Scope
from backend.budget.ratelimit import RateTicket
from backend.ir.errors import GatewayError, QuotaExceeded
from backend.state.snapshot import Principal

UNITS_PER_USD = 10**8
_ONE_UNIT = Decimal(1).scaleb(-8)
#: Default time after which an unsettled reservation no longer counts (a crashed or buggy caller).
DEFAULT_RESERVATION_TTL_S = 1800.0


def to_units(amount: Decimal) -> int:
    """Dollars -> integer units of 10^-8 USD (half-even, like the database column)."""
    return int(amount.quantize(_ONE_UNIT, rounding=ROUND_HALF_EVEN).scaleb(8))


def new_reservation_id() -> str:
    # 128 random bits from the process PRNG (seeded from the OS): ids need to be unique, not
    # secret, and a UUID object or a system call per request showed in profiles.
    return f"{random.getrandbits(128):032x}"


def from_units(units: int) -> Decimal:
    return Decimal(units).scaleb(-8).quantize(_ONE_UNIT)


@dataclass(frozen=True, slots=True)
class Hold:
    """One cap counter a reservation sits in."""

    scope: Scope
    period_start: dt.datetime


@dataclass(eq=False, slots=True)
class Reservation:
    """Money set aside for one request; carries everything settle/release need.

    ``state`` goes ``open`` -> ``settled`` | ``released`` exactly once; the shared
    ``NO_RESERVATION`` (uncapped callers) stays ``noop`` forever.
    """

    id: str
    units: int
    holds: tuple[Hold, ...]
    #: Unix time after which the store drops the hold if it was never settled.
    expires_at: float = 0.0
    state: str = "open"
    #: Set by ``settle(res, None)``: the price was unknown, so nothing was charged.
    unpriced: bool = False
    settled_units: int | None = None

    @property
    def amount(self) -> Decimal:
        return from_units(self.units)

    @property
    def is_noop(self) -> bool:
        return not self.holds


NO_RESERVATION = Reservation(id="", units=0, holds=(), state="noop")


class BudgetUnavailable(GatewayError):
    """The shared budget store (Redis) cannot be reached, so a capped request cannot be checked.

    Refusing is the safe side: letting capped traffic through unchecked is exactly the leak caps
    exist to prevent. Not retryable by the fallback policy (another model would not help).
    """

    status = 503
    kind = "unavailable"
    retryable = False


def budget_unavailable(reason: str) -> BudgetUnavailable:
    return BudgetUnavailable(
        f"budget store unavailable ({reason}); capped requests are refused until it is back",
        code="budget_store_unavailable",
        headers={"Retry-After": "5"},
    )


def quota_error(
    cap: Cap, *, limit_units: int, used_units: int, amount_units: int, resets_at: dt.datetime
) -> QuotaExceeded:
    """The refusal naming the cap, what is used of it, and when it resets."""
    limit = from_units(limit_units)
    base = cap.amount
    rolled = f"; ${limit:.2f} this period with rollover" if cap.rollover and limit != base else ""
    when = resets_at.isoformat()
    message = (
        f"Spend cap reached: the {cap.describe()} does not allow this request "
        f"(${from_units(used_units):.2f} of ${limit:.2f} spent or reserved this period, "
        f"request needs up to ${from_units(amount_units):.2f}{rolled}). It resets at {when}."
    )
    return QuotaExceeded(
        message,
        code="insufficient_quota",
        # A cap does not free up in seconds; tell the OpenAI/Anthropic SDKs not to retry.
        headers={"x-should-retry": "false"},
        detail={
            "cap": f"{cap.scope[0]}_{cap.period}",
            "scope": cap.scope[0],
            "scope_id": cap.scope[1],
            "limit_usd": str(limit),
            "used_usd": str(from_units(used_units)),
            "resets_at": when,
        },
    )


def check_amount(amount: Decimal | None, what: str) -> int:
    if amount is None:
        return 0
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{what} must be a finite amount >= 0, got {amount!r}")
    return to_units(amount)


@runtime_checkable
class Budget(Protocol):
    async def reserve(self, principal: Principal, amount: Decimal, now: dt.datetime) -> Reservation:
        """Set ``amount`` aside under every applicable cap, or raise ``QuotaExceeded``."""
        ...

    async def settle(self, reservation: Reservation, actual: Decimal | None) -> None:
        """Replace the reservation by the actual cost (``None``: unknown price, charge 0)."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Give the reservation back (the request failed)."""
        ...

    async def acquire_rate(self, principal: Principal, tokens: int, now: dt.datetime) -> RateTicket:
        """Admit one request reserving ``tokens`` under every rpm/tpm limit of ``principal``,
        or raise ``RateLimited`` (``backend.budget.ratelimit``)."""
        ...

    def settle_rate(self, ticket: RateTicket, tokens: int) -> None:
        """Replace the ticket's reserved tokens by the real count (once; never raises)."""
        ...

    async def spent(self, scope: Scope, period_start: dt.datetime) -> Decimal:
        """Settled spend of a cap counter (reservations excluded)."""
        ...

    async def load(self) -> None:
        """Seed counters from ``SpendCounter`` rows (startup)."""
        ...

    async def flush(self) -> None:
        """Persist changed counters to ``SpendCounter``."""
        ...
