"""What an alert says and how each channel carries it: pure functions, no I/O.

Webhook bodies (``Content-Type: application/json``):

- ``webhook`` (generic)::

    {"id": 12, "type": "cap", "severity": "warning", "title": "...", "text": "...",
     "created_at": "2026-01-05T10:00:00+00:00", "test": false, "details": {...}}

- ``slack`` (an incoming-webhook body: ``text`` is the fallback, ``blocks`` the message)::

    {"text": "...", "blocks": [{"type": "header", ...}, {"type": "section", ...}]}

Both are signed: ``X-Switchboard-Timestamp: <unix seconds>`` and ``X-Switchboard-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body bytes>" under the channel's secret>``. A receiver
recomputes it over the raw body and rejects old timestamps to stop replays (``verify``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import orjson

SIGNATURE_HEADER = "x-switchboard-signature"
TIMESTAMP_HEADER = "x-switchboard-timestamp"


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # cap | circuit | error_rate | test
    severity: str  # info | warning | critical
    title: str
    text: str
    #: Names the rule, subject, period and threshold: an alert fires once per key and channel.
    dedupe_key: str
    rule_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _usd(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def cap_alert(
    *,
    rule_id: int,
    threshold: int,
    cap_name: str,
    scope: tuple[str, int],
    spent: Decimal,
    limit: Decimal,
    period_start: dt.datetime,
    resets_at: dt.datetime,
) -> Alert:
    percent = float(spent / limit * 100) if limit > 0 else 100.0
    return Alert(
        kind="cap",
        severity="critical" if threshold >= 100 else "warning",
        title=f"Spend reached {threshold}% of the {cap_name}",
        text=(
            f"{_usd(spent)} of {_usd(limit)} spent this period ({percent:.0f}%). "
            f"The period resets at {resets_at.isoformat()}."
        ),
        dedupe_key=(f"cap:{rule_id}:{scope[0]}:{scope[1]}:{period_start.isoformat()}:{threshold}"),
        rule_id=rule_id,
        details={
            "threshold_percent": threshold,
            "scope": scope[0],
            "scope_id": scope[1],
            "cap": cap_name,
            "spent_usd": format(spent, "f"),
            "limit_usd": format(limit, "f"),
            "percent": round(percent, 1),
            "period_start": period_start.isoformat(),
            "resets_at": resets_at.isoformat(),
        },
    )


def circuit_alert(
    *,
    rule_id: int,
    provider: str,
    model: str | None,
    failures: int,
    last_error: str | None,
    period: int,
) -> Alert:
    subject = f"provider {provider}" if model is None else f"{provider}/{model}"
    cause = f" Last error: {last_error}" if last_error else ""
    return Alert(
        kind="circuit",
        severity="critical",
        title=f"Circuit open for {subject}",
        text=(
            f"The gateway stopped sending requests to {subject} after {failures} failures in a "
            f"row; it tries again after the cooldown.{cause}"
        ),
        dedupe_key=f"circuit:{rule_id}:{provider}/{model or '*'}:{period}",
        rule_id=rule_id,
        details={"provider": provider, "model": model, "failures": failures, "error": last_error},
    )


def error_rate_alert(
    *,
    rule_id: int,
    provider: str,
    errors: int,
    requests: int,
    bound: float,
    window_s: int,
    period: int,
) -> Alert:
    rate = errors / requests * 100 if requests else 0.0
    return Alert(
        kind="error_rate",
        severity="warning",
        title=f"Error rate of {provider} at {rate:.0f}% (bound {bound:g}%)",
        text=(
            f"{errors} of {requests} requests to {provider} failed in the last "
            f"{window_s // 60 or 1} min ({rate:.1f}%, above the {bound:g}% bound)."
        ),
        dedupe_key=f"error_rate:{rule_id}:{provider}:{period}",
        rule_id=rule_id,
        details={
            "provider": provider,
            "errors": errors,
            "requests": requests,
            "percent": round(rate, 1),
            "bound_percent": bound,
            "window_s": window_s,
        },
    )


def test_alert(channel: str, nonce: str) -> Alert:
    return Alert(
        kind="test",
        severity="info",
        title=f"Test alert for channel {channel}",
        text="Switchboard can reach this channel. (Sent with the dashboard's 'send test'.)",
        dedupe_key=f"test:{nonce}",
        details={"channel": channel},
    )


# -- channel formats -------------------------------------------------------------------------


def generic_body(
    delivery_id: int,
    kind: str,
    severity: str,
    title: str,
    text: str,
    details: dict[str, Any],
    created_at: dt.datetime,
) -> bytes:
    return orjson.dumps(
        {
            "id": delivery_id,
            "type": kind,
            "severity": severity,
            "title": title,
            "text": text,
            "created_at": created_at.isoformat(),
            "test": kind == "test",
            "details": details,
        }
    )


_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


def slack_body(severity: str, title: str, text: str) -> bytes:
    """An incoming-webhook message (Slack, and Mattermost/Rocket.Chat which take the same)."""
    head = f"{_EMOJI.get(severity, '')} {title}".strip()
    return orjson.dumps(
        {
            "text": f"{head}\n{text}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            ],
        }
    )


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: int = 300
) -> bool:
    """What a receiver checks: the signature over the raw body, and a recent timestamp."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def email_message(sender: str, recipients: list[str], title: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[Switchboard] {title}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg.set_content(f"{title}\n\n{text}\n")
    return msg
