"""Dashboard login, logout, password change and admin tokens for automation.

Passwords are checked on the login guard's worker threads, never on the event loop, and failed
logins are throttled per account and per client address (``backend.security.throttle``): a
locked-out login is refused before its password is looked at, the right password included.
Members of an organization that signs in with SSO only are refused with ``SSO_REQUIRED``
(``backend.sso.sso_only``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, SystemActor, is_super, require_admin
from backend.admin.errors import AdminError, InvalidInput, NotAuthenticated
from backend.admin.lookup import not_found
from backend.data.models.keys import AdminToken
from backend.data.models.tenancy import User
from backend.gateway import Gateway
from backend.security import sessions
from backend.security.login_guard import LoginGuard
from backend.security.password_workers import PasswordWorkers, PasswordWorkersBusy
from backend.security.passwords import needs_rehash, password_problem
from backend.security.throttle import Lockout
from backend.sso.sso_only import MESSAGE as SSO_ONLY_MESSAGE
from backend.sso.sso_only import SsoRequired, password_refused

MAX_ADMIN_TOKEN_DAYS = 3650


class RateLimited(AdminError):
    """Refused for now; ``retryAfter`` (seconds) says when to try again."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "retryAfter": self.retry_after_s}


def lockout_error(lockout: Lockout) -> RateLimited:
    where = "for this account" if lockout.scope == "account" else "from this address"
    return RateLimited(
        f"too many failed logins {where}; try again in {lockout.retry_after_s} seconds",
        retry_after_s=lockout.retry_after_s,
    )


async def _verify(workers: PasswordWorkers, password_hash: str | None, password: str) -> bool:
    try:
        return await workers.verify(password_hash, password)
    except PasswordWorkersBusy:
        raise RateLimited(
            "the server is busy checking other passwords; try again in a second",
            retry_after_s=1,
        ) from None


async def login(
    gw: Gateway, guard: LoginGuard, email: str, password: str, *, address: str
) -> tuple[str, AdminToken, User]:
    """Check the password and open a dashboard session: ``(token, row, user)``.

    One message for every failure, so the answer does not reveal which emails exist (unknown
    emails are throttled like known ones for the same reason).
    """
    account = (email or "").strip().lower()
    lockout = await guard.throttle.lockout(account, address)
    if lockout is not None:
        raise lockout_error(lockout)
    user = await User.get_or_none(email=account)
    ok = await _verify(guard.passwords, user.password_hash if user else None, password or "")
    if user is not None and await password_refused(user):
        # The same answer whether the password was right or not: no password oracle.
        if not ok:
            await guard.throttle.failed(account, address)
        raise SsoRequired(SSO_ONLY_MESSAGE)
    if user is None or not ok or user.status != "active":
        await guard.throttle.failed(account, address)
        raise NotAuthenticated("invalid email or password, or the account is suspended")
    await guard.throttle.succeeded(account)
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = await guard.passwords.hash(password)
        await user.save(update_fields=["password_hash"])
    token, row = await sessions.create_session(user, now=gw.clock())
    await audit.record(user, "auth.login", f"user:{user.id}")
    return token, row, user


async def logout(gw: Gateway, token: str | None) -> bool:
    if not token:
        return False
    row = await sessions.revoke(token, now=gw.clock())
    if row is None:
        return False
    # Live subscriptions opened with this token end now, on every instance.
    await sessions.announce_session_change(gw.bus, row.user_id)  # type: ignore[attr-defined]
    return True


async def change_password(
    gw: Gateway, guard: LoginGuard, actor: Actor, current: str, new: str
) -> None:
    if isinstance(actor, SystemActor):
        raise InvalidInput("the system actor has no password", field="currentPassword")
    if await password_refused(actor):
        raise SsoRequired(SSO_ONLY_MESSAGE)
    if not await _verify(guard.passwords, actor.password_hash, current or ""):
        raise InvalidInput("the current password is wrong", field="currentPassword")
    problem = password_problem(new or "")
    if problem:
        raise InvalidInput(f"the new password {problem}", field="newPassword")
    actor.password_hash = await guard.passwords.hash(new)
    await actor.save(update_fields=["password_hash"])
    await audit.record(actor, "auth.password", f"user:{actor.id}")


async def create_admin_token(
    gw: Gateway, actor: Actor, name: str, expires_in_days: int | None
) -> tuple[str, AdminToken]:
    """A long-lived token acting as ``actor`` (same role and scope), for automation."""
    require_admin(actor, "create admin tokens")
    if isinstance(actor, SystemActor):
        raise InvalidInput("admin tokens belong to a user", field="name")
    clean = v.text(name, "name")
    days = v.int_range(expires_in_days, "expiresInDays", 1, MAX_ADMIN_TOKEN_DAYS)
    now = gw.clock()
    expires_at = now + dt.timedelta(days=days) if days else None
    secret, row = await sessions.issue_token(
        actor, "admin", now=now, name=clean, expires_at=expires_at
    )
    await audit.record(actor, "admin_token.create", f"token:{row.prefix}")
    return secret, row


async def list_admin_tokens(actor: Actor) -> list[AdminToken]:
    require_admin(actor, "list admin tokens")
    qs = AdminToken.filter(kind="admin")
    if not is_super(actor):
        qs = qs.filter(user_id=actor.id)
    return await qs.order_by("-created_at", "-id")


async def revoke_admin_token(gw: Gateway, actor: Actor, token_id: int) -> AdminToken:
    require_admin(actor, "revoke admin tokens")
    row = await AdminToken.get_or_none(id=token_id, kind="admin")
    if row is None or (not is_super(actor) and row.user_id != actor.id):  # type: ignore[attr-defined]
        raise not_found("admin token", token_id)
    if row.revoked_at is None:
        row.revoked_at = gw.clock()
        await row.save(update_fields=["revoked_at"])
        await audit.record(actor, "admin_token.revoke", f"token:{row.prefix}")
        await sessions.announce_session_change(gw.bus, row.user_id)  # type: ignore[attr-defined]
    return row
