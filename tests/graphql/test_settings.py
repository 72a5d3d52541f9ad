"""Gateway settings and users' feature opt-ins through GraphQL (hot: the snapshot changes)."""

from __future__ import annotations

from backend.data.models.settings import Setting, UserFeature
from tests.graphql.harness import Env, World, data, error, gql

SETTINGS = (
    "routingStrategy routingStrategies ollama { baseUrl connected } "
    "offeredFeatures knownFeatures responseCacheTtlSeconds"
)
OPT_INS = "name offered enabled"


async def test_routing_strategy(env: Env, world: World) -> None:
    q = f"mutation($s: RoutingStrategy!) {{ setRoutingStrategy(strategy: $s) {{ {SETTINGS} }} }}"
    out = data(await gql(env, q, {"s": "CHEAPEST"}, world.token("super")))["setRoutingStrategy"]
    assert out["routingStrategy"] == "CHEAPEST"
    assert out["routingStrategies"] == [
        "ORDERED",
        "CHEAPEST",
        "FASTEST",
        "LEAST_BUSY",
        "ROUND_ROBIN",
    ]
    assert env.gw.store.settings.routing_strategy == "cheapest"
    assert (await Setting.get(key="routing_strategy")).value == "cheapest"
    body = await gql(env, q, {"s": "random"}, world.token("super"))
    assert "'random' does not exist in 'RoutingStrategy'" in body["errors"][0]["message"]
    assert error(await gql(env, q, {"s": "FASTEST"}, world.token("admin_a")))["code"] == "FORBIDDEN"
    assert env.gw.store.settings.routing_strategy == "cheapest"
    read = data(
        await gql(env, f"{{ gatewaySettings {{ {SETTINGS} }} }}", token=world.token("admin_a"))
    )
    assert read["gatewaySettings"]["routingStrategy"] == "CHEAPEST"


async def test_ollama_connection(env: Env, world: World) -> None:
    q = f"mutation($u: String) {{ setOllamaConnection(baseUrl: $u) {{ {SETTINGS} }} }}"
    out = data(await gql(env, q, {"u": "http://gpu-box:11434/"}, world.token("super")))
    assert out["setOllamaConnection"]["ollama"] == {
        "baseUrl": "http://gpu-box:11434",
        "connected": True,
    }
    assert env.gw.store.settings.ollama_base_url == "http://gpu-box:11434"
    err = error(await gql(env, q, {"u": "ftp://nope"}, world.token("super")))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "baseUrl")
    out = data(await gql(env, q, {"u": None}, world.token("super")))
    assert out["setOllamaConnection"]["ollama"] == {"baseUrl": None, "connected": False}
    assert env.gw.store.settings.ollama_base_url is None


async def test_offered_features_and_opt_ins(env: Env, world: World) -> None:
    offer = f"mutation($f: [Feature!]!) {{ setOfferedFeatures(features: $f) {{ {SETTINGS} }} }}"
    opt = (
        f"mutation($f: Feature!, $e: Boolean!, $u: Int) {{ "
        f"setFeatureOptIn(feature: $f, enabled: $e, userId: $u) {{ "
        f"{OPT_INS} }} }}"
    )
    mine = f"{{ userFeatures {{ {OPT_INS} }} }}"
    member = world.token("member_a")
    member_id = world.users["member_a"].id

    # Not offered yet: a member cannot opt in.
    assert data(await gql(env, mine, token=member))["userFeatures"] == [
        {"name": "RESPONSE_CACHE", "offered": False, "enabled": False}
    ]
    err = error(await gql(env, opt, {"f": "RESPONSE_CACHE", "e": True}, member))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "feature")

    body = await gql(env, offer, {"f": ["teleport"]}, world.token("super"))
    assert "'teleport' does not exist in 'Feature'" in body["errors"][0]["message"]
    assert (
        error(await gql(env, offer, {"f": ["RESPONSE_CACHE"]}, world.token("admin_a")))["code"]
        == "FORBIDDEN"
    )
    out = data(await gql(env, offer, {"f": ["RESPONSE_CACHE"]}, world.token("super")))
    assert out["setOfferedFeatures"]["offeredFeatures"] == ["RESPONSE_CACHE"]
    assert env.gw.store.settings.offered_features == frozenset({"response_cache"})

    on = data(await gql(env, opt, {"f": "RESPONSE_CACHE", "e": True}, member))["setFeatureOptIn"]
    assert on == [{"name": "RESPONSE_CACHE", "offered": True, "enabled": True}]
    assert env.gw.store.tenancy.user_features[member_id] == frozenset({"response_cache"})
    # Toggling twice keeps one row.
    data(await gql(env, opt, {"f": "RESPONSE_CACHE", "e": False}, member))
    data(await gql(env, opt, {"f": "RESPONSE_CACHE", "e": True}, member))
    assert await UserFeature.filter(user_id=member_id).count() == 1

    # A member toggles only their own; their org_admin may toggle theirs; another org's may not.
    err = error(
        await gql(
            env, opt, {"f": "RESPONSE_CACHE", "e": True, "u": world.users["member_b"].id}, member
        )
    )
    assert err["code"] == "FORBIDDEN"
    ok = await gql(
        env, opt, {"f": "RESPONSE_CACHE", "e": False, "u": member_id}, world.token("admin_a")
    )
    assert data(ok)["setFeatureOptIn"][0]["enabled"] is False
    err = error(
        await gql(
            env, opt, {"f": "RESPONSE_CACHE", "e": True, "u": member_id}, world.token("admin_b")
        )
    )
    assert err["code"] == "FORBIDDEN"
    body = await gql(env, opt, {"f": "teleport", "e": True}, member)
    assert "'teleport' does not exist in 'Feature'" in body["errors"][0]["message"]


async def test_cache_ttl(env: Env, world: World) -> None:
    q = "mutation($s: Int!) { setResponseCacheTtl(seconds: $s) { responseCacheTtlSeconds } }"
    assert data(await gql(env, q, {"s": 600}, world.token("super")))["setResponseCacheTtl"] == {
        "responseCacheTtlSeconds": 600
    }
    assert env.gw.store.settings.response_cache_ttl_s == 600
    err = error(await gql(env, q, {"s": 0}, world.token("super")))
    assert (err["code"], err["field"]) == ("BAD_USER_INPUT", "ttlSeconds")
