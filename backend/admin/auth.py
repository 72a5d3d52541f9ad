"""Dashboard login, logout, password change and admin tokens for automation."""

from __future__ import annotations

import datetime as dt

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, SystemActor, is_super, require_admin
from backend.admin.errors import InvalidInput, NotAuthenticated, NotFound
from backend.data.models.keys import AdminToken
from backend.data.models.tenancy import User
from backend.gateway import Gateway
from backend.security import sessions
from backend.security.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)

MAX_ADMIN_TOKEN_DAYS = 3650


async def login(gw: Gateway, email: str, password: str) -> tuple[str, AdminToken, User]:
    """Check the password and open a dashboard session: ``(token, row, user)``.

    One message for every failure, so the answer does not reveal which emails exist.
    """
    user = await User.get_or_none(email=(email or "").strip().lower())
    ok = verify_password(user.password_hash if user else None, password or "")
    if user is None or not ok or user.status != "active":
        raise NotAuthenticated("invalid email or password, or the account is suspended")
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        await user.save(update_fields=["password_hash"])
    token, row = await sessions.create_session(user, now=gw.clock())
    await audit.record(user, "auth.login", f"user:{user.id}")
    return token, row, user


async def logout(gw: Gateway, token: str | None) -> bool:
    if not token:
        return False
    return await sessions.revoke_token(token, now=gw.clock())


async def change_password(gw: Gateway, actor: Actor, current: str, new: str) -> None:
    if isinstance(actor, SystemActor):
        raise InvalidInput("the system actor has no password", field="currentPassword")
    if not verify_password(actor.password_hash, current or ""):
        raise InvalidInput("the current password is wrong", field="currentPassword")
    problem = password_problem(new or "")
    if problem:
        raise InvalidInput(f"the new password {problem}", field="newPassword")
    actor.password_hash = hash_password(new)
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
        raise NotFound(f"admin token {token_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = gw.clock()
        await row.save(update_fields=["revoked_at"])
        await audit.record(actor, "admin_token.revoke", f"token:{row.prefix}")
    return row
