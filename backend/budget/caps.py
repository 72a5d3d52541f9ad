"""Which spend caps apply to a caller, and how large each one is this period.

Caps come from the ``Principal`` of the request (built from the hot config snapshot) on every call
and are never cached, so an admin's change applies from the next request on.

- **User weekly cap** — scope ``("user", user_id)``, ISO week in UTC — for a *user key* whose user
  has ``weekly_cap_usd`` set.
- **Organization cap** — scope ``("org", org_id)``, the org's ``cap_period`` (``daily``,
  ``weekly`` or ``monthly``; anything else counts as monthly) — for user keys (through the user's
  organization) and app keys (through the app's organization), i.e. ``principal.org``, which the
  authentication step resolves from ``user.org_id`` / ``app.org_id``.
- **App cap** — scope ``("app", app_id)``, the app's own ``cap_period`` — for the app's keys.
- **Key cap** — scope ``("key", key.counter_id)``, the key's own ``cap_period`` — for that key and
  the keys of its rotation chain (``counter_id`` is the chain's first key's id), so rotating a
  key continues its counter instead of starting a new one.

A request must fit in every one of them, so the tightest applies.

``None`` means "no cap"; a cap of ``0`` refuses every request that costs anything.

Rollover (organization caps with ``rollover`` on; user caps never roll over): the limit of the
current period is ::

    limit = cap + min(cap, max(0, cap - spent_in_previous_period))

so the unused part of the previous period carries into the current one, never more than one
period's cap (the limit is at most ``2 * cap``) and never less than nothing (overspending a period
does not shrink the next). The carry is measured against the plain cap, not against the previous
period's rolled-over limit, so it does not compound from period to period. The previous period's
spend is read from the same counters the budget keeps (and persists), under today's cap value.
Example: cap $10, $4 spent last week -> $16 this week; $0 spent -> $20; $12 spent -> $10.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from backend.budget.periods import PeriodKind, period_kind
from backend.state.snapshot import Principal

Scope = tuple[str, int]
N = TypeVar("N", int, Decimal)


@dataclass(frozen=True, slots=True)
class Cap:
    scope: Scope
    period: PeriodKind
    amount: Decimal
    rollover: bool
    #: The user's email or the organization's name, for the refusal message.
    owner: str

    def describe(self) -> str:
        """Human name of the cap: ``weekly cap of user alice@x ($5.00)``."""
        kind = self.scope[0]
        if kind == "user":
            return f"weekly cap of user {self.owner} (${self.amount:.2f})"
        if kind == "key":
            return f"{self.period} spend cap of key {self.owner} (${self.amount:.2f})"
        if kind == "app":
            return f"{self.period} spend cap of app {self.owner} (${self.amount:.2f})"
        return f"organization {self.owner} {self.period} API spend cap (${self.amount:.2f})"


def applicable_caps(principal: Principal) -> tuple[Cap, ...]:
    """The caps a request by ``principal`` must fit in (key, app, user, organization); empty
    when uncapped."""
    caps: list[Cap] = []
    key = principal.key
    if key.limits.spend_cap_usd is not None:
        period = period_kind(key.limits.cap_period)
        caps.append(
            Cap(("key", key.counter_id), period, key.limits.spend_cap_usd, False, key.prefix)
        )
    app = principal.app
    if principal.key.app_id is not None and app is not None:
        if app.limits.spend_cap_usd is not None:
            period = period_kind(app.limits.cap_period)
            caps.append(Cap(("app", app.id), period, app.limits.spend_cap_usd, False, app.slug))
    user = principal.user
    if principal.key.user_id is not None and user is not None and user.weekly_cap_usd is not None:
        caps.append(Cap(("user", user.id), "weekly", user.weekly_cap_usd, False, user.email))
    org = principal.org
    if org is not None and org.spend_cap_usd is not None:
        caps.append(
            Cap(
                ("org", org.id),
                period_kind(org.cap_period),
                org.spend_cap_usd,
                org.rollover,
                org.name,
            )
        )
    return tuple(caps)


def rollover_limit(cap: N, previous_spent: N) -> N:
    """``cap + min(cap, max(0, cap - previous_spent))``; works on Decimal dollars or int units."""
    zero = cap - cap
    if cap <= zero:
        return zero
    return cap + min(cap, max(zero, cap - previous_spent))


def limit_for(cap: Cap, previous_spent: Decimal) -> Decimal:
    """The effective limit of ``cap`` this period, given the previous period's spend."""
    if cap.rollover:
        return rollover_limit(cap.amount, previous_spent)
    return max(cap.amount, Decimal(0))
