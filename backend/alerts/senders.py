"""Sending one alert: an HTTP POST (webhook, Slack) or an SMTP message. Errors become ``SendError``
with a message safe to record (no secret, no body)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

import httpx

SMTP_TIMEOUT_S = 15.0


class SendError(Exception):
    """A failed delivery attempt; ``str()`` is recorded on the delivery row."""


async def post_webhook(
    client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]
) -> None:
    try:
        resp = await client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException:
        raise SendError("the webhook did not answer in time") from None
    except httpx.HTTPError as exc:
        raise SendError(f"the webhook could not be reached ({type(exc).__name__})") from None
    if resp.status_code >= 300:
        raise SendError(f"the webhook answered HTTP {resp.status_code}")


def _send_smtp(config: Mapping[str, Any], password: str | None, msg: EmailMessage) -> None:
    host = str(config.get("host") or "")
    port = int(config.get("port") or 25)
    security = str(config.get("security") or "none")
    username = config.get("username") or None
    smtp: smtplib.SMTP
    if security == "tls":
        smtp = smtplib.SMTP_SSL(
            host, port, timeout=SMTP_TIMEOUT_S, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_S)
    with smtp:
        if security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if username:
            smtp.login(str(username), password or "")
        smtp.send_message(msg)


async def send_email(config: Mapping[str, Any], password: str | None, msg: EmailMessage) -> None:
    """SMTP in a thread (smtplib blocks); the channel's host, port, security and login."""
    try:
        await asyncio.to_thread(_send_smtp, config, password, msg)
    except smtplib.SMTPAuthenticationError:
        raise SendError("the SMTP server refused the login") from None
    except smtplib.SMTPRecipientsRefused:
        raise SendError("the SMTP server refused every recipient") from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"the SMTP server answered {exc.smtp_code}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"the SMTP server could not be reached ({type(exc).__name__})") from None
