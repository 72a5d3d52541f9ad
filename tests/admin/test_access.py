"""Role and organization checks of the admin services, without GraphQL in between."""

from __future__ import annotations

import pytest

from backend.admin import keys, tenancy
from backend.admin.access import SYSTEM, org_scope, require_user_access
from backend.admin.errors import Forbidden, InvalidInput
from backend.data.models.tenancy import Organization, User
from tests.graphql.harness import Env


async def test_system_actor_is_unrestricted_and_none_is_not_it(env: Env) -> None:
    org = await Organization.create(name="A", slug="a")
    user = await tenancy.create_user(
        env.gw, SYSTEM, {"name": "U", "email": "u@x.io", "organization_id": org.id}
    )
    key, secret = await keys.create_key(env.gw, SYSTEM, {"user_id": user.id})
    assert secret.startswith(key.prefix)
    assert org_scope(SYSTEM, "x") is None
    with pytest.raises(InvalidInput):
        await keys.create_key(env.gw, SYSTEM, {})  # the system has no own keys
    with pytest.raises(AttributeError):
        org_scope(None, "x")  # type: ignore[arg-type]


async def test_org_admin_without_org_administers_nothing(env: Env) -> None:
    lonely = await User.create(name="L", email="l@x.io", role="org_admin")
    with pytest.raises(Forbidden):
        org_scope(lonely, "list users")
    with pytest.raises(Forbidden):
        await tenancy.list_users(lonely)


async def test_user_access_rules(env: Env) -> None:
    org_a = await Organization.create(name="A", slug="a")
    org_b = await Organization.create(name="B", slug="b")
    admin = await User.create(name="Ad", email="ad@x.io", role="org_admin", organization=org_a)
    member = await User.create(name="Me", email="me@x.io", organization=org_a)
    other = await User.create(name="Ot", email="ot@x.io", organization=org_b)
    boss = await User.create(name="Bo", email="bo@x.io", role="super_admin", organization=org_a)
    require_user_access(admin, member, "view", self_ok=False)
    require_user_access(member, member, "view", self_ok=True)
    for actor, target, self_ok in (
        (admin, other, False),
        (admin, boss, False),  # a super_admin in their org is still out of reach
        (member, member, False),
        (member, admin, True),
    ):
        with pytest.raises(Forbidden):
            require_user_access(actor, target, "view", self_ok=self_ok)
