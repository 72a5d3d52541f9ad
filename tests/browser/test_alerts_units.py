"""The alerts section's pure parts, without a browser: table rows and form checks."""

from __future__ import annotations

import pytest

from frontend_reflex.state.alerts import (
    channel_fields,
    channel_row,
    rule_fields,
    rule_row,
    send_test_outcome,
)
from frontend_reflex.validate import FormError


def test_rows() -> None:
    mail = channel_row(
        {
            "name": "mail",
            "kind": "EMAIL",
            "smtpHost": "smtp.x",
            "smtpPort": 587,
            "recipients": ["a@x", "b@x"],
            "secretSet": True,
            "secretLast4": "WXYZ",
            "enabled": True,
        }
    )
    assert mail["target"] == "a@x, b@x via smtp.x:587" and mail["secret"] == "••••WXYZ"
    hook = channel_row({"name": "ops", "kind": "SLACK", "url": "https://h", "secretSet": False})
    assert (hook["kind"], hook["target"], hook["secret"]) == ("slack", "https://h", "none")
    cap = rule_row({"name": "c", "kind": "CAP", "thresholds": [50, 80], "scopeKind": "ORG"})
    assert cap["watches"] == "50%, 80% of org caps"
    rate = rule_row(
        {"kind": "ERROR_RATE", "errorRatePercent": 20.0, "provider": "openai", "windowSeconds": 600}
    )
    assert rate["watches"] == "errors above 20.0% of openai over 10 min"


def test_forms() -> None:
    assert channel_fields({"kind": "webhook", "url": "https://h", "secret": "s" * 20}) == {
        "kind": "webhook",
        "enabled": False,
        "url": "https://h",
        "secret": "s" * 20,
    }
    mail = channel_fields(
        {"kind": "email", "smtp_host": "h", "smtp_port": "587", "recipients": "a@x, b@x"}
    )
    assert mail["smtpPort"] == 587 and mail["recipients"] == ["a@x", "b@x"]
    with pytest.raises(FormError, match="port"):
        channel_fields({"kind": "email", "smtp_port": "smtp"})
    rule = rule_fields({"kind": "cap", "thresholds": "50%, 80, 100", "channels": "ops"})
    assert rule["thresholds"] == [50, 80, 100] and rule["channels"] == ["ops"]
    with pytest.raises(FormError, match="percents"):
        rule_fields({"kind": "cap", "thresholds": "half", "channels": "ops"})
    with pytest.raises(FormError, match="channel"):
        rule_fields({"kind": "circuit"})
    assert (
        rule_fields({"kind": "error_rate", "error_rate": "20", "channels": "x"})["errorRatePercent"]
        == 20.0
    )


def test_send_test_outcome_never_reports_a_pending_row_as_failed() -> None:
    assert send_test_outcome("ops", {"status": "SENT"}) == ("Test alert delivered to ops.", "")
    ok, error = send_test_outcome("ops", {"status": "PENDING", "lastError": None})
    assert "queued" in ok and not error
    ok, error = send_test_outcome("ops", {"status": "PENDING", "lastError": "HTTP 500"})
    assert not ok and error == "Test alert to ops failed: HTTP 500; it is retried."
    ok, error = send_test_outcome("ops", {"status": "FAILED", "lastError": "gone"})
    assert not ok and "failed for good: gone" in error
