"""Model router through GraphQL: aliases, agent configs (+ YAML import), fallback chains,
price overrides and the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from backend.data.models.routing import AgentConfig, ModelAlias
from tests.graphql.harness import Env, World, data, error, gql

ALIAS = "id requestedModel targetModel scope organizationId organization { slug }"
CREATE_ALIAS = (
    f"mutation($i: CreateModelAliasInput!) {{ createModelAlias(input: $i) {{ {ALIAS} }} }}"
)
UPDATE_ALIAS = (
    f"mutation($id: Int!, $i: UpdateModelAliasInput!) {{ "
    f"updateModelAlias(id: $id, input: $i) {{ {ALIAS} }} }}"
)
DELETE_ALIAS = "mutation($id: Int!) { deleteModelAlias(id: $id) }"
LIST_ALIASES = f"query($s: AliasScope) {{ modelAliases(scope: $s) {{ {ALIAS} }} }}"


async def test_alias_crud_and_scope(env: Env, world: World) -> None:
    sup, adm = world.token("super"), world.token("admin_a")
    g = data(
        await gql(
            env,
            CREATE_ALIAS,
            {"i": {"requestedModel": "gpt-4o", "targetModel": "openai/gpt-4o-mini"}},
            sup,
        )
    )["createModelAlias"]
    assert (g["scope"], g["organization"]) == ("GLOBAL", None)
    o = data(
        await gql(
            env,
            CREATE_ALIAS,
            {
                "i": {
                    "requestedModel": "gpt-4o",
                    "targetModel": "anthropic/claude-haiku",
                    "organizationId": world.org_a.id,
                }
            },
            adm,
        )
    )["createModelAlias"]
    assert (o["scope"], o["organization"]) == ("ORG", {"slug": "acme"})
    routing = env.gw.store.routing
    assert routing.global_aliases == {"gpt-4o": "openai/gpt-4o-mini"}
    assert routing.org_aliases == {world.org_a.id: {"gpt-4o": "anthropic/claude-haiku"}}

    # org_admins read global aliases and their own, write only their own.
    seen = data(await gql(env, LIST_ALIASES, {}, world.token("admin_b")))["modelAliases"]
    assert [a["id"] for a in seen] == [g["id"]]
    assert (
        error(await gql(env, UPDATE_ALIAS, {"id": g["id"], "i": {"targetModel": "x"}}, adm))["code"]
        == "FORBIDDEN"
    )
    err = error(
        await gql(env, CREATE_ALIAS, {"i": {"requestedModel": "a", "targetModel": "b"}}, adm)
    )
    assert err["code"] == "FORBIDDEN"
    assert (
        error(await gql(env, DELETE_ALIAS, {"id": o["id"]}, world.token("admin_b")))["code"]
        == "NOT_FOUND"
    )
    assert error(await gql(env, LIST_ALIASES, {}, world.token("member_a")))["code"] == "FORBIDDEN"

    upd = data(
        await gql(
            env, UPDATE_ALIAS, {"id": o["id"], "i": {"targetModel": "anthropic/claude-sonnet"}}, adm
        )
    )
    assert upd["updateModelAlias"]["targetModel"] == "anthropic/claude-sonnet"
    assert env.gw.store.routing.org_aliases[world.org_a.id]["gpt-4o"] == "anthropic/claude-sonnet"
    assert data(await gql(env, LIST_ALIASES, {"s": "ORG"}, sup))["modelAliases"][0]["id"] == o["id"]

    assert data(await gql(env, DELETE_ALIAS, {"id": o["id"]}, adm))["deleteModelAlias"] == o["id"]
    assert env.gw.store.routing.org_aliases == {}


async def test_alias_validation(env: Env, world: World) -> None:
    sup = world.token("super")
    await gql(env, CREATE_ALIAS, {"i": {"requestedModel": "m1", "targetModel": "m2"}}, sup)
    cases = [
        ({"requestedModel": "m1", "targetModel": "m3"}, "requestedModel", "already has an alias"),
        ({"requestedModel": "m4", "targetModel": "m4"}, "targetModel", "different model"),
        ({"requestedModel": "has space", "targetModel": "m4"}, "requestedModel", "spaces"),
        ({"requestedModel": "m5", "targetModel": ""}, "targetModel", "empty"),
        (
            {"requestedModel": "m5", "targetModel": "m6", "organizationId": 4242},
            "organizationId",
            "does not exist",
        ),
    ]
    for i, field, words in cases:
        err = error(await gql(env, CREATE_ALIAS, {"i": i}, sup))
        assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field), i
        assert words in err["message"]
    # The same requested model may have a global alias and an org alias.
    ok = await gql(
        env,
        CREATE_ALIAS,
        {"i": {"requestedModel": "m1", "targetModel": "m9", "organizationId": world.org_b.id}},
        sup,
    )
    assert data(ok)["createModelAlias"]["scope"] == "ORG"
    assert await ModelAlias.all().count() == 2


AGENT = "id agentId name role normalModel heavyModel maxModel"
IMPORT = (
    f"mutation($y: String!, $r: Boolean!) {{ importAgentConfigs(yaml: "
    f"$y, replace: $r) {{ created updated deleted agents {{ {AGENT} }} "
    f"}} }}"
)

YAML = """
agents:
  - name: Planner
    agent_id: planner
    role: Breaks work into steps
    models:
      normal: openai/gpt-4o-mini
      heavy: anthropic/claude-sonnet
      max: anthropic/claude-opus
  - name: Coder
    agent_id: coder
    role: Writes code
    models:
      normal: openai/gpt-4o
