"""The operators' console without a browser (issue 17 items 1-3): filters in the URL, the API
filter they become, live rows matched like the API matches, request detail and key rows."""

from __future__ import annotations

import datetime as dt

import pytest

from backend.graphql.logs import GatewayLogFilter
from frontend_reflex import fmt
from frontend_reflex.state import filters
from frontend_reflex.state.keys import expiry_value, grace_seconds, key_row, spend_text
from frontend_reflex.state.log_rows import LOG_FIELDS, live_matches, log_row, request_href
from frontend_reflex.state.request import attempt_row, final_row, price_text, refusal_view, summary

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_a_link_and_a_form_are_cleaned_alike() -> None:
    raw = {
        "org": "3",
        "user": "x7",  # not an id: dropped
        "model": " gpt-4o ",
        "errors": "on",
        "endpoint": "NOPE",  # not a door: dropped
        "range": "24h",
        "since": "2026-03-01T10:00",
        "evil": "1",  # not a field: dropped
    }
    values = filters.clean(LOG_FIELDS, raw)
    assert set(values) == {f.name for f in LOG_FIELDS}
    assert values["org"] == "3" and values["user"] == "" and values["model"] == "gpt-4o"
    assert values["errors"] == "1" and values["endpoint"] == "" and values["range"] == "24h"
    assert (
        filters.query_string(LOG_FIELDS, values)
        == "?org=3&model=gpt-4o&errors=1&range=24h&since=2026-03-01T10%3A00"
    )
    assert filters.query_string(LOG_FIELDS, filters.clean(LOG_FIELDS, {})) == ""


