"""Dashboard sessions and long-lived admin tokens, both stored hashed in ``AdminToken``.

A token looks like ``sbs-<8 hex>-<random>`` (session) or ``sba-<8 hex>-<random>`` (admin token
for automation). Like gateway keys they carry 190+ random bits, so a SHA-256 hash is the right
storage (it is checked on every admin request; argon2 would be needless cost). The ``prefix``
identifies a token in lists without revealing it.
"""

from __future__ import annotations

import datetime as dt
import logging

from backend.data.events import EventBus
from backend.data.models.keys import AdminToken
from backend.data.models.tenancy import User
from backend.security.api_keys import generate_key, hash_key

log = logging.getLogger("switchboard.auth")

SESSION_PREFIX = "sbs-"
ADMIN_PREFIX = "sba-"
SESSION_TTL = dt.timedelta(hours=12)
KINDS = {"session": SESSION_PREFIX, "admin": ADMIN_PREFIX}
#: Event bus channel: ``{"user_id": int}`` when a user's dashboard credentials changed.
SESSIONS_CHANNEL = "sessions"


async def issue_token(
    user: User,
    kind: str,
    *,
    now: dt.datetime,
    name: str = "",
    expires_at: dt.datetime | None = None,
) -> tuple[str, AdminToken]:
    """Create a token row and return ``(secret, row)``; the secret is never stored."""
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    secret, prefix, digest = generate_key(KINDS[kind])
    if kind == "session" and expires_at is None:
        expires_at = now + SESSION_TTL
    row = await AdminToken.create(
        kind=kind, name=name, prefix=prefix, token_hash=digest, user=user, expires_at=expires_at
    )
    return secret, row


async def create_session(user: User, *, now: dt.datetime) -> tuple[str, AdminToken]:
    return await issue_token(user, "session", now=now)


async def token_row(secret: str) -> AdminToken | None:
    if not secret.startswith((SESSION_PREFIX, ADMIN_PREFIX)):
        return None
    return await AdminToken.get_or_none(token_hash=hash_key(secret)).select_related("user")


def token_usable(row: AdminToken, now: dt.datetime) -> bool:
    if row.revoked_at is not None:
        return False
    return row.expires_at is None or row.expires_at > now


async def authenticate_token(secret: str, *, now: dt.datetime) -> User | None:
    """The active user a valid, unexpired, unrevoked token belongs to; None otherwise."""
    row = await token_row(secret)
    if row is None or not token_usable(row, now):
        return None
    user: User = row.user
    return user if user.status == "active" else None


async def revoke_token(secret: str, *, now: dt.datetime) -> bool:
    return await revoke(secret, now=now) is not None


async def revoke(secret: str, *, now: dt.datetime) -> AdminToken | None:
    """Revoke the token; its row, or None when it did not exist or was already revoked."""
    row = await token_row(secret)
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = now
    await row.save(update_fields=["revoked_at"])
    return row


async def revoke_sessions(user_id: int, *, now: dt.datetime) -> int:
    """End every dashboard session of a user (a suspension), and any sign-in ticket not yet
    redeemed (``backend.sso.signin``); how many ended. Admin tokens stay: they are refused
    while the user is suspended and work again if an administrator reactivates them."""
    return await AdminToken.filter(
        user_id=user_id, kind__in=("session", "sso_ticket"), revoked_at__isnull=True
    ).update(revoked_at=now)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def announce_session_change(bus: EventBus, user_id: int) -> None:
    """Tell every instance that ``user_id``'s credentials changed (logout, a revoked token), so
    live subscriptions re-check their session (``backend.graphql.live_sessions``).

    A lost announcement is not fatal: those subscriptions re-check periodically anyway.
    """
    try:
        await bus.publish(SESSIONS_CHANNEL, {"user_id": user_id})
    except Exception as exc:
        log.warning("could not announce a session change (%s)", type(exc).__name__)
