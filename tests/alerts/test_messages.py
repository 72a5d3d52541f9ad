"""Alert texts, channel bodies, the signature and the retry schedule (pure parts)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal

import orjson

from backend.alerts import messages
from backend.alerts.deliveries import MAX_DELAY_S, backoff_s
from backend.alerts.watch import all_caps, key_chains
from backend.state.snapshot import (
    AppInfo,
    KeyInfo,
    Keys,
    Limits,
    OrgInfo,
    Tenancy,
    UserInfo,
)

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def test_cap_alert_names_threshold_period_and_amounts() -> None:
    alert = messages.cap_alert(
        rule_id=3,
        threshold=80,
        cap_name="weekly cap of user alice@x ($5.00)",
        scope=("user", 7),
        spent=Decimal("4.10"),
        limit=Decimal("5.00"),
        period_start=START,
        resets_at=START + dt.timedelta(days=7),
    )
    assert alert.title == "Spend reached 80% of the weekly cap of user alice@x ($5.00)"
    assert alert.text.startswith("$4.10 of $5.00 spent this period (82%)")
    assert alert.severity == "warning"
    assert alert.dedupe_key == "cap:3:user:7:2026-01-05T00:00:00+00:00:80"
    same_next_week = messages.cap_alert(
        rule_id=3,
        threshold=80,
        cap_name="x",
        scope=("user", 7),
        spent=Decimal(5),
        limit=Decimal(5),
        period_start=START + dt.timedelta(days=7),
        resets_at=START,
    )
    assert same_next_week.dedupe_key != alert.dedupe_key  # a new period fires again


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    body = messages.generic_body(1, "test", "info", "t", "x", {}, START)
    signature = messages.sign("s3cret-signing-key", 1_767_600_000, body)
    expected = hmac.new(b"s3cret-signing-key", b"1767600000." + body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert messages.verify("s3cret-signing-key", "1767600000", body, signature, 1_767_600_010)
    assert not messages.verify(
        "s3cret-signing-key", "1767600000", body + b" ", signature, 1_767_600_010
    )
    assert not messages.verify("s3cret-signing-key", "1767600000", body, signature, 1_767_700_000)
    assert not messages.verify("other-signing-key", "1767600000", body, signature, 1_767_600_010)


def test_slack_body_is_an_incoming_webhook_message() -> None:
    body = orjson.loads(messages.slack_body("critical", "Circuit open for openai", "details"))
    assert body["text"].startswith(":rotating_light: Circuit open for openai")
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]
    assert body["blocks"][1]["text"] == {"type": "mrkdwn", "text": "details"}


def test_email_message() -> None:
    msg = messages.email_message("gw@x.test", ["a@x.test", "b@x.test"], "Title", "Body")
    assert msg["Subject"] == "[Switchboard] Title" and msg["To"] == "a@x.test, b@x.test"
    assert "Body" in msg.get_content()


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_s(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert backoff_s(40) == MAX_DELAY_S


def test_every_cap_of_the_snapshot() -> None:
    capped = Limits(spend_cap_usd=Decimal(3), cap_period="daily")
    tenancy = Tenancy(
        orgs={1: OrgInfo(1, "Acme", "acme", Decimal(100), "monthly", True)},
        users={2: UserInfo(2, "A", "a@x", weekly_cap_usd=Decimal(5)), 3: UserInfo(3, "B", "b@x")},
        apps={4: AppInfo(4, "App", "app", limits=capped)},
    )
    keys = Keys(
        {
            "h1": KeyInfo(5, "sk-a", 2, None, limits=capped),
            "h2": KeyInfo(6, "sk-b", 2, None, revoked=True, limits=capped),
        }
    )
    caps = {c.scope: (c.period, c.amount, c.rollover) for c in all_caps(tenancy, keys)}
    assert caps == {
        ("user", 2): ("weekly", Decimal(5), False),
        ("org", 1): ("monthly", Decimal(100), True),
        ("app", 4): ("daily", Decimal(3), False),
        ("key", 5): ("daily", Decimal(3), False),
    }


def test_a_rotation_chain_is_one_cap() -> None:
    # Key 8 was rotated from 7 with a grace period (both active): one counter, one cap, named
    # after the newest key; a rule naming either key id watches it.
    capped = Limits(spend_cap_usd=Decimal(3), cap_period="daily")
    keys = Keys(
        {
            "h7": KeyInfo(7, "sk-old", 2, None, limits=capped),
            "h8": KeyInfo(8, "sk-new", 2, None, limits=capped, lineage_id=7),
        }
    )
    caps = [(c.scope, c.owner) for c in all_caps(Tenancy(), keys)]
    assert caps == [(("key", 7), "sk-new")]
    assert key_chains(keys) == {7: {7, 8}}
