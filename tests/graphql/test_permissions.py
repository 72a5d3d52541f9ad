"""The permission matrix: every role x every entity operation, allowed or refused.

Roles: ``super`` (super_admin), ``admin`` (org_admin of Acme), ``member`` (member of Acme) and
``anon`` (no token). Targets named ``*_other`` belong to another organization (Globex). A refusal
must be a GraphQL error with code FORBIDDEN (UNAUTHENTICATED for ``anon``) and no data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from backend.data.models.keys import ApiKey
from backend.data.models.settings import Setting
from tests.graphql.harness import Env, World, gql, reset, seed_world

S, A, M = "super", "admin", "member"
ROLE_KEYS = {"super": "super", "admin": "admin_a", "member": "member_a", "anon": None}


async def offer_cache(env: Env, world: World) -> None:
    await Setting.create(key="offered_features", value=["response_cache"])
    await env.gw.store.reload("settings")


@dataclass(frozen=True)
class Op:
    name: str
    query: str
    allowed: frozenset[str]
    variables: Callable[[World], dict[str, Any]] = field(default=lambda w: {})
    setup: Callable[[Env, World], Awaitable[None]] | None = None


def op(name: str, query: str, allowed: set[str], variables: Any = None, setup: Any = None) -> Op:
    return Op(name, query, frozenset(allowed), variables or (lambda w: {}), setup)


def uid(key: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"id": w.users[key].id}


async def member_key(env: Env, world: World) -> None:
    """A key of member_a (as ``world.key_id``) for the key-limit rows."""
    key = await ApiKey.create(
        name="laptop",
        prefix=f"sk-sb-{world.users['member_a'].id:06d}",
        key_hash=f"hash-{world.users['member_a'].id}",
        user=world.users["member_a"],
    )
    world.key_id = key.id  # type: ignore[attr-defined]


async def other_key(env: Env, world: World) -> None:
    """A key of member_b (another organization) as ``world.key_id``."""
    key = await ApiKey.create(
        name="theirs",
        prefix=f"sk-sb-{world.users['member_b'].id:06d}",
        key_hash=f"hash-{world.users['member_b'].id}",
        user=world.users["member_b"],
    )
    world.key_id = key.id  # type: ignore[attr-defined]


def key_id(w: World) -> dict[str, Any]:
    return {"id": w.key_id}  # type: ignore[attr-defined]


async def alert_channel(env: Env, world: World) -> None:
    """A webhook channel 'ops' to a closed port, and a rule on it; the alerts service wired."""
    from backend.alerts.service import Alerts

    if "alerts" not in env.gw.extras:
        env.gw.extras["alerts"] = Alerts(env.gw)
    made = await gql(
        env,
        'mutation { setAlertChannel(name: "ops", input: {kind: WEBHOOK, '
        'url: "http://127.0.0.1:9/hook", secret: "whsec-0123456789abcdef"}) { id } '
        'setAlertRule(name: "caps", input: {kind: CAP, channels: ["ops"], '
        "thresholds: [50, 100]}) { id } }",
        token=world.token("super"),
    )
    assert not made.get("errors"), made


async def registry(env: Env, world: World) -> None:
    """A provider registry (reset() leaves none): the deployment list reads its live status."""
    from backend.providers.registry import ProviderRegistry, default_factories

    if env.gw.providers is None:
        env.gw.providers = ProviderRegistry(default_factories(), close_grace_s=0)


async def deployment(env: Env, world: World) -> None:
    await registry(env, world)
    made = await gql(
        env,
        'mutation { setProviderDeployment(provider: "openai", name: "acct-b", input: '
        '{baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-acct-b-0123456789", weight: 1}) '
        "{ name } }",
        token=world.token("super"),
    )
    assert not made.get("errors"), made


OPS = [
    op("me", "{ me { id } }", {S, A, M}),
    # users
    op("users.list", "{ users { totalCount } }", {S, A}),
    op("user.read.self", "query($id: Int!) { user(id: $id) { id } }", {S, A, M}, uid("member_a")),
    op("user.read.other", "query($id: Int!) { user(id: $id) { id } }", {S}, uid("member_b")),
    op(
        "user.create",
        ('mutation { createUser(input: {name: "N", email: "n@x.io"}) { id } }'),
        {S, A},
    ),
    op(
        "user.update",
        ('mutation($id: Int!) { updateUser(id: $id, input: {name: "R"}) { id } }'),
        {S, A},
        uid("member_a"),
    ),
    op(
        "user.update.other",
        ('mutation($id: Int!) { updateUser(id: $id, input: {name: "R"}) { id } }'),
        {S},
        uid("member_b"),
    ),
    op("user.delete", "mutation($id: Int!) { deleteUser(id: $id) }", {S, A}, uid("member_a")),
    op("user.delete.other", "mutation($id: Int!) { deleteUser(id: $id) }", {S}, uid("member_b")),
    # organizations
    op("orgs.list", "{ organizations { nodes { memberCount } } }", {S, A}),
    op(
        "org.read.own",
        "query($id: Int!) { organization(id: $id) { id } }",
        {S, A, M},
        lambda w: {"id": w.org_a.id},
    ),
    op(
        "org.read.other",
        "query($id: Int!) { organization(id: $id) { id } }",
        {S},
        lambda w: {"id": w.org_b.id},
    ),
    op("org.create", 'mutation { createOrganization(input: {name: "I", slug: "i"}) { id } }', {S}),
    op(
        "org.update",
        ('mutation($id: Int!) { updateOrganization(id: $id, input: {spendCapUsd: "5"}) { id } }'),
        {S},
        lambda w: {"id": w.org_a.id},
    ),
    op(
        "org.delete",
        "mutation($id: Int!) { deleteOrganization(id: $id) }",
        {S},
        lambda w: {"id": w.org_b.id},
    ),
    # apps
    op("apps.list", "{ apps { totalCount } }", {S, A}),
    op("app.create", 'mutation { createApp(input: {name: "N", slug: "n"}) { id } }', {S, A}),
    op(
        "app.update",
        ("mutation($id: Int!) { updateApp(id: $id, input: {active: false}) { id } }"),
        {S, A},
        lambda w: {"id": w.app_a.id},
    ),
    op(
        "app.update.other",
        ("mutation($id: Int!) { updateApp(id: $id, input: {active: false}) { id } }"),
        {S},
        lambda w: {"id": w.app_b.id},
    ),
    op(
        "app.delete",
        "mutation($id: Int!) { deleteApp(id: $id) }",
        {S, A},
        lambda w: {"id": w.app_a.id},
    ),
    # API keys and admin tokens
    op("keys.list", "{ apiKeys { totalCount } }", {S, A, M}),
    op("key.create.self", "mutation { createApiKey(input: {}) { secret } }", {S, A, M}),
    op(
        "key.create.member",
        ("mutation($id: Int!) { createApiKey(input: {userId: $id}) { secret } }"),
        {S, A, M},
        uid("member_a"),
    ),
    op(
        "key.create.other",
        ("mutation($id: Int!) { createApiKey(input: {userId: $id}) { secret } }"),
        {S},
        uid("member_b"),
    ),
    op(
        "key.create.app",
        ("mutation($id: Int!) { createApiKey(input: {appId: $id}) { secret } }"),
        {S, A},
        lambda w: {"id": w.app_a.id},
    ),
    op("admin_token.create", 'mutation { createAdminToken(name: "ci") { token } }', {S, A}),
    # routing
    op("aliases.list", "{ modelAliases { id } }", {S, A}),
    op(
        "alias.create.global",
        ('mutation { createModelAlias(input: {requestedModel: "a", targetModel: "b"}) { id } }'),
        {S},
    ),
    op(
        "alias.create.own",
        (
            "mutation($o: Int!) { createModelAlias(input: {requestedModel: "
            '"a", targetModel: "b", organizationId: $o}) { id } }'
        ),
        {S, A},
        lambda w: {"o": w.org_a.id},
    ),
    op(
        "alias.create.other",
        (
            "mutation($o: Int!) { createModelAlias(input: {requestedModel: "
            '"a", targetModel: "b", organizationId: $o}) { id } }'
        ),
        {S},
        lambda w: {"o": w.org_b.id},
    ),
    op("agents.list", "{ agentConfigs { id } }", {S, A}),
    op(
        "agent.create",
        (
            'mutation { createAgentConfig(input: {agentId: "a", name: "A", '
            'normalModel: "m"}) { id } }'
        ),
        {S},
    ),
    op(
        "agents.import",
        (
            'mutation { importAgentConfigs(yaml: "agents: [{name: A, '
            'agent_id: a, models: {normal: m}}]") { created } }'
        ),
        {S},
    ),
    op("chains.list", "{ fallbackChains { primaryModel } }", {S, A}),
    op(
        "chain.set",
        ('mutation { setFallbackChain(primaryModel: "a", chain: ["b"]) { chain } }'),
        {S},
    ),
    op("prices.list", "{ priceOverrides { model } }", {S, A}),
    op(
        "price.set",
        (
            'mutation { setPriceOverride(model: "m", input: {inputPerMtok: '
            '"1", outputPerMtok: "2"}) { model } }'
        ),
        {S},
    ),
    op("catalog", "{ modelCatalog { model } }", {S, A}),
    # settings and opt-ins
    op("settings.read", "{ gatewaySettings { routingStrategy } }", {S, A}),
    op(
        "settings.strategy",
        ("mutation { setRoutingStrategy(strategy: FASTEST) { routingStrategy } }"),
        {S},
    ),
    op(
        "settings.ollama",
        ('mutation { setOllamaConnection(baseUrl: "http://o:11434") { routingStrategy } }'),
        {S},
    ),
    op(
        "settings.features",
        ("mutation { setOfferedFeatures(features: [RESPONSE_CACHE]) { routingStrategy } }"),
        {S},
    ),
    op("opt_in.read.self", "{ userFeatures { name } }", {S, A, M}),
    op(
        "opt_in.set.self",
        ("mutation { setFeatureOptIn(feature: RESPONSE_CACHE, enabled: true) { name } }"),
        {S, A, M},
        setup=offer_cache,
    ),
    op(
        "opt_in.set.other",
        (
            "mutation($id: Int!) { setFeatureOptIn(feature: RESPONSE_CACHE, "
            "enabled: true, userId: $id) { name } }"
        ),
        {S},
        uid("member_b"),
        offer_cache,
    ),
    # credentials
    op("credentials.list", "{ providerCredentials { provider } }", {S}),
    op(
        "credential.set",
        (
            'mutation { setProviderCredential(provider: "openai", input: '
            '{kind: OPENAI, apiKey: "sk-abcdefgh1234"}) { apiKeyLast4 } }'
        ),
        {S},
    ),
    # DLP
    op("dlp.list", "{ dlpProtections { name } }", {S, A}),
    op("dlp.list.paged", "{ dlpProtectionsPaged(first: 5) { totalCount } }", {S, A}),
    op(
        "dlp.enable.own",
        (
            "mutation($t: Int!) { setDlpProtection(scope: ORG, targetId: "
            "$t, enabled: true) { status } }"
        ),
        {S, A},
        lambda w: {"t": w.org_a.id},
    ),
    op(
        "dlp.enable.other",
        (
            "mutation($t: Int!) { setDlpProtection(scope: ORG, targetId: "
            "$t, enabled: true) { status } }"
        ),
        {S},
        lambda w: {"t": w.org_b.id},
    ),
    op(
        "dlp.policy.app",
        (
            "mutation($t: Int!) { updateDlpPolicy(scope: APP, targetId: $t, "
            'input: {rules: ["email"]}) { rules } }'
        ),
        {S, A},
        lambda w: {"t": w.app_a.id},
    ),
    op("dlp.activity", "{ dlpActivity { totalCount } }", {S, A}),
    # logs, usage, reports, audit, dashboard
    op("logs.list", "{ gatewayLogs { totalCount } }", {S, A, M}),
    op("logs.count", "{ gatewayLogCount { count exact } }", {S, A, M}),
    op(
        "key.rotate.own",
        "mutation($id: Int!) { rotateApiKey(id: $id) { secret previous { status } } }",
        {S, A, M},
        key_id,
        member_key,
    ),
    op(
        "key.rotate.other",
        "mutation($id: Int!) { rotateApiKey(id: $id) { secret } }",
        {S},
        key_id,
        other_key,
    ),
    op("usage", "{ userUsage { totalCount } }", {S, A, M}),
    op("errors.list", "{ errorReports { totalCount } }", {S, A, M}),
    op("audit.list", "{ auditLog { totalCount } }", {S}),
    op(
        "dashboard.trends",
        ("{ dashboard { costTrends { day } providerLoad { provider } topSpenders { userId } } }"),
        {S, A},
    ),
    op("dashboard.live", "{ dashboard { live { requests } } }", {S, A}),
    # limits and spend by tag
    op(
        "limits.read.self",
        "query($id: Int!) { limits(target: USER, id: $id) { requestsPerMinute } }",
        {S, A, M},
        uid("member_a"),
    ),
    op(
        "limits.read.other",
        "query($id: Int!) { limits(target: USER, id: $id) { requestsPerMinute } }",
        {S},
        uid("member_b"),
    ),
    op(
        "limits.set.user",
        (
            "mutation($id: Int!) { setLimits(target: USER, id: $id, "
            "input: {tokensPerMinute: 9}) { tokensPerMinute } }"
        ),
        {S, A},
        uid("member_a"),
    ),
    op(
        "limits.set.user.other",
        (
            "mutation($id: Int!) { setLimits(target: USER, id: $id, "
            "input: {tokensPerMinute: 9}) { tokensPerMinute } }"
        ),
        {S},
        uid("member_b"),
    ),
    op(
        "limits.set.org",
        (
            "mutation($id: Int!) { setLimits(target: ORGANIZATION, id: $id, "
            "input: {requestsPerMinute: 9}) { requestsPerMinute } }"
        ),
        {S},
        lambda w: {"id": w.org_a.id},
    ),
    op(
        "limits.read.app",
        "query($id: Int!) { limits(target: APP, id: $id) { allowedModels } }",
        {S, A},
        lambda w: {"id": w.app_a.id},
    ),
    op(
        "limits.read.org.own",
        "query($id: Int!) { limits(target: ORGANIZATION, id: $id) { spendCapUsd } }",
        {S, A, M},
        lambda w: {"id": w.org_a.id},
    ),
    op(
        "limits.read.org.other",
        "query($id: Int!) { limits(target: ORGANIZATION, id: $id) { spendCapUsd } }",
        {S},
        lambda w: {"id": w.org_b.id},
    ),
    op(
        "limits.read.key.own",
        "query($id: Int!) { limits(target: KEY, id: $id) { locks { limit setById } } }",
        {S, A, M},
        key_id,
        member_key,
    ),
    op(
        "limits.read.key.other",
        "query($id: Int!) { limits(target: KEY, id: $id) { locks { limit } } }",
        {S},
        key_id,
        other_key,
    ),
    op(
        "limits.set.key.own",
        (
            "mutation($id: Int!) { setLimits(target: KEY, id: $id, "
            "input: {requestsPerMinute: 5}) { requestsPerMinute } }"
        ),
        {S, A, M},
        key_id,
        member_key,
    ),
    op(
        "limits.set.key.other",
        (
            "mutation($id: Int!) { setLimits(target: KEY, id: $id, "
            "input: {requestsPerMinute: 5}) { requestsPerMinute } }"
        ),
        {S},
        key_id,
        other_key,
    ),
    op(
        "limits.set.app",
        (
            "mutation($id: Int!) { setLimits(target: APP, id: $id, "
            'input: {allowedModels: ["gpt-4o*"]}) { allowedModels } }'
        ),
        {S, A},
        lambda w: {"id": w.app_a.id},
    ),
    op(
        "limits.set.app.other",
        (
            "mutation($id: Int!) { setLimits(target: APP, id: $id, "
            'input: {allowedModels: ["gpt-4o*"]}) { allowedModels } }'
        ),
        {S},
        lambda w: {"id": w.app_b.id},
    ),
    op("spend.by.tag", "{ spendByTag { tag costUsd unknownCostRequests } }", {S, A, M}),
    op(
        "analytics",
        '{ analytics(dimension: MODEL, since: "2026-01-01T00:00:00Z", '
        'until: "2026-01-02T00:00:00Z") { groupCount } }',
        {S, A, M},
    ),
    # single sign-on: settings and rules super_admin only; the login page's link is public
    op("sso.provider.read", "{ ssoProvider { issuer } ssoRules { id } }", {S}),
    op("sso.login.link", "{ ssoLogin { enabled loginUrl } }", {S, A, M, "anon"}),
    op(
        "sso.provider.set",
        (
            'mutation { setSsoProvider(input: {enabled: false, issuer: "https://idp.test", '
            'clientId: "c", gatewayUrl: "https://gw.test", dashboardUrl: "https://d.test"}) '
            "{ issuer } }"
        ),
        {S},
    ),
    op(
        "sso.rule.create",
        'mutation { createSsoRule(input: {claim: "groups", value: "x", role: MEMBER}) { id } }',
        {S},
    ),
    # provider deployments and alerts: super_admin only (secrets, every organization's traffic)
    op(
        "deployments.list",
        "{ providerDeployments { name status { health } } }",
        {S},
        setup=deployment,
    ),
    op(
        "deployment.set",
        (
            'mutation { setProviderDeployment(provider: "openai", name: "acct-b", input: '
            '{baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-acct-b-0123456789"}) { name } }'
        ),
        {S},
        setup=registry,
    ),
    op(
        "deployment.delete",
        'mutation { deleteProviderDeployment(provider: "openai", name: "acct-b") }',
        {S},
        setup=deployment,
    ),
    op(
        "alerts.read",
        "{ alertChannels { name } alertRules { name } alertDeliveries { status } }",
        {S},
        setup=alert_channel,
    ),
    op(
        "alert.channel.set",
        (
            'mutation { setAlertChannel(name: "ops2", input: {kind: WEBHOOK, '
            'url: "http://127.0.0.1:9/h", secret: "whsec-0123456789abcdef"}) { name } }'
        ),
        {S},
    ),
    op(
        "alert.test", 'mutation { sendTestAlert(name: "ops") { status } }', {S}, setup=alert_channel
    ),
    op(
        "alert.rule.set",
        (
            'mutation { setAlertRule(name: "circuits", input: {kind: CIRCUIT, '
            'channels: ["ops"]}) { name } }'
        ),
        {S},
        setup=alert_channel,
    ),
    op(
        "alert.rule.delete",
        'mutation { deleteAlertRule(name: "caps") }',
        {S},
        setup=alert_channel,
    ),
    op(
        "alert.channel.delete",
        'mutation { deleteAlertChannel(name: "ops") }',
        {S},
        setup=alert_channel,
    ),
]


@pytest.mark.parametrize("operation", OPS, ids=[o.name for o in OPS])
async def test_matrix(env: Env, world: World, operation: Op) -> None:
    mutation = operation.query.lstrip().startswith("mutation")
    for i, role in enumerate(ROLE_KEYS):
        if mutation and i:
            # A mutation that succeeded changed the world: each role gets a fresh one.
            await reset(env)
            world = await seed_world(env)
        if operation.setup is not None and (mutation or not i):
            await operation.setup(env, world)
        key = ROLE_KEYS[role]
        token = world.token(key) if key else None
        body = await gql(env, operation.query, operation.variables(world), token)
        errors = body.get("errors") or []
        if role in operation.allowed:
            assert not errors, f"{role} should be allowed {operation.name}: {errors}"
            assert body["data"]
        else:
            assert errors, f"{role} should be refused {operation.name}"
            code = errors[0].get("extensions", {}).get("code")
            expected = "UNAUTHENTICATED" if role == "anon" else "FORBIDDEN"
            assert code == expected, (role, operation.name, errors)
            assert body.get("data") is None


def test_every_root_field_is_in_the_matrix() -> None:
    """A new query or mutation must be added to the matrix (login/logout/... are public)."""
    import re

    from graphql import build_schema

    from backend.graphql.schema import schema

    covered = " ".join(o.query for o in OPS)
    public = {
        "login",
        "logout",
        "changePassword",
        "reportError",
        "dlpRules",
        "gatewayLog",
        "apiKey",
        "app",
        "adminTokens",
        "revokeAdminToken",
        "dlpProtection",
        # public: a dummy ticket is refused as input (tests/sso redeem real ones)
        "redeemSsoLogin",
    }
    gql_schema = build_schema(schema.as_str())
    missing = []
    for root in (gql_schema.query_type, gql_schema.mutation_type):
        assert root is not None
        for name in root.fields:
            if name not in public and not re.search(rf"\b{name}\b", covered):
                missing.append(name)
    # Update/delete variants share their permission rule with the create of the same entity.
    allowed_gaps = {
        "updateModelAlias",
        "deleteModelAlias",
        "updateAgentConfig",
        "deleteAgentConfig",
        "deleteFallbackChain",
        "deletePriceOverride",
        "setResponseCacheTtl",
        "deleteProviderCredential",
        "updateApiKey",
        "revokeApiKey",
        "deleteApiKey",
        "updateSsoRule",
        "deleteSsoRule",
        "deleteSsoProvider",
    }
    assert sorted(set(missing) - allowed_gaps) == []
