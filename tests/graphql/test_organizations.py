"""Organizations through GraphQL: CRUD, member counts (batched), validation, scope."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backend.admin import tenancy
from backend.data.models.tenancy import Organization, User
from tests.graphql.harness import Env, World, data, error, gql

FIELDS = (
    "id name slug ownerId owner { email } spendCapUsd capPeriod "
    "rollover dlpEnabled memberCount createdAt"
)
CREATE = (
    f"mutation($i: CreateOrganizationInput!) {{ createOrganization(input: $i) {{ {FIELDS} }} }}"
)
UPDATE = (
    f"mutation($id: Int!, $i: UpdateOrganizationInput!) {{ "
    f"updateOrganization(id: $id, input: $i) {{ {FIELDS} }} }}"
)
DELETE = "mutation($id: Int!) { deleteOrganization(id: $id) }"
GET = f"query($id: Int!) {{ organization(id: $id) {{ {FIELDS} }} }}"
LIST = (
    f"query($s: String, $first: Int, $after: String) {{ "
    "organizations(search: $s, sort: NAME_ASC, first: $first, after: "
    f"$after) {{ nodes {{ {FIELDS} }} totalCount pageInfo {{ "
    f"hasNextPage endCursor }} }} }}"
)


async def test_crud(env: Env, world: World) -> None:
    tok = world.token("super")
    owner = world.users["admin_a"].id
    org = data(
        await gql(
            env,
            CREATE,
            {
                "i": {
                    "name": "Initech",
                    "slug": "initech",
                    "ownerId": owner,
                    "spendCapUsd": "1000",
                    "capPeriod": "WEEKLY",
                    "rollover": True,
                }
            },
            tok,
        )
    )["createOrganization"]
    assert org["owner"] == {"email": "admin_a@example.com"}
    assert Decimal(org["spendCapUsd"]) == 1000
    assert (org["capPeriod"], org["rollover"], org["memberCount"]) == ("WEEKLY", True, 0)
    assert env.gw.store.tenancy.orgs[org["id"]].cap_period == "weekly"

    await User.create(name="p", email="p@example.com", organization_id=org["id"])
    assert data(await gql(env, GET, {"id": org["id"]}, tok))["organization"]["memberCount"] == 1

    upd = data(
        await gql(
            env, UPDATE, {"id": org["id"], "i": {"spendCapUsd": None, "dlpEnabled": True}}, tok
        )
    )["updateOrganization"]
    assert (upd["spendCapUsd"], upd["dlpEnabled"]) == (None, True)
    assert env.gw.store.tenancy.orgs[org["id"]].dlp_enabled is True

    assert data(await gql(env, DELETE, {"id": org["id"]}, tok))["deleteOrganization"] == org["id"]
    assert not await Organization.exists(id=org["id"])
    # Its member stays, without an organization.
    assert (await User.get(email="p@example.com")).organization_id is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"slug": "Not A Slug"}, "slug"),
        ({"slug": "acme"}, "slug"),
        ({"spendCapUsd": "-5"}, "spendCapUsd"),
        ({"ownerId": 424242}, "ownerId"),
        ({"name": ""}, "name"),
    ],
)
async def test_validation(env: Env, world: World, patch: dict[str, object], field: str) -> None:
    org = {"name": "New", "slug": "new-org", **patch}
    err = error(await gql(env, CREATE, {"i": org}, world.token("super")))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field)


async def test_an_unknown_cap_period_is_not_a_cap_period(env: Env, world: World) -> None:
    org = {"name": "New", "slug": "new-org", "capPeriod": "daily"}
    body = await gql(env, CREATE, {"i": org}, world.token("super"))
    assert body.get("data") is None
    assert "'daily' does not exist in 'CapPeriod'" in body["errors"][0]["message"]


async def test_member_counts_are_batched(
    env: Env, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        await Organization.create(name=f"Org {i}", slug=f"org-{i}")
    calls: list[list[int]] = []
    real = tenancy.member_counts

    async def counting(ids: list[int]) -> dict[int, int]:
        calls.append(ids)
        return await real(ids)

    monkeypatch.setattr("backend.graphql.context.member_counts", counting)
    page = data(await gql(env, LIST, {}, world.token("super")))["organizations"]
    assert page["totalCount"] == 7
    counts = {n["slug"]: n["memberCount"] for n in page["nodes"]}
    assert counts["acme"] == 2 and counts["globex"] == 2 and counts["org-0"] == 0
    assert len(calls) == 1 and len(calls[0]) == 7  # one query for the whole page


async def test_scope(env: Env, world: World) -> None:
    page = data(await gql(env, LIST, {}, world.token("admin_a")))["organizations"]
    assert [n["slug"] for n in page["nodes"]] == ["acme"]
    mine = data(await gql(env, GET, {"id": world.org_a.id}, world.token("member_a")))
    assert mine["organization"]["slug"] == "acme"
    err = error(await gql(env, GET, {"id": world.org_b.id}, world.token("admin_a")))
    assert err["code"] == "FORBIDDEN"
    upd = await gql(
        env, UPDATE, {"id": world.org_a.id, "i": {"spendCapUsd": "1"}}, world.token("admin_a")
    )
    assert error(upd)["code"] == "FORBIDDEN"
    assert error(await gql(env, LIST, {}, world.token("member_a")))["code"] == "FORBIDDEN"