def test_the_api_filter_of_every_field_exists_in_the_schema() -> None:
    values = filters.clean(
        LOG_FIELDS,
        {
            "q": "req_1",
            "org": "1",
            "user": "2",
            "app": "3",
            "model": "m",
            "provider": "openai",
            "status": "429",
            "errors": "1",
            "key": "sb-abc",
            "endpoint": "MESSAGES",
            "range": "custom",
            "since": "2026-03-01T00:00",
            "until": "2026-03-02T00:00",
        },
    )
    out = filters.to_graphql(LOG_FIELDS, values, NOW)
    assert out == {
        "search": "req_1",
        "organizationId": 1,
        "userId": 2,
        "appId": 3,
        "model": "m",
        "provider": "openai",
        "status": 429,
        "errorsOnly": True,
        "keyPrefix": "sb-abc",
        "endpoint": "MESSAGES",
        "since": "2026-03-01T00:00:00+00:00",
        "until": "2026-03-02T00:00:00+00:00",
    }
    # Every key is a field of the API's GatewayLogFilter (snake_case there).
    known = {f.name for f in GatewayLogFilter.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    snake = {"".join("_" + c.lower() if c.isupper() else c for c in k) for k in out}
    assert snake <= known, snake - known
    preset = filters.to_graphql(LOG_FIELDS, filters.clean(LOG_FIELDS, {"range": "1h"}), NOW)
    assert preset == {"since": (NOW - dt.timedelta(hours=1)).isoformat()}


def test_custom_range_errors_and_count_labels() -> None:
    assert (
        filters.window_error({"range": "custom"}) == "Pick a start or an end for the custom range."
    )
    bad = {"range": "custom", "since": "2026-03-02T00:00", "until": "2026-03-01T00:00"}
    assert "before its start" in filters.window_error(bad)
    assert filters.count_label(0, 50, 1234, True) == "1–50 of 1,234"
    assert filters.count_label(50, 50, 10_000, False) == "51–100 of more than 10,000"
    assert filters.count_label(0, 0, 0, True) == "0 rows"


EVENT = {
    "requestId": "req_abc",
    "createdAt": "2026-03-10T11:59:00+00:00",
    "keyPrefix": "sb-k1",
    "user": {"id": 2, "name": "Mia"},
    "organizationId": 1,
    "appId": None,
    "endpoint": "/v1/chat/completions",
    "requestedModel": "gpt-4o",
    "actualModel": "openai/gpt-4o",
    "provider": "openai",
    "status": 429,
    "refusal": {"kind": "SPEND_CAP"},
}


@pytest.mark.parametrize(
    ("values", "passes"),
    [
        ({}, True),
        ({"org": "1", "model": "gpt-4o", "errors": "1", "range": "1h"}, True),
        ({"org": "2"}, False),
        ({"user": "2", "app": "5"}, False),
        ({"model": "gpt-4o-mini"}, False),
        ({"status": "500"}, False),
        ({"key": "sb-k2"}, False),
        ({"q": "req_a"}, True),
        ({"q": "GPT-4"}, True),
        ({"q": "claude"}, False),
        ({"endpoint": "MESSAGES"}, False),
        ({"range": "custom", "until": "2026-03-10T11:00"}, False),
        ({"range": "15m"}, True),
    ],
)
def test_live_rows_pass_the_filter_like_the_api(values: dict[str, str], passes: bool) -> None:
    assert live_matches(filters.clean(LOG_FIELDS, values), EVENT, NOW) is passes


def test_a_failed_row_says_who_failed_it_and_links_its_detail() -> None:
    row = log_row(EVENT)
    assert row["why"] == "spend cap" and row["failed"] == "yes"
    assert row["href"] == "/request?id=req_abc" == request_href("req_abc")
    provider = log_row({**EVENT, "refusal": None, "upstreamStatus": 429})
    assert provider["why"] == "provider 429"
    assert log_row({**EVENT, "status": 200})["why"] == ""


def test_request_detail_rows() -> None:
    attempts = [
        {"requestId": "r", "status": 502, "superseded": True, "actualModel": "openai/a",
         "provider": "openai", "upstreamStatus": 500, "errorCode": "upstream_500",
         "errorMessage": "openai: boom", "latencyMs": 12.4},
        {"requestId": "r", "status": 429, "superseded": False, "actualModel": "openai/b",
         "provider": "openai", "deployment": "acct-b", "upstreamStatus": None, "refusal": {
             "kind": "SPEND_CAP", "summary": "Spend cap: the monthly cap of key #4 ($0.00 of "
             "$0.01 used).", "scope": "key", "scopeId": 4, "limit": "0.01", "used": "0",
             "resetsAt": "2026-04-01T00:00:00+00:00"},
         "inputTokens": 0, "outputTokens": 0, "latencyMs": 30.0, "attempts": 2},
    ]  # fmt: skip
    final = final_row(attempts)
    assert final is attempts[1]
    first = attempt_row(1, attempts[0])
    assert first["who"] == "provider answered 500" and first["role"] == "fallback attempt"
    assert first["latency"] == "12 ms" and first["code"] == "upstream_500"
    second = attempt_row(2, attempts[1])
    assert second["who"] == "gateway: spend cap" and second["provider"] == "openai via acct-b"
    refusal = refusal_view(final)
    assert refusal["kind"] == "spend cap" and refusal["scope"] == "key #4"
    assert refusal["resets"] == "2026-04-01 00:00:00"
    assert refusal_view(attempts[0]) == {}
    info = summary(final)
    assert info["attempts"] == "2" and info["ttft"] == "not streamed" and info["cost"] == "unknown"
    price = {"inputPerMtok": "0.15000000", "outputPerMtok": "0.6", "cachedPerMtok": "0.075",
             "source": "price-table"}  # fmt: skip
    assert price_text(price) == "$0.15 in / $0.6 out / $0.075 cached per 1M tokens (price-table)"
    assert price_text(None) == "no price used"


def test_key_rows_and_their_actions() -> None:
    node = {
        "id": 7,
        "name": "ci",
        "prefix": "sb-abc",
        "kind": "APP",
        "status": "ACTIVE",
        "createdAt": "2026-03-01T00:00:00+00:00",
        "expiresAt": None,
        "lastUsedAt": "2026-03-09T10:00:00+00:00",
        "app": {"id": 1, "name": "Bot", "organization": {"id": 1, "name": "Acme"}},
        "limits": {"requestsPerMinute": 60, "tokensPerMinute": None, "spendCapUsd": "10",
                   "locks": [{"limit": "SPEND_CAP"}]},
        "spendThisPeriod": {"period": "MONTHLY", "costUsd": "1.2", "unknownCostRequests": 0},
    }  # fmt: skip
    row = key_row(node)
    assert row["owner"] == "app: Bot" and row["org"] == "Acme" and row["status"] == "active"
    assert row["expires"] == "never" and row["last_used"] == "2026-03-09 10:00:00"
    assert row["spend"] == f"{fmt.money('1.2')} of {fmt.money('10')} (monthly)"
    assert row["rate"] == "60 rpm"
    assert row["locked"] == "yes"
    assert key_row({**node, "lastUsedAt": None})["last_used"] == "never"
    assert spend_text({"period": "WEEKLY", "costUsd": "0"}, {}) == f"{fmt.money('0')} this week"
    assert grace_seconds("3600", "") == 3600 and grace_seconds("custom", " 5 ") == 5
    with pytest.raises(ValueError, match="whole number"):
        grace_seconds("custom", "soon")
    assert expiry_value("", NOW) is None
    assert expiry_value("2026-03-11T08:30", NOW) == "2026-03-11T08:30:00+00:00"
    with pytest.raises(ValueError, match="future"):
        expiry_value("2026-03-01T08:30", NOW)


def test_dlp_activity_and_error_reports_link_their_request() -> None:
    from frontend_reflex.state.dlp import activity_row
    from frontend_reflex.state.usage import error_row

    assert activity_row({"requestId": "req_9"})["href"] == "/request?id=req_9"
    assert error_row({"requestId": "req 9&x"})["href"] == "/request?id=req%209%26x"
    assert error_row({"requestId": None})["href"] == ""