"""


async def test_agent_crud_and_import(env: Env, world: World) -> None:
    sup = world.token("super")
    made = data(
        await gql(
            env,
            f"mutation($i: AgentConfigInput!) {{ createAgentConfig(input: $i) {{ {AGENT} }} }}",
            {"i": {"agentId": "reviewer", "name": "Reviewer", "normalModel": "openai/gpt-4o-mini"}},
            sup,
        )
    )["createAgentConfig"]
    upd = data(
        await gql(
            env,
            (
                f"mutation($id: Int!, $i: UpdateAgentConfigInput!) {{ "
                f"updateAgentConfig(id: $id, input: $i) {{ {AGENT} }} }}"
            ),
            {"id": made["id"], "i": {"maxModel": "anthropic/claude-opus"}},
            sup,
        )
    )["updateAgentConfig"]
    assert upd["maxModel"] == "anthropic/claude-opus" and upd["normalModel"] == "openai/gpt-4o-mini"
    assert env.gw.store.routing.agents["reviewer"].max_model == "anthropic/claude-opus"

    res = data(await gql(env, IMPORT, {"y": YAML, "r": False}, sup))["importAgentConfigs"]
    assert (res["created"], res["updated"], res["deleted"]) == (2, 0, 0)
    by_id = {a["agentId"]: a for a in res["agents"]}
    assert by_id["planner"]["heavyModel"] == "anthropic/claude-sonnet"
    assert by_id["coder"]["heavyModel"] is None
    assert set(env.gw.store.routing.agents) == {"reviewer", "planner", "coder"}

    # A top-level list works too; replace drops agents missing from the file.
    listed = "- {name: Coder 2, agent_id: coder, models: {normal: openai/gpt-4.1}}\n"
    res = data(await gql(env, IMPORT, {"y": listed, "r": True}, sup))["importAgentConfigs"]
    assert (res["created"], res["updated"], res["deleted"]) == (0, 1, 2)
    assert [a.agent_id for a in await AgentConfig.all()] == ["coder"]
    all_agents = data(
        await gql(env, f"{{ agentConfigs {{ {AGENT} }} }}", token=world.token("admin_a"))
    )
    assert [a["name"] for a in all_agents["agentConfigs"]] == ["Coder 2"]

    deleted = await gql(
        env, "mutation($id: Int!) { deleteAgentConfig(id: $id) }", {"id": made["id"]}, sup
    )
    assert error(deleted)["code"] == "NOT_FOUND"  # already removed by replace


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("agents: [", "yaml"),
        ("agents: []", "yaml"),
        ("just a string", "yaml"),
        ("agents:\n  - {name: A, agent_id: a}\n", "agents[0].normalModel"),
        ("agents:\n  - {name: A, models: {normal: m}}\n", "agents[0].agent_id"),
        (
            (
                "agents:\n  - {name: A, agent_id: a, models: {normal: m}}\n  - "
                "{name: B, agent_id: a, models: {normal: m}}\n"
            ),
            "agents[1].agent_id",
        ),
        ("agents:\n  - {name: A, agent_id: 'bad id', models: {normal: m}}\n", "agents[0].agent_id"),
        ("agents:\n  - {name: A, agent_id: a, models: [m]}\n", "agents[0].models"),
    ],
)
async def test_import_validation(env: Env, world: World, text: str, field: str) -> None:
    err = error(await gql(env, IMPORT, {"y": text, "r": False}, world.token("super")))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", field)
    assert await AgentConfig.all().count() == 0  # nothing half-written


async def test_agent_writes_are_super_admin_only(env: Env, world: World) -> None:
    err = error(await gql(env, IMPORT, {"y": YAML, "r": False}, world.token("admin_a")))
    assert err["code"] == "FORBIDDEN"


CHAIN = "primaryModel chain"


async def test_fallback_chains(env: Env, world: World) -> None:
    sup = world.token("super")
    q = (
        f"mutation($p: String!, $c: [String!]!) {{ "
        f"setFallbackChain(primaryModel: $p, chain: $c) {{ {CHAIN} }} }}"
    )
    row = data(
        await gql(
            env, q, {"p": "openai/gpt-4o", "c": ["anthropic/claude-sonnet", "ollama/llama3"]}, sup
        )
    )
    assert row["setFallbackChain"]["chain"] == ["anthropic/claude-sonnet", "ollama/llama3"]
    assert env.gw.store.routing.chains == {
        "openai/gpt-4o": ("anthropic/claude-sonnet", "ollama/llama3")
    }
    data(await gql(env, q, {"p": "openai/gpt-4o", "c": ["gemini/gemini-2.0-flash"]}, sup))
    chains = data(
        await gql(env, f"{{ fallbackChains {{ {CHAIN} }} }}", token=world.token("admin_b"))
    )
    assert chains["fallbackChains"] == [
        {"primaryModel": "openai/gpt-4o", "chain": ["gemini/gemini-2.0-flash"]}
    ]

    for chain, words in (
        ([], "at least one"),
        (["openai/gpt-4o"], "own fallback"),
        (["a", "a"], "twice"),
        ([str(i) for i in range(11)], "at most"),
    ):
        err = error(await gql(env, q, {"p": "openai/gpt-4o", "c": chain}, sup))
        assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "chain")
        assert words in err["message"]
    assert (
        error(await gql(env, q, {"p": "x", "c": ["y"]}, world.token("admin_a")))["code"]
        == "FORBIDDEN"
    )

    d = "mutation($p: String!) { deleteFallbackChain(primaryModel: $p) }"
    assert data(await gql(env, d, {"p": "openai/gpt-4o"}, sup))["deleteFallbackChain"] is True
    assert env.gw.store.routing.chains == {}
    assert error(await gql(env, d, {"p": "openai/gpt-4o"}, sup))["code"] == "NOT_FOUND"


PRICE = "model inputPerMtok outputPerMtok cachedPerMtok contextWindow"


async def test_price_overrides(env: Env, world: World) -> None:
    sup = world.token("super")
    q = (
        f"mutation($m: String!, $i: PriceOverrideInput!) {{ "
        f"setPriceOverride(model: $m, input: $i) {{ {PRICE} }} }}"
    )
    row = data(
        await gql(
            env,
            q,
            {
                "m": "openai/gpt-4o",
                "i": {"inputPerMtok": "2.5", "outputPerMtok": "10", "contextWindow": 128000},
            },
            sup,
        )
    )
    assert Decimal(row["setPriceOverride"]["inputPerMtok"]) == Decimal("2.5")
    assert env.gw.store.routing.prices["openai/gpt-4o"].output_per_mtok == Decimal(10)
    data(
        await gql(
            env, q, {"m": "openai/gpt-4o", "i": {"inputPerMtok": "3", "outputPerMtok": "12"}}, sup
        )
    )
    listed = data(await gql(env, f"{{ priceOverrides {{ {PRICE} }} }}", token=sup))[
        "priceOverrides"
    ]
    assert len(listed) == 1 and Decimal(listed[0]["inputPerMtok"]) == 3

    err = error(
        await gql(env, q, {"m": "x", "i": {"inputPerMtok": "-1", "outputPerMtok": "1"}}, sup)
    )
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "inputPerMtok")
    err = error(
        await gql(
            env,
            q,
            {"m": "x", "i": {"inputPerMtok": "1", "outputPerMtok": "1"}},
            world.token("admin_a"),
        )
    )
    assert err["code"] == "FORBIDDEN"
    d = "mutation($m: String!) { deletePriceOverride(model: $m) }"
    assert data(await gql(env, d, {"m": "openai/gpt-4o"}, sup))["deletePriceOverride"] is True
    assert env.gw.store.routing.prices == {}


@dataclass(frozen=True)
class FakeEntry:
    model: str
    provider: str
    context_window: int | None
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_per_mtok: Decimal | None
    reachable: bool
    source: str


class FakeRouter:
    def __init__(self) -> None:
        self.asked: list[Any] = []

    def catalog(self, configured: Any) -> list[FakeEntry]:
        self.asked.append(configured)
        return [
            FakeEntry(
                "openai/gpt-4o",
                "openai",
                128000,
                Decimal("2.5"),
                Decimal(10),
                None,
                True,
                "price-table",
            ),
            FakeEntry("acme/unpriced", "acme", None, None, None, None, False, "config"),
        ]


class FakeProviders:
    def configured(self) -> dict[str, Any]:
        return {"openai": object()}


async def test_catalog(env: Env, world: World) -> None:
    q = "{ modelCatalog { model provider inputPerMtok outputPerMtok reachable source overridden } }"
    assert data(await gql(env, q, token=world.token("super")))["modelCatalog"] == []
    env.gw.router = FakeRouter()
    env.gw.providers = FakeProviders()
    await gql(
        env,
        (
            'mutation { setPriceOverride(model: "openai/gpt-4o", input: '
            '{inputPerMtok: "1", outputPerMtok: "2"}) { model } }'
        ),
        token=world.token("super"),
    )
    rows = data(await gql(env, q, token=world.token("admin_a")))["modelCatalog"]
    assert rows[0]["model"] == "openai/gpt-4o" and rows[0]["overridden"] is True
    # Unknown price stays unknown (null), never 0.
    assert rows[1] == {
        "model": "acme/unpriced",
        "provider": "acme",
        "inputPerMtok": None,
        "outputPerMtok": None,
        "reachable": False,
        "source": "CONFIG",
        "overridden": False,
    }
    assert list(env.gw.router.asked[0]) == ["openai"]
    assert error(await gql(env, q, token=world.token("member_a")))["code"] == "FORBIDDEN"
