"""``bootstrap_super_admin``: idempotent for the user, a new working key every run."""

from __future__ import annotations

import pytest

from backend.admin import auth
from backend.admin.bootstrap import bootstrap_super_admin
from backend.admin.errors import InvalidInput, NotAuthenticated
from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import User
from backend.security.api_keys import hash_key
from backend.security.login_guard import build_login_guard
from tests.graphql.harness import Env


async def test_creates_then_updates(env: Env) -> None:
    user, first = await bootstrap_super_admin("Root@Example.com", "first-password", "Root")
    assert (user.email, user.role, user.status, user.name) == (
        "root@example.com",
        "super_admin",
        "active",
        "Root",
    )
    await User.filter(id=user.id).update(role="member", status="suspended")
    again, second = await bootstrap_super_admin("root@example.com", "second-password")
    assert again.id == user.id and await User.all().count() == 1
    assert (again.role, again.status, again.name) == ("super_admin", "active", "Root")
    assert first != second
    keys = await ApiKey.filter(user_id=user.id)
    assert {k.key_hash for k in keys} == {hash_key(first), hash_key(second)}
    assert first not in {k.prefix for k in keys}
    # The new password works, the old one does not.
    guard = build_login_guard(env.gw.settings, clock=lambda: env.gw.clock().timestamp())
    token, _, who = await auth.login(
        env.gw, guard, "root@example.com", "second-password", address="127.0.0.1"
    )
    assert who.id == user.id and token
    with pytest.raises(NotAuthenticated):
        await auth.login(env.gw, guard, "root@example.com", "first-password", address="127.0.0.1")
    guard.close()


async def test_refuses_bad_input(env: Env) -> None:
    with pytest.raises(InvalidInput) as bad_pw:
        await bootstrap_super_admin("root@example.com", "short")
    assert bad_pw.value.field == "password"
    with pytest.raises(InvalidInput) as bad_mail:
        await bootstrap_super_admin("not-an-email", "long-enough-password")
    assert bad_mail.value.field == "email"
    assert await User.all().count() == 0
