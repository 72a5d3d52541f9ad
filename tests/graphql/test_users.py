"""Users through GraphQL: create / read / update / delete, validation, scope, pagination."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

from backend.data.models.tenancy import User
from backend.security.passwords import hash_password
from tests.graphql.harness import Env, World, data, error, gql

USER_FIELDS = (
    "id name email role status weeklyCapUsd organizationId hasPassword organization { slug }"
)
CREATE = f"mutation($i: CreateUserInput!) {{ createUser(input: $i) {{ {USER_FIELDS} }} }}"
UPDATE = (
    f"mutation($id: Int!, $i: UpdateUserInput!) {{ updateUser(id: $id, "
    f"input: $i) {{ {USER_FIELDS} }} }}"
)
DELETE = "mutation($id: Int!) { deleteUser(id: $id) }"
GET = f"query($id: Int!) {{ user(id: $id) {{ {USER_FIELDS} }} }}"


async def test_create_read_update_delete(env: Env, world: World) -> None:
    tok = world.token("super")
    created = data(
        await gql(
            env,
            CREATE,
            {
                "i": {
                    "name": "Nia New",
                    "email": "Nia@Example.com",
                    "role": "MEMBER",
                    "weeklyCapUsd": "25.50",
                    "organizationId": world.org_a.id,
                    "password": "correct horse battery",
                }
            },
            tok,
        )
    )["createUser"]
    assert created["email"] == "nia@example.com"  # normalized
    assert Decimal(created["weeklyCapUsd"]) == Decimal("25.5")
    assert created["hasPassword"] is True
    assert created["organization"] == {"slug": "acme"}
    # The hot path's snapshot knows the new user at once.
    assert env.gw.store.tenancy.users[created["id"]].weekly_cap_usd == Decimal("25.5")

    read = data(await gql(env, GET, {"id": created["id"]}, tok))["user"]
    assert read == created

    updated = data(
        await gql(
            env,
            UPDATE,
            {"id": created["id"], "i": {"status": "SUSPENDED", "weeklyCapUsd": None}},
            tok,
        )
    )["updateUser"]
    assert updated["status"] == "SUSPENDED"
    assert updated["weeklyCapUsd"] is None
    assert env.gw.store.tenancy.users[created["id"]].status == "suspended"

    assert data(await gql(env, DELETE, {"id": created["id"]}, tok))["deleteUser"] == created["id"]
    assert not await User.exists(id=created["id"])
    assert created["id"] not in env.gw.store.tenancy.users
    err = error(await gql(env, GET, {"id": created["id"]}, tok))
    assert err["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"email": "member_a@example.com"}, "email", "already exists"),
        ({"weeklyCapUsd": "-1"}, "weeklyCapUsd", "zero or more"),
        ({"weeklyCapUsd": "1.123456789"}, "weeklyCapUsd", "8 decimal"),
        ({"name": "   "}, "name", "must not be empty"),
        ({"password": "short"}, "password", "at least 8"),
        ({"organizationId": 99999}, "organizationId", "does not exist"),
    ],
)
async def test_create_validation(
    env: Env, world: World, patch: dict[str, object], field: str, words: str
) -> None:
    user = {"name": "Val Id", "email": "valid@example.com", **patch}
    err = error(await gql(env, CREATE, {"i": user}, world.token("super")))
    assert err["code"] == "BAD_USER_INPUT"
    assert err["field"] == field
    assert words in err["message"]
    assert not await User.exists(email="valid@example.com")


@pytest.mark.parametrize(
    ("field", "value", "enum"), [("role", "owner", "Role"), ("status", "gone", "UserStatus")]
)
async def test_a_role_or_status_outside_its_enum_is_refused_by_graphql(
    env: Env, world: World, field: str, value: str, enum: str
) -> None:
    user = {"name": "Val Id", "email": "valid@example.com", field: value}
    body = await gql(env, CREATE, {"i": user}, world.token("super"))
    assert body.get("data") is None
    assert f"'{value}' does not exist in '{enum}'" in body["errors"][0]["message"]
    assert not await User.exists(email="valid@example.com")


async def test_org_admin_creates_in_own_org_only(env: Env, world: World) -> None:
    tok = world.token("admin_a")
    made = data(await gql(env, CREATE, {"i": {"name": "A", "email": "a1@example.com"}}, tok))
    assert made["createUser"]["organizationId"] == world.org_a.id

    err = error(
        await gql(
            env,
            CREATE,
            {"i": {"name": "B", "email": "b1@example.com", "organizationId": world.org_b.id}},
            tok,
        )
    )
    assert err["code"] == "FORBIDDEN"
    err = error(
        await gql(
            env, CREATE, {"i": {"name": "S", "email": "s1@example.com", "role": "SUPER_ADMIN"}}, tok
        )
    )
    assert err["code"] == "FORBIDDEN"
    # Nor can they reach a user of another organization.
    other = world.users["member_b"].id
    assert error(await gql(env, GET, {"id": other}, tok))["code"] == "FORBIDDEN"
    upd = await gql(env, UPDATE, {"id": other, "i": {"name": "x"}}, tok)
    assert error(upd)["code"] == "FORBIDDEN"
    assert error(await gql(env, DELETE, {"id": other}, tok))["code"] == "FORBIDDEN"
    # Nor promote their own member to super_admin.
    mine = world.users["member_a"].id
    err = error(await gql(env, UPDATE, {"id": mine, "i": {"role": "SUPER_ADMIN"}}, tok))
    assert err["code"] == "FORBIDDEN"


async def test_last_super_admin_is_protected(env: Env, world: World) -> None:
    tok = world.token("super")
    me = world.users["super"].id
    err = error(await gql(env, UPDATE, {"id": me, "i": {"role": "MEMBER"}}, tok))
    assert err["code"] == "BAD_USER_INPUT"
    assert "last active super_admin" in err["message"]
    assert error(await gql(env, DELETE, {"id": me}, tok))["code"] == "BAD_USER_INPUT"


LIST = """query($f: UserFilter, $s: UserSort!, $first: Int, $after: String) {
  users(filter: $f, sort: $s, first: $first, after: $after) {
    nodes { email } pageInfo { hasNextPage endCursor } totalCount
  }
}"""


async def test_list_filter_sort_and_paginate(env: Env, world: World) -> None:
    tok = world.token("super")
    seen: list[str] = []
    after = None
    while True:
        page = data(await gql(env, LIST, {"s": "EMAIL_ASC", "first": 2, "after": after}, tok))[
            "users"
        ]
        assert page["totalCount"] == 5
        seen += [n["email"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(u.email for u in world.users.values())

    f = {"organizationId": world.org_a.id, "role": "MEMBER"}
    page = data(await gql(env, LIST, {"f": f, "s": "NAME_ASC"}, tok))["users"]
    assert [n["email"] for n in page["nodes"]] == ["member_a@example.com"]
    page = data(await gql(env, LIST, {"f": {"search": "admin"}, "s": "NAME_DESC"}, tok))["users"]
    assert [n["email"] for n in page["nodes"]] == ["admin_b@example.com", "admin_a@example.com"]

    # An org_admin's list is their organization, whatever the filter says.
    page = data(await gql(env, LIST, {"s": "EMAIL_ASC"}, world.token("admin_b")))["users"]
    assert [n["email"] for n in page["nodes"]] == ["admin_b@example.com", "member_b@example.com"]
    page = data(
        await gql(
            env,
            LIST,
            {"f": {"organizationId": world.org_a.id}, "s": "EMAIL_ASC"},
            world.token("admin_b"),
        )
    )["users"]
    assert page["nodes"] == []


async def test_bad_cursor_and_page_size(env: Env, world: World) -> None:
    tok = world.token("super")
    err = error(await gql(env, LIST, {"s": "EMAIL_ASC", "after": "garbage!"}, tok))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "after")
    page = data(await gql(env, LIST, {"s": "EMAIL_ASC", "first": 1}, tok))["users"]
    cursor = page["pageInfo"]["endCursor"]
    # A cursor from one sort order is refused under another.
    err = error(await gql(env, LIST, {"s": "NAME_ASC", "after": cursor}, tok))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "after")
    err = error(await gql(env, LIST, {"s": "EMAIL_ASC", "first": 0}, tok))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "first")


async def test_password_hashing_leaves_the_event_loop_free(
    env: Env, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # argon2 stands in as a hash that blocks until the loop proves it still runs: on the loop it
    # would block the loop itself and the flag would never be set.
    loop = asyncio.get_running_loop()
    hashing, loop_ran = asyncio.Event(), threading.Event()

    def slow_hash(password: str) -> str:
        loop.call_soon_threadsafe(hashing.set)
        assert loop_ran.wait(5), "the event loop did not run while the password was hashed"
        return hash_password(password)

    monkeypatch.setattr("backend.admin.tenancy.hash_password", slow_hash)

    async def mark() -> None:
        await hashing.wait()
        loop_ran.set()

    marker = loop.create_task(mark())
    created = data(
        await gql(
            env,
            CREATE,
            {
                "i": {
                    "name": "Off Loop",
                    "email": "off-loop@example.com",
                    "role": "MEMBER",
                    "organizationId": world.org_a.id,
                    "password": "correct horse battery",
                }
            },
            world.token("super"),
        )
    )["createUser"]
    await marker
    assert created["hasPassword"] is True
