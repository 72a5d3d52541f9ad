"""Alias and fallback-chain targets are checked against the model catalog: a name it does not
know (a typo such as ``openai/gpt-9-does-not-exist``) is refused with a GraphQL error naming it
unless ``confirmUnknownTarget`` is sent; known models, price overrides and aliases pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.data.models.routing import FallbackChain, ModelAlias
from tests.graphql.harness import Env, World, data, error, gql

CREATE = """
mutation($i: CreateModelAliasInput!) { createModelAlias(input: $i) { id targetModel } }"""
UPDATE = """
mutation($id: Int!, $i: UpdateModelAliasInput!) { updateModelAlias(id: $id, input: $i) { id } }"""
CHAIN = """
mutation($p: String!, $c: [String!]!, $ok: Boolean!) {
  setFallbackChain(primaryModel: $p, chain: $c, confirmUnknownTarget: $ok) { chain }
}"""
TYPO = "openai/gpt-9-does-not-exist"


@dataclass(frozen=True)
class Entry:
    model: str
    source: str


class CatalogRouter:
    def catalog(self, configured: Any) -> list[Entry]:
        return [
            Entry("openai/gpt-4o-mini", "price-table"),
            Entry("ollama/llama3.2", "ollama"),
            Entry(TYPO, "config"),  # listed only because something names it: not "known"
        ]

    def known_providers(self) -> frozenset[str]:
        return frozenset({"openai", "anthropic", "ollama"})


class Providers:
    def configured(self) -> dict[str, Any]:
        return {"openai": object(), "ollama": object()}


async def test_alias_to_an_unknown_model_needs_confirmation(env: Env, world: World) -> None:
    env.gw.router = CatalogRouter()
    env.gw.providers = Providers()
    sup = world.token("super")
    refused = error(
        await gql(env, CREATE, {"i": {"requestedModel": "gpt-9", "targetModel": TYPO}}, sup)
    )
    assert refused["code"] == "BAD_USER_INPUT" and refused["field"] == "targetModel"
    assert TYPO in refused["message"] and "confirmUnknownTarget" in refused["message"]
    assert await ModelAlias.filter(requested_model="gpt-9").count() == 0

    body = await gql(
        env,
        CREATE,
        {"i": {"requestedModel": "gpt-9", "targetModel": TYPO, "confirmUnknownTarget": True}},
        sup,
    )
    assert data(body)["createModelAlias"]["targetModel"] == TYPO
    # Known names: the catalog's (bare or with the provider), Ollama's, another alias.
    for requested, target in (
        ("mini", "openai/gpt-4o-mini"),
        ("mini2", "gpt-4o-mini"),
        ("local", "ollama/llama3.2"),
        ("nine", "gpt-9"),
    ):
        ok = await gql(
            env, CREATE, {"i": {"requestedModel": requested, "targetModel": target}}, sup
        )
        assert data(ok)["createModelAlias"]["targetModel"] == target
    # An org_admin's alias is checked the same way, and so is a changed target.
    alias_id = data(ok)["createModelAlias"]["id"]
    bad = await gql(
        env, UPDATE, {"id": alias_id, "i": {"targetModel": "anthropic/claud-typo"}}, sup
    )
    assert "anthropic/claud-typo" in error(bad)["message"]
    org_alias = {
        "requestedModel": "team",
        "targetModel": "openai/gpt-4o-mni",
        "organizationId": world.org_a.id,
    }
    assert error(await gql(env, CREATE, {"i": org_alias}, world.token("admin_a")))["field"] == (
        "targetModel"
    )


async def test_chain_models_are_checked(env: Env, world: World) -> None:
    env.gw.router = CatalogRouter()
    env.gw.providers = Providers()
    sup = world.token("super")
    variables = {"p": "openai/gpt-4o-mini", "c": ["ollama/llama3.2", TYPO], "ok": False}
    refused = await gql(env, CHAIN, variables, sup)
    err = refused["errors"][0]
    assert err["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "chain",
        "unknownModels": [TYPO],
    }
    assert await FallbackChain.all().count() == 0
    saved = data(await gql(env, CHAIN, {**variables, "ok": True}, sup))["setFallbackChain"]
    assert saved["chain"] == ["ollama/llama3.2", TYPO]
