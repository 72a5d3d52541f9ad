"""Provider credentials: super_admin only, the key write-only and encrypted, changes audited.

The secret used here is grepped for in every response, the database rows and the audit trail.
"""

from __future__ import annotations

import orjson

from backend.data.models.logs import AuditLog
from backend.data.models.settings import ProviderCredential
from backend.security.crypto import decrypt_secret
from tests.graphql.harness import Env, World, data, error, gql

SECRET = "sk-test-THIS-IS-THE-RAW-SECRET-9f3a"
FIELDS = (
    "id provider kind baseUrl apiKeySet apiKeyLast4 organization "
    "project azureDeployment apiVersion enabled updatedBy"
)
SET = (
    f"mutation($p: String!, $i: ProviderCredentialInput!) {{ "
    f"setProviderCredential(provider: $p, input: $i) {{ {FIELDS} }} }}"
)
LIST = f"{{ providerCredentials {{ {FIELDS} }} }}"
DELETE = "mutation($p: String!) { deleteProviderCredential(provider: $p) }"


def leaks(body: object) -> bool:
    return SECRET in orjson.dumps(body).decode()


async def test_write_only_encrypted_and_audited(env: Env, world: World) -> None:
    tok = world.token("super")
    responses = []
    made = await gql(
        env,
        SET,
        {"p": "openai", "i": {"kind": "OPENAI", "apiKey": SECRET, "organization": "org-1"}},
        tok,
    )
    responses.append(made)
    row = data(made)["setProviderCredential"]
    assert (row["apiKeySet"], row["apiKeyLast4"], row["updatedBy"]) == (
        True,
        "9f3a",
        world.users["super"].id,
    )

    stored = await ProviderCredential.get(provider="openai")
    assert stored.api_key_ciphertext and SECRET not in stored.api_key_ciphertext
    # Encrypted under the gateway key, bound to this provider's row.
    assert (
        decrypt_secret(env.gw.secret_key or b"", stored.api_key_ciphertext, "provider:openai")
        == SECRET
    )

    responses.append(
        await gql(
            env,
            SET,
            {"p": "openai", "i": {"baseUrl": "https://proxy.example/v1", "enabled": False}},
            tok,
        )
    )
    responses.append(await gql(env, LIST, token=tok))
    listed = data(responses[-1])["providerCredentials"]
    assert listed[0]["baseUrl"] == "https://proxy.example/v1" and listed[0]["apiKeyLast4"] == "9f3a"
    assert listed[0]["enabled"] is False

    audit = [a for a in await AuditLog.filter(target="provider:openai").order_by("id")]
    assert [a.action for a in audit] == ["credential.create", "credential.update"]
    assert audit[0].detail == {"fields": ["api_key", "kind", "organization"]}
    assert audit[1].detail == {"fields": ["base_url", "enabled"]}
    assert audit[0].actor_id == world.users["super"].id
    responses.append(await gql(env, "{ auditLog { nodes { action target detail } } }", token=tok))
    for body in responses:
        assert not leaks(body)
    for a in await AuditLog.all():
        assert SECRET not in orjson.dumps(a.detail).decode()

    # Clearing the key removes ciphertext and last4.
    cleared = data(await gql(env, SET, {"p": "openai", "i": {"apiKey": None}}, tok))[
        "setProviderCredential"
    ]
    assert (cleared["apiKeySet"], cleared["apiKeyLast4"]) == (False, None)
    assert (await ProviderCredential.get(provider="openai")).api_key_ciphertext is None

    assert data(await gql(env, DELETE, {"p": "openai"}, tok))["deleteProviderCredential"] is True
    assert await ProviderCredential.all().count() == 0
    assert error(await gql(env, DELETE, {"p": "openai"}, tok))["code"] == "NOT_FOUND"


async def test_validation(env: Env, world: World) -> None:
    tok = world.token("super")
    cases = [
        ("openai", {"apiKey": SECRET}, "kind"),  # a new provider needs a kind
        ("Open AI", {"kind": "OPENAI"}, "provider"),
        ("openai", {"kind": "OPENAI", "baseUrl": "not a url"}, "baseUrl"),
        ("openai", {"kind": "OPENAI", "apiKey": "short"}, "apiKey"),
        ("openai", {"kind": "OPENAI", "apiKey": "has a space in it"}, "apiKey"),
    ]
    for provider, i, field in cases:
        body = await gql(env, SET, {"p": provider, "i": i}, tok)
        err = error(body)
        assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field), i
        assert not leaks(body)
    # An unknown kind is not a ProviderKind: GraphQL refuses the variable, naming the enum.
    body = await gql(env, SET, {"p": "openai", "i": {"kind": "mystery"}}, tok)
    assert body.get("data") is None
    assert "'mystery' does not exist in 'ProviderKind'" in body["errors"][0]["message"]
    assert await ProviderCredential.all().count() == 0


async def test_no_secret_key_is_a_clear_error(env: Env, world: World) -> None:
    env.gw.secret_key = None
    try:
        body = await gql(
            env,
            SET,
            {"p": "openai", "i": {"kind": "OPENAI", "apiKey": SECRET}},
            world.token("super"),
        )
    finally:
        env.gw.secret_key = b"k" * 32
    assert error(body)["code"] == "FAILED_PRECONDITION"
    assert not leaks(body)


async def test_only_super_admin(env: Env, world: World) -> None:
    await gql(
        env,
        SET,
        {"p": "anthropic", "i": {"kind": "ANTHROPIC", "apiKey": SECRET}},
        world.token("super"),
    )
    for role in ("admin_a", "member_a"):
        tok = world.token(role)
        for body in (
            await gql(env, LIST, token=tok),
            await gql(env, SET, {"p": "anthropic", "i": {"apiKey": "sk-other-key-1234"}}, tok),
            await gql(env, DELETE, {"p": "anthropic"}, tok),
        ):
            assert error(body)["code"] == "FORBIDDEN"
            assert not leaks(body)
    assert (await ProviderCredential.get(provider="anthropic")).api_key_last4 == SECRET[-4:]
