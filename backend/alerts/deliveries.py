"""Delivering alerts: claim a due row, send it, record the outcome, retry with backoff.

Every gateway instance runs one ``Deliveries`` loop over the shared ``alert_deliveries`` table. A
row is due while ``status = 'pending'`` and ``next_attempt_at <= now``. An instance claims it
with one conditional update (``attempts`` as the version: only one of several instances seeing
the same row wins), which also moves ``next_attempt_at`` a lease ahead so that a claim whose
instance died is picked up again later. Then:

- sent: ``status = 'sent'``, ``sent_at``;
- failed: ``next_attempt_at = now + min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (attempts - 1))``, the
  error recorded; after ``MAX_ATTEMPTS`` the row is ``failed`` for good.

Delivery is at least once: an instance that dies between sending and recording leaves the row to
be sent again after its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from backend.alerts import messages
from backend.alerts.senders import SendError, post_webhook, send_email
from backend.data.models.alerts import AlertChannel, AlertDelivery
from backend.security.crypto import CredentialDecryptError, decrypt_secret

log = logging.getLogger("switchboard.alerts")

MAX_ATTEMPTS = 8
BASE_DELAY_S = 1.0
MAX_DELAY_S = 300.0
LEASE_S = 60.0
POLL_S = 2.0
BATCH = 20


def channel_aad(name: str) -> str:
    """Associated data binding a channel's secret to its row."""
    return f"alert-channel:{name}"


def backoff_s(attempts: int) -> float:
    return float(min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(0, attempts - 1)))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Deliveries:
    def __init__(
        self,
        secret_key: bytes,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], dt.datetime] = _now,
        poll_s: float = POLL_S,
    ) -> None:
        self._key = secret_key
        self._http = http
        self._clock = clock
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._failing = False

    def kick(self) -> None:
        """New rows: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            self._wake.clear()
            try:
                while await self.process_due() == BATCH:
                    pass
            except Exception:  # the database may be away: try again at the next poll
                # Once per outage, not once per poll.
                if not self._failing:
                    log.exception("alert deliveries: processing failed, retrying")
                self._failing = True
            else:
                self._failing = False

    async def process_due(self) -> int:
        """Attempt every due row this instance can claim; returns how many were due."""
        now = self._clock()
        rows = (
            await AlertDelivery.filter(status="pending", next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .limit(BATCH)
        )
        for row in rows:
            await self.attempt(row)
        return len(rows)

    async def attempt(self, row: AlertDelivery) -> AlertDelivery:
        """Claim ``row`` and send it once; returns the row as recorded (unchanged if not ours)."""
        now = self._clock()
        claimed = await AlertDelivery.filter(
            id=row.id, status="pending", attempts=row.attempts
        ).update(attempts=row.attempts + 1, next_attempt_at=now + dt.timedelta(seconds=LEASE_S))
        if not claimed:
            return row
        row.attempts += 1
        error: str | None = None
        try:
            await self._send(row)
        except SendError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not stop the loop, nor lose the row
            log.exception("alert delivery %s failed unexpectedly", row.id)
            error = f"unexpected error ({type(exc).__name__})"
        done = self._clock()
        if error is None:
            changes: dict[str, Any] = {
                "status": "sent",
                "sent_at": done,
                "next_attempt_at": None,
                "last_error": None,
            }
        elif row.attempts >= MAX_ATTEMPTS:
            changes = {"status": "failed", "next_attempt_at": None, "last_error": error[:500]}
            log.warning("alert delivery %s failed for good: %s", row.id, error)
        else:
            wait = backoff_s(row.attempts)
            changes = {
                "next_attempt_at": done + dt.timedelta(seconds=wait),
                "last_error": error[:500],
            }
            log.info("alert delivery %s failed (%s); retry in %.0fs", row.id, error, wait)
        await AlertDelivery.filter(id=row.id).update(**changes)
        for name, value in changes.items():
            setattr(row, name, value)
        return row

    async def _send(self, row: AlertDelivery) -> None:
        channel = await AlertChannel.get_or_none(id=row.channel_id)
        if channel is None:
            raise SendError("the channel was deleted")
        secret = self._secret(channel)
        details = dict(row.payload or {})
        if channel.kind == "email":
            config = dict(channel.config or {})
            recipients = config.get("recipients")
            msg = messages.email_message(
                str(config.get("sender") or ""),
                [str(r) for r in recipients] if isinstance(recipients, list) else [],
                row.title,
                row.text,
            )
            await send_email(config, secret, msg)
            return
        if channel.kind == "slack":
            body = messages.slack_body(row.severity, row.title, row.text)
        else:
            body = messages.generic_body(
                row.id, row.kind, row.severity, row.title, row.text, details, row.created_at
            )
        headers = {"content-type": "application/json", "user-agent": "switchboard-alerts"}
        if secret:
            ts = int(time.time())
            headers[messages.TIMESTAMP_HEADER] = str(ts)
            headers[messages.SIGNATURE_HEADER] = messages.sign(secret, ts, body)
        await post_webhook(self._http, channel.url or "", body, headers)

    def _secret(self, channel: AlertChannel) -> str | None:
        if not channel.secret_ciphertext:
            return None
        try:
            return decrypt_secret(self._key, channel.secret_ciphertext, channel_aad(channel.name))
        except CredentialDecryptError as exc:
            raise SendError(f"the channel's secret cannot be used: {exc}") from None
