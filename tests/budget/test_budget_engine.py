"""Caps, reservations and rate limits, run against LocalBudget and RedisBudget (real Redis)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from budget_helpers import Budgets, Ids, app_principal, at, org, usd, user_principal

from backend.budget import NO_RESERVATION, Reservation
from backend.data.models.logs import SpendCounter
from backend.ir.errors import QuotaExceeded, RateLimited

WEEK1 = at(2025, 1, 8, 12)  # Wednesday; the ISO week runs 2025-01-06 .. 2025-01-13
WEEK2 = at(2025, 1, 13)  # the boundary itself: Monday 00:00 UTC
WEEK3 = at(2025, 1, 20, 9)


async def test_forty_concurrent_requests_against_a_cap_for_ten(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new(clock=lambda: WEEK1)
    acme = org(ids(), "10", name="acme")
    principal = app_principal(ids(), acme)

    async def request() -> Reservation | QuotaExceeded:
        try:
            reservation = await budget.reserve(principal, usd(1), WEEK1)
        except QuotaExceeded as exc:
            return exc
        await asyncio.sleep(0)  # the provider call: other requests run meanwhile
        await budget.settle(reservation, usd(1))
        return reservation

    results = await asyncio.gather(*(request() for _ in range(40)))
    admitted = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(admitted) == 10
    assert len(refused) == 30
    for err in refused:
        assert err.status == 429
        assert err.code == "insufficient_quota"
        assert "organization acme monthly API spend cap ($10.00)" in err.message
        assert "resets at 2025-02-01T00:00:00+00:00" in err.message
        assert err.detail["resets_at"] == "2025-02-01T00:00:00+00:00"
        assert err.headers["x-should-retry"] == "false"
    assert await budget.spent(("org", acme.id), at(2025, 1, 1)) == usd(10)


async def test_user_cap_message_names_the_user(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    principal = user_principal(ids(), cap="5", email="alice@x")
    await budget.reserve(principal, usd("4.5"), WEEK1)
    with pytest.raises(QuotaExceeded) as caught:
        await budget.reserve(principal, usd(1), WEEK1)
    message = caught.value.message
    assert "weekly cap of user alice@x ($5.00)" in message
    assert "$4.50 of $5.00" in message
    assert "resets at 2025-01-13T00:00:00+00:00" in message
    assert caught.value.detail["cap"] == "user_weekly"


async def test_all_caps_or_none(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    acme = org(ids(), "100", name="acme")
    alice = user_principal(ids(), cap="5", org_info=acme, email="alice@x")
    bob = user_principal(ids(), org_info=acme, email="bob@x")

    await budget.reserve(alice, usd(4), WEEK1)
    with pytest.raises(QuotaExceeded, match="weekly cap of user alice@x"):
        await budget.reserve(alice, usd(2), WEEK1)
    # The refused $2 left nothing in the org counter: exactly $96 is left there.
    bobs = await budget.reserve(bob, usd(96), WEEK1)
    with pytest.raises(QuotaExceeded, match="organization acme monthly"):
        await budget.reserve(bob, usd("0.01"), WEEK1)
    # Alice has $1 of her own cap left, but the org is full.
    with pytest.raises(QuotaExceeded, match="organization acme monthly"):
        await budget.reserve(alice, usd(1), WEEK1)
    await budget.release(bobs)
    # ...and that refusal left nothing in her user counter either.
    await budget.reserve(alice, usd(1), WEEK1)
    with pytest.raises(QuotaExceeded, match="weekly cap of user alice@x"):
        await budget.reserve(alice, usd("0.01"), WEEK1)


@pytest.mark.parametrize(
    ("rollover", "previous_spend", "limit"),
    [
        (True, "4", "16"),  # $6 unused in week 1 carries into week 2
        (False, "4", "10"),
        (True, "0", "20"),  # at most one period's cap carries over
        (True, "12", "10"),  # overspending week 1 does not shrink week 2
    ],
)
async def test_rollover_across_a_week_boundary(
    budgets: Budgets, ids: Ids, rollover: bool, previous_spend: str, limit: str
) -> None:
    budget = budgets.new()
    acme = org(ids(), "10", "weekly", rollover=rollover)
    principal = app_principal(ids(), acme)
    if previous_spend != "0":
        # Reserve the worst case, settle the real cost (which may be above the reservation).
        reservation = await budget.reserve(principal, usd(min(10, int(previous_spend))), WEEK1)
        await budget.settle(reservation, usd(previous_spend))
    assert await budget.spent(("org", acme.id), at(2025, 1, 6)) == usd(previous_spend)

    await budget.reserve(principal, usd(limit), WEEK2)
    with pytest.raises(QuotaExceeded) as caught:
        await budget.reserve(principal, usd("0.01"), WEEK2)
    message = caught.value.message
    assert "organization acme weekly API spend cap ($10.00)" in message
    assert f"of ${limit}.00" in message
    assert ("with rollover" in message) == (limit != "10")
    assert "resets at 2025-01-20T00:00:00+00:00" in message


async def test_rollover_does_not_compound(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    acme = org(ids(), "10", "weekly", rollover=True)
    principal = app_principal(ids(), acme)
    # Week 1: nothing spent. Week 2: the full $20 is used. Week 3: back to $10, not $10 + $20.
    await budget.settle(await budget.reserve(principal, usd(20), WEEK2), usd(20))
    await budget.reserve(principal, usd(10), WEEK3)
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), WEEK3)


async def test_monthly_rollover_across_the_year_boundary(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    acme = org(ids(), "100", "monthly", rollover=True)
    principal = app_principal(ids(), acme)
    await budget.settle(await budget.reserve(principal, usd(30), at(2025, 12, 31, 23)), usd(30))
    january = at(2026, 1, 1)
    await budget.reserve(principal, usd(170), january)
    with pytest.raises(QuotaExceeded, match=r"resets at 2026-02-01T00:00:00\+00:00"):
        await budget.reserve(principal, usd("0.01"), january)


async def test_settle_replaces_the_reservation(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    scope_org = org(ids(), "10")
    principal = app_principal(ids(), scope_org)
    scope = ("org", scope_org.id)
    month = at(2025, 1, 1)

    lower = await budget.reserve(principal, usd(5), WEEK1)
    await budget.settle(lower, usd(2))
    assert await budget.spent(scope, month) == usd(2)
    higher = await budget.reserve(principal, usd(1), WEEK1)
    await budget.settle(higher, usd(3))  # the real cost may exceed the estimate
    assert await budget.spent(scope, month) == usd(5)
    await budget.reserve(principal, usd(5), WEEK1)
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.00000001"), WEEK1)


async def test_release_frees_and_everything_happens_once(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    scope_org = org(ids(), "10")
    principal = app_principal(ids(), scope_org)
    scope = ("org", scope_org.id)
    month = at(2025, 1, 1)

    failed = await budget.reserve(principal, usd(10), WEEK1)
    await budget.release(failed)
    await budget.release(failed)
    await budget.settle(failed, usd(7))  # too late: released
    assert (failed.state, await budget.spent(scope, month)) == ("released", usd(0))

    done = await budget.reserve(principal, usd(10), WEEK1)
    await budget.settle(done, usd(2))
    await budget.settle(done, usd(2))
    await budget.release(done)
    assert (done.state, await budget.spent(scope, month)) == ("settled", usd(2))
    # Released twice and settled twice still freed exactly one reservation each.
    await budget.reserve(principal, usd(8), WEEK1)
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), WEEK1)


async def test_unknown_price_settles_zero_and_is_flagged(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    scope_org = org(ids(), "10")
    principal = app_principal(ids(), scope_org)
    reservation = await budget.reserve(principal, usd(10), WEEK1)
    await budget.settle(reservation, None)
    assert reservation.unpriced and reservation.settled_units == 0
    assert budget.unpriced_settlements == 1
    assert await budget.spent(("org", scope_org.id), at(2025, 1, 1)) == usd(0)
    await budget.reserve(principal, usd(10), WEEK1)


async def test_uncapped_principals_take_the_fast_path(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    for principal in (
        user_principal(ids()),
        app_principal(ids(), None),
        app_principal(ids(), org(ids(), None)),
    ):
        reservation = await budget.reserve(principal, usd(1_000_000), WEEK1)
        assert reservation is NO_RESERVATION
        await budget.settle(reservation, usd(5))
        await budget.release(reservation)
        assert reservation.state == "noop"
        assert (await budget.acquire_rate(principal, 100, WEEK1)).is_noop


async def test_amounts_must_be_non_negative(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    principal = app_principal(ids(), org(ids(), "10"))
    with pytest.raises(ValueError, match="amount"):
        await budget.reserve(principal, usd(-1), WEEK1)
    reservation = await budget.reserve(principal, usd(1), WEEK1)
    with pytest.raises(ValueError, match="actual cost"):
        await budget.settle(reservation, usd("-0.5"))
    assert reservation.state == "open"


async def test_a_forgotten_reservation_expires(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new(reservation_ttl_s=60)
    scope_org = org(ids(), "10")
    principal = app_principal(ids(), scope_org)
    forgotten = await budget.reserve(principal, usd(10), WEEK1)  # a caller that crashed
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), WEEK1 + dt.timedelta(seconds=59))
    later = await budget.reserve(principal, usd(10), WEEK1 + dt.timedelta(seconds=61))
    # A late settle of the expired hold still charges its cost, and frees nothing it no longer has.
    await budget.settle(forgotten, usd(3))
    assert await budget.spent(("org", scope_org.id), at(2025, 1, 1)) == usd(3)
    await budget.release(later)
    await budget.reserve(principal, usd(7), WEEK1 + dt.timedelta(seconds=62))
    with pytest.raises(QuotaExceeded):
        await budget.reserve(principal, usd("0.01"), WEEK1 + dt.timedelta(seconds=62))


async def test_caps_change_on_the_next_request(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    oid, aid = ids(), ids()
    await budget.settle(
        await budget.reserve(app_principal(aid, org(oid, "10")), usd(8), WEEK1), usd(8)
    )
    with pytest.raises(QuotaExceeded):
        await budget.reserve(app_principal(aid, org(oid, "10")), usd(5), WEEK1)
    # The admin raises the cap: the very next request sees it.
    await budget.reserve(app_principal(aid, org(oid, "13")), usd(5), WEEK1)
    # ...and lowers it below what is used: refused again.
    with pytest.raises(QuotaExceeded, match=r"\(\$12\.00\)"):
        await budget.reserve(app_principal(aid, org(oid, "12")), usd("0.01"), WEEK1)


async def test_flush_then_a_new_instance_loads_the_same_spend(budgets: Budgets, ids: Ids) -> None:
    clock = lambda: WEEK2  # noqa: E731
    first = budgets.new(clock=clock)
    acme = org(ids(), "10", "weekly", rollover=True)
    alice = user_principal(ids(), cap="50", org_info=acme)
    await first.settle(await first.reserve(alice, usd(4), WEEK1), usd("3.5"))
    await first.settle(await first.reserve(alice, usd(1), WEEK1), usd("0.5"))
    await first.flush()
    await first.flush()  # nothing new: a no-op
    rows = await SpendCounter.filter(scope_id__in=[acme.id, alice.user.id]).order_by("scope")  # type: ignore[union-attr]
    assert [(r.scope, r.period_start, r.spent_usd) for r in rows] == [
        ("org", at(2025, 1, 6), usd(4)),
        ("user", at(2025, 1, 6), usd(4)),
    ]

    await budgets.forget()  # a Redis restart: only the database remembers
    second = budgets.new(clock=clock)
    await second.load()
    assert await second.spent(("org", acme.id), at(2025, 1, 6)) == usd(4)
    assert await second.spent(("user", alice.user.id), at(2025, 1, 6)) == usd(4)  # type: ignore[union-attr]
    # Rollover reads the loaded previous week: $10 + $6.
    await second.reserve(alice, usd(16), WEEK2)
    with pytest.raises(QuotaExceeded, match="with rollover"):
        await second.reserve(alice, usd("0.01"), WEEK2)


async def test_load_reads_only_periods_a_cap_can_still_use(budgets: Budgets, ids: Ids) -> None:
    oid = ids()
    await SpendCounter.create(scope="org", scope_id=oid, period_start=at(2024, 6, 1), spent_usd=9)
    await SpendCounter.create(scope="org", scope_id=oid, period_start=at(2024, 12, 1), spent_usd=7)
    budget = budgets.new(clock=lambda: WEEK1)
    await budget.load()
    assert await budget.spent(("org", oid), at(2024, 12, 1)) == usd(7)
    assert await budget.spent(("org", oid), at(2024, 6, 1)) == usd(0)


async def test_rate_limit_zero_refuses(budgets: Budgets, ids: Ids) -> None:
    budget = budgets.new()
    with pytest.raises(RateLimited):
        await budget.acquire_rate(app_principal(ids(), None, rpm=0), 0, WEEK1)
