"""The deployments section's pure parts, without a browser: table rows and form checks."""

from __future__ import annotations

import pytest

from frontend_reflex.state.deployments import deployment_fields, deployment_row
from frontend_reflex.validate import FormError


def test_row_shows_last_four_load_and_health() -> None:
    row = deployment_row(
        {
            "provider": "openai",
            "name": "acct-b",
            "baseUrl": None,
            "apiKeySet": True,
            "apiKeyLast4": "WXYZ",
            "weight": 3,
            "rpmLimit": 100,
            "tpmLimit": None,
            "models": [],
            "enabled": True,
            "status": {
                "health": "RATE_LIMITED",
                "inFlight": 2,
                "requests": 1200,
                "failures": 4,
                "rateLimited": 4,
                "cooldownSeconds": 4.6,
                "lastError": "openai: Rate limit reached",
                "requestsLastMinute": 57,
            },
        }
    )
    assert row["secret"] == "••••WXYZ" and row["endpoint"] == "provider's"
    assert row["limits"] == "100 rpm · — tpm" and row["models"] == "all"
    assert row["load"] == "57 req/min · 2 in flight"
    assert row["totals"] == "1,200 sent · 4 failed · 4× 429"
    assert row["health"] == "rate_limited"
    assert row["detail"] == "retry in 5s: openai: Rate limit reached"
    # Several gateway instances reporting: the counts are their sum, and the row says so.
    two = deployment_row({"name": "x", "status": {"requestsLastMinute": 9, "instances": 2}})
    assert two["load"] == "9 req/min · 0 in flight · 2 instances"
    off = deployment_row({"provider": "openai", "name": "x", "enabled": False, "status": {}})
    assert off["health"] == "disabled" and off["secret"] == "provider's"


def test_form_fields_and_checks() -> None:
    fields = deployment_fields(
        {"weight": "", "rpm_limit": "5,000", "models": "gpt-4o, gpt-4o-mini", "enabled": "on"}
    )
    assert fields == {
        "baseUrl": None,
        "weight": 1,
        "rpmLimit": 5000,
        "tpmLimit": None,
        "models": ["gpt-4o", "gpt-4o-mini"],
        "enabled": True,
    }
    assert deployment_fields({"api_key": "sk-new-key-1234"})["apiKey"] == "sk-new-key-1234"
    with pytest.raises(FormError, match="Requests per minute must be a whole number"):
        deployment_fields({"rpm_limit": "lots"})
    with pytest.raises(FormError, match="Weight"):
        deployment_fields({"weight": "-1"})
    with pytest.raises(FormError, match="http"):
        deployment_fields({"base_url": "ftp://x"})
