"""Which caps apply to a principal, their names, and the rollover rule (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from budget_helpers import app_principal, org, usd, user_principal

from backend.budget.caps import Cap, applicable_caps, limit_for, rollover_limit


def test_user_key_gets_user_weekly_cap_then_org_cap() -> None:
    acme = org(7, "100", "monthly", rollover=True)
    caps = applicable_caps(user_principal(3, cap="5", org_info=acme))
    assert [(c.scope, c.period, c.amount, c.rollover) for c in caps] == [
        (("user", 3), "weekly", usd(5), False),
        (("org", 7), "monthly", usd(100), True),
    ]
    assert caps[0].describe() == "weekly cap of user alice@x ($5.00)"
    assert caps[1].describe() == "organization acme monthly API spend cap ($100.00)"


def test_which_caps_apply() -> None:
    weekly_org = org(8, "20", "weekly")
    assert [c.scope for c in applicable_caps(user_principal(3, org_info=weekly_org))] == [
        ("org", 8)
    ]
    assert applicable_caps(user_principal(3, org_info=weekly_org))[0].period == "weekly"
    assert [c.scope for c in applicable_caps(user_principal(3, cap="1"))] == [("user", 3)]
    assert [c.scope for c in applicable_caps(app_principal(4, weekly_org))] == [("org", 8)]
    assert applicable_caps(app_principal(4, None)) == ()
    assert applicable_caps(user_principal(3, org_info=org(9, None))) == ()
    # A zero cap is a cap (refuses everything that costs), not "no cap".
    assert [c.amount for c in applicable_caps(user_principal(3, cap="0"))] == [usd(0)]


def test_caps_follow_the_principal_passed_in() -> None:
    # No caching: the same ids with new values give new caps at once.
    before = applicable_caps(user_principal(3, cap="5", org_info=org(7, "100")))
    after = applicable_caps(user_principal(3, cap="8", org_info=org(7, "50", "weekly")))
    assert [c.amount for c in before] == [usd(5), usd(100)]
    assert [(c.amount, c.period) for c in after] == [(usd(8), "weekly"), (usd(50), "weekly")]


@pytest.mark.parametrize(
    ("cap", "previous", "limit"),
    [
        ("10", "4", "16"),  # $6 unused carries over
        ("10", "0", "20"),  # at most one period's cap
        ("10", "10", "10"),
        ("10", "12", "10"),  # overspending does not shrink the next period
        ("10", "9.99999999", "10.00000001"),
        ("0", "0", "0"),
    ],
)
def test_rollover_limit(cap: str, previous: str, limit: str) -> None:
    assert rollover_limit(usd(cap), usd(previous)) == usd(limit)
    units = 10**8
    assert rollover_limit(int(usd(cap) * units), int(usd(previous) * units)) == int(
        usd(limit) * units
    )


def test_limit_for_rollover_on_and_off() -> None:
    on = Cap(("org", 1), "weekly", usd(10), True, "acme")
    off = Cap(("org", 1), "weekly", usd(10), False, "acme")
    assert limit_for(on, usd(4)) == usd(16)
    assert limit_for(off, usd(4)) == usd(10)
    assert limit_for(Cap(("org", 1), "weekly", Decimal(-1), False, "acme"), usd(0)) == 0
