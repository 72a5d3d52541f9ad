"""Query protections: depth, alias and token limits; unexpected errors masked, ours not."""

from __future__ import annotations

import pytest

from backend.graphql.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.graphql.harness import Env, World, data, error, gql


async def test_depth_limit(env: Env, world: World) -> None:
    # me -> organization -> owner -> organization -> owner ... deeper than allowed.
    inner = "id"
    for i in range(MAX_DEPTH + 1):
        inner = f"{'organization' if i % 2 == 0 else 'owner'} {{ {inner} }}"
    body = await gql(env, f"{{ me {{ {inner} }} }}", token=world.token("super"))
    assert "exceeds maximum operation depth" in error(body)["message"]
    assert body.get("data") is None
    ok = await gql(env, "{ me { organization { owner { email } } } }", token=world.token("admin_a"))
    assert data(ok)["me"]["organization"]["owner"] is None


async def test_alias_and_token_limits(env: Env, world: World) -> None:
    aliases = " ".join(f"a{i}: me {{ id }}" for i in range(MAX_ALIASES + 1))
    body = await gql(env, f"{{ {aliases} }}", token=world.token("super"))
    assert "aliases found" in error(body)["message"]
    fields = " ".join("id" for _ in range(MAX_TOKENS))
    body = await gql(env, f"{{ me {{ {fields} }} }}", token=world.token("super"))
    assert "token" in error(body)["message"].lower()


async def test_unexpected_errors_are_masked(
    env: Env, world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("backend.admin.tenancy.list_users", boom)
    body = await gql(env, "{ users { totalCount } }", token=world.token("super"))
    err = error(body)
    assert err["message"] == "Unexpected error."
    assert "hunter2" not in str(body)
    assert "hunter2" in caplog.text  # logged for the operator, not shown to the client
    # Our own errors keep their message and code.
    err = error(await gql(env, "{ user(id: 999999) { id } }", token=world.token("super")))
    assert (err["code"], err["message"]) == ("NOT_FOUND", "user 999999 does not exist")


async def test_graphql_validation_errors_are_not_masked(env: Env, world: World) -> None:
    body = await gql(env, "{ users { nope } }", token=world.token("super"))
    assert "Cannot query field 'nope'" in error(body)["message"]
