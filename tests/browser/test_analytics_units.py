"""Pure pieces of the analytics, range, confirmation and permission code (no browser needed)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from frontend_reflex import permissions
from frontend_reflex.state.analytics import chart_points, csv_text, rows_of, sort_rows, table_row
from frontend_reflex.state.entity import confirm_text
from frontend_reflex.state.ranges import describe, window

NOW = dt.datetime(2026, 3, 10, 12, 30, tzinfo=dt.UTC)


def group(key: str, requests: int, cost: str | None, p95: float | None = None) -> dict:
    return {
        "key": key,
        "label": key.upper(),
        "totals": {
            "requests": requests,
            "errors": 1,
            "errorRate": 1 / requests,
            "inputTokens": 10,
            "outputTokens": 5,
            "cachedTokens": 0,
            "costUsd": cost or "0",
            "unknownCostRequests": 0 if cost else requests,
            "avgLatencyMs": 12.5,
            "p50Ms": None,
            "p95Ms": p95,
        },
    }


def test_rows_sort_by_any_column_missing_values_last() -> None:
    rows = rows_of(
        {"groups": [group("a", 4, "0.5", 300), group("b", 10, "0.02"), group("c", 1, None, 50)]}
    )
    assert [r["key"] for r in sort_rows(rows, "cost", True)] == ["a", "b", "c"]
    assert [r["key"] for r in sort_rows(rows, "requests", False)] == ["c", "a", "b"]
    assert [r["key"] for r in sort_rows(rows, "p95", True)] == ["a", "c", "b"]
    assert [r["key"] for r in sort_rows(rows, "label", False)] == ["a", "b", "c"]
    c = next(r for r in rows if r["key"] == "c")
    assert c["cost"] == "unknown (1 request)"  # never $0
    assert (c["error_rate"], c["p95"], c["p50"]) == ("100.0%", "50 ms", "—")


def test_csv_holds_exact_amounts_and_a_total() -> None:
    rows = rows_of({"groups": [group("openai/gpt-4o", 2, "0.00001234")]})
    total = table_row("TOTAL", "Total", group("t", 2, "0.00001234")["totals"])
    out = list(csv.reader(io.StringIO(csv_text("model", rows, total))))
    assert out[0][:3] == ["model", "label", "requests"]
    assert out[1][0] == "openai/gpt-4o" and "0.00001234" in out[1]
    assert out[-1][:2] == ["TOTAL", "Total"]
    assert chart_points(rows) == [{"name": "OPENAI/GPT-4O", "cost": 1.2e-05, "requests": 2}]


def test_ranges_are_utc_windows_with_the_end_day_included() -> None:
    assert window("7d", now=NOW) == (
        dt.datetime(2026, 3, 4, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 11, tzinfo=dt.UTC),
    )
    assert window("24h", now=NOW) == (
        dt.datetime(2026, 3, 9, 13, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 10, 13, tzinfo=dt.UTC),
    )
    assert window("mtd", now=NOW)[0] == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    since, until = window("custom", "2026-02-01", "2026-02-03", now=NOW)
    assert describe(since, until) == "2026-02-01 – 2026-02-03 (UTC)"
    with pytest.raises(ValueError, match="before"):
        window("custom", "2026-02-03", "2026-02-01")
    with pytest.raises(ValueError):
        window("custom", "", "")


def test_confirmations_name_what_they_do() -> None:
    assert confirm_text("suspend", "Mia")[0] == "Suspend Mia?"
    assert confirm_text("delete_rule", "caps") == (
        "Delete caps?",
        "This cannot be undone.",
        "Delete",
    )
    assert "refused" in confirm_text("revoke", "laptop")[1]


def test_permissions_come_from_the_authorization_table() -> None:
    assert permissions.roles("Mutation.createOrganization") == ["super_admin"]
    assert "org_admin" in permissions.roles("Mutation.deleteModelAlias")
    assert permissions.roles("Mutation.deleteModelAlias", global_row=True) == ["super_admin"]
    assert permissions.roles("Mutation.noSuchThing") == []


def test_every_sortable_column_is_an_api_sort() -> None:
    from backend.graphql.analytics import AnalyticsSort
    from frontend_reflex.state.analytics import COLUMNS, api_sort

    names = {m.name for m in AnalyticsSort}
    for col in ["label", *(c for c, _ in COLUMNS)]:
        assert {api_sort(col, True), api_sort(col, False)} <= names, col
    assert api_sort("cost", True) == "COST_DESC"
