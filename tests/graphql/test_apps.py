"""Apps through GraphQL: CRUD, validation, organization scope."""

from __future__ import annotations

import pytest

from backend.data.models.tenancy import App
from tests.graphql.harness import Env, World, data, error, gql

FIELDS = "id name slug contact active dlpEnabled organizationId organization { slug } createdAt"
CREATE = f"mutation($i: CreateAppInput!) {{ createApp(input: $i) {{ {FIELDS} }} }}"
UPDATE = (
    f"mutation($id: Int!, $i: UpdateAppInput!) {{ updateApp(id: $id, input: $i) {{ {FIELDS} }} }}"
)
DELETE = "mutation($id: Int!) { deleteApp(id: $id) }"
GET = f"query($id: Int!) {{ app(id: $id) {{ {FIELDS} }} }}"
LIST = (
    f"query($a: Boolean) {{ apps(active: $a, sort: SLUG_ASC) {{ nodes "
    f"{{ {FIELDS} }} totalCount }} }}"
)


async def test_crud_by_org_admin(env: Env, world: World) -> None:
    tok = world.token("admin_a")
    app = data(
        await gql(
            env,
            CREATE,
            {"i": {"name": "Reports", "slug": "reports", "contact": "ops@acme.test"}},
            tok,
        )
    )["createApp"]
    assert app["organization"] == {"slug": "acme"} and app["active"] is True
    assert env.gw.store.tenancy.apps[app["id"]].org_id == world.org_a.id

    assert data(await gql(env, GET, {"id": app["id"]}, tok))["app"] == app
    upd = data(await gql(env, UPDATE, {"id": app["id"], "i": {"active": False}}, tok))["updateApp"]
    assert upd["active"] is False
    assert env.gw.store.tenancy.apps[app["id"]].active is False
    listed = data(await gql(env, LIST, {"a": False}, tok))["apps"]
    assert [n["slug"] for n in listed["nodes"]] == ["reports"]

    assert data(await gql(env, DELETE, {"id": app["id"]}, tok))["deleteApp"] == app["id"]
    assert not await App.exists(id=app["id"])
    assert app["id"] not in env.gw.store.tenancy.apps


@pytest.mark.parametrize(
    ("patch", "field"),
    [({"slug": "billing"}, "slug"), ({"slug": "-bad-"}, "slug"), ({"name": ""}, "name")],
)
async def test_validation(env: Env, world: World, patch: dict[str, object], field: str) -> None:
    err = error(
        await gql(env, CREATE, {"i": {"name": "X", "slug": "x-app", **patch}}, world.token("super"))
    )
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field)


async def test_scope(env: Env, world: World) -> None:
    listed = data(await gql(env, LIST, {}, world.token("admin_b")))["apps"]
    assert [n["slug"] for n in listed["nodes"]] == ["support"]
    assert (
        error(await gql(env, GET, {"id": world.app_a.id}, world.token("admin_b")))["code"]
        == "FORBIDDEN"
    )
    err = error(
        await gql(
            env,
            CREATE,
            {"i": {"name": "X", "slug": "x", "organizationId": world.org_a.id}},
            world.token("admin_b"),
        )
    )
    assert err["code"] == "FORBIDDEN"
    err = error(
        await gql(
            env,
            UPDATE,
            {"id": world.app_a.id, "i": {"organizationId": world.org_b.id}},
            world.token("admin_a"),
        )
    )
    assert err["code"] == "FORBIDDEN"
    assert error(await gql(env, LIST, {}, world.token("member_a")))["code"] == "FORBIDDEN"
    assert data(await gql(env, LIST, {}, world.token("super")))["apps"]["totalCount"] == 2
