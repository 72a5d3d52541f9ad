"""argon2 passwords and hashed session/admin tokens."""

from __future__ import annotations

import datetime as dt

from backend.data.models.keys import AdminToken
from backend.data.models.tenancy import User
from backend.security import sessions
from backend.security.passwords import hash_password, password_problem, verify_password
from tests.graphql.harness import T0, Env


def test_passwords() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$") and "correct horse" not in h
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong horse")
    assert not verify_password(None, "correct horse")
    assert not verify_password("not a hash", "correct horse")
    assert password_problem("short") and password_problem("x" * 2000)
    assert password_problem("long enough") is None


def test_bearer() -> None:
    assert sessions.bearer("Bearer abc") == "abc"
    assert sessions.bearer("bearer  abc ") == "abc"
    assert sessions.bearer("Basic abc") is None
    assert sessions.bearer("Bearer ") is None
    assert sessions.bearer(None) is None


async def test_tokens(env: Env) -> None:
    user = await User.create(name="U", email="u@x.io")
    session, row = await sessions.create_session(user, now=T0)
    admin, admin_row = await sessions.issue_token(user, "admin", now=T0, name="ci")
    assert session.startswith("sbs-") and admin.startswith("sba-")
    assert admin_row.expires_at is None and row.expires_at == T0 + sessions.SESSION_TTL
    for secret in (session, admin):
        assert not await AdminToken.filter(token_hash=secret).exists()
        assert (await sessions.authenticate_token(secret, now=T0)) is not None
    later = T0 + sessions.SESSION_TTL + dt.timedelta(seconds=1)
    assert await sessions.authenticate_token(session, now=later) is None
    assert await sessions.authenticate_token(admin, now=later) is not None
    assert await sessions.revoke_token(admin, now=T0) is True
    assert await sessions.revoke_token(admin, now=T0) is False
    assert await sessions.authenticate_token(admin, now=T0) is None
    assert await sessions.authenticate_token("sb-12345678-abc", now=T0) is None
