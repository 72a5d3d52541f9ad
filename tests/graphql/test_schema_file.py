"""``schema.graphql`` is the code's schema, and the schema covers the whole dashboard.

Regenerate the file with ``python -m backend.graphql.export > schema.graphql``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import GraphQLObjectType, build_schema

from backend.graphql.export import sdl

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT.parent / "shared" / "seed" / "dashboard.txt"


def test_schema_file_is_in_sync() -> None:
    on_disk = (ROOT / "schema.graphql").read_text()
    assert on_disk == sdl(), (
        "schema.graphql differs from the code: run "
        "`python -m backend.graphql.export > schema.graphql`"
    )


# Every table column of the dashboard text, per table (keyed by the header row), -> the schema
# paths that serve it ("Type.field").
TABLES: dict[str, dict[str, list[str]]] = {
    "Name | Status | Role | Weekly Cap | Organization | Actions": {
        "Name": ["User.name"],
        "Status": ["User.status"],
        "Role": ["User.role"],
        "Weekly Cap": ["User.weeklyCapUsd"],
        "Organization": ["User.organization"],
        "Actions": ["Mutation.createUser", "Mutation.updateUser", "Mutation.deleteUser"],
    },
    "Name | Slug | Owner | Members | API Spend Cap | Rollover | DLP | Created | Actions": {
        "Name": ["Organization.name"],
        "Slug": ["Organization.slug"],
        "Owner": ["Organization.owner"],
        "Members": ["Organization.memberCount"],
        "API Spend Cap": ["Organization.spendCapUsd", "Organization.capPeriod"],
        "Rollover": ["Organization.rollover"],
        "DLP": ["Organization.dlpEnabled"],
        "Created": ["Organization.createdAt"],
        "Actions": ["Mutation.updateOrganization", "Mutation.deleteOrganization"],
    },
    "Name | Slug | Contact | Active | DLP | Created | Actions": {
        "Name": ["App.name"],
        "Slug": ["App.slug"],
        "Contact": ["App.contact"],
        "Active": ["App.active"],
        "DLP": ["App.dlpEnabled"],
        "Created": ["App.createdAt"],
        "Actions": ["Mutation.createApp", "Mutation.updateApp", "Mutation.deleteApp"],
    },
    "Requested Model | → | Routed To | Scope | Actions": {
        "Requested Model": ["ModelAlias.requestedModel"],
        "→": ["Query.modelAliases"],
        "Routed To": ["ModelAlias.targetModel"],
        "Scope": ["ModelAlias.scope", "ModelAlias.organization"],
        "Actions": [
            "Mutation.createModelAlias",
            "Mutation.updateModelAlias",
            "Mutation.deleteModelAlias",
        ],
    },
    "Name | Agent ID | Role | Normal Model | Heavy Model | Max Model": {
        "Name": ["AgentConfig.name"],
        "Agent ID": ["AgentConfig.agentId"],
        "Role": ["AgentConfig.role"],
        "Normal Model": ["AgentConfig.normalModel"],
        "Heavy Model": ["AgentConfig.heavyModel"],
        "Max Model": ["AgentConfig.maxModel"],
    },
    "Time | Key | User | Endpoint | Requested | Actual | Tokens | Cost": {
        "Time": ["GatewayLog.createdAt", "GatewayLogEvent.createdAt"],
        "Key": ["GatewayLog.keyPrefix", "GatewayLogEvent.keyPrefix"],
        "User": ["GatewayLog.user", "GatewayLogEvent.user"],
        "Endpoint": ["GatewayLog.endpoint", "GatewayLogEvent.endpoint"],
        "Requested": ["GatewayLog.requestedModel", "GatewayLogEvent.requestedModel"],
        "Actual": ["GatewayLog.actualModel", "GatewayLogEvent.actualModel"],
        "Tokens": ["GatewayLog.totalTokens", "GatewayLog.inputTokens", "GatewayLog.outputTokens"],
        "Cost": ["GatewayLog.costUsd", "GatewayLogEvent.costUsd"],
    },
    "User | Requests | Input Tokens | Output Tokens | Cost | Actions": {
        "User": ["UserUsage.user"],
        "Requests": ["UserUsage.requests"],
        "Input Tokens": ["UserUsage.inputTokens"],
        "Output Tokens": ["UserUsage.outputTokens"],
        "Cost": ["UserUsage.costUsd"],
        "Actions": ["UserUsage.exportUrl"],
    },
    "Name | Status | Rules enabled | Last activity": {
        "Name": ["DlpProtection.name"],
        "Status": ["DlpProtection.status", "Mutation.setDlpProtection"],
        "Rules enabled": ["DlpProtection.rulesEnabled", "Mutation.updateDlpPolicy"],
        "Last activity": ["DlpProtection.lastActivityAt"],
    },
    "When | Kind | Scope | Rule | Matches | Size | Request | Detail": {
        "When": ["DlpActivity.createdAt"],
        "Kind": ["DlpActivity.kind"],
        "Scope": ["DlpActivity.scope"],
        "Rule": ["DlpActivity.rule"],
        "Matches": ["DlpActivity.matches"],
        "Size": ["DlpActivity.size"],
        "Request": ["DlpActivity.requestId"],
        "Detail": ["DlpActivity.detail"],
    },
    "Primary Model | Fallback Chain | Action": {
        "Primary Model": ["FallbackChain.primaryModel"],
        "Fallback Chain": ["FallbackChain.chain"],
        "Action": ["Mutation.setFallbackChain", "Mutation.deleteFallbackChain"],
    },
    "Time | Source | Type | Model | Error | User | Agent | Version": {
        "Time": ["ErrorReport.createdAt"],
        "Source": ["ErrorReport.source"],
        "Type": ["ErrorReport.type"],
        "Model": ["ErrorReport.model"],
        "Error": ["ErrorReport.error"],
        "User": ["ErrorReport.user"],
        "Agent": ["ErrorReport.agent"],
        "Version": ["ErrorReport.version"],
    },
}

# The dashboard's sections that are not tables.
SECTIONS: dict[str, list[str]] = {
    "Live · last 60 min": [
        "Dashboard.live",
        "LiveTraffic.minutes",
        "LiveMinute.requests",
        "LiveMinute.tokens",
        "LiveMinute.costUsd",
        "LiveMinute.errors",
        "LiveMinute.p50Ms",
        "LiveMinute.p95Ms",
        "Subscription.gatewayLogs",
    ],
    "Cost Trends": [
        "Dashboard.costTrends",
        "DayCost.day",
        "DayCost.byModel",
        "DayCost.byProvider",
        "ModelCost.costUsd",
    ],
    "Provider Load & Routing": [
        "Dashboard.providerLoad",
        "ProviderLoad.requests",
        "ProviderLoad.share",
        "ProviderLoad.errors",
        "ProviderLoad.avgLatencyMs",
        "ProviderLoad.health",
        "Dashboard.routingStrategy",
    ],
    "Top Spending Users": ["Dashboard.topSpenders", "TopSpender.user", "TopSpender.costUsd"],
    "Create User": ["Mutation.createUser"],
    "Create App": ["Mutation.createApp"],
    "model_config.yaml": ["Mutation.importAgentConfigs"],
    "Available Models": [
        "Query.modelCatalog",
        "CatalogModel.inputPerMtok",
        "Mutation.setPriceOverride",
    ],
    "Users can opt-in to individual features": [
        "Query.userFeatures",
        "Mutation.setFeatureOptIn",
        "Mutation.setOfferedFeatures",
    ],
    "Routing Strategy": ["GatewaySettings.routingStrategy", "Mutation.setRoutingStrategy"],
    "Ollama (Self-Hosted Models)": ["GatewaySettings.ollama", "Mutation.setOllamaConnection"],
    "LLM Provider Credentials": [
        "Query.providerCredentials",
        "Mutation.setProviderCredential",
        "ProviderCredential.apiKeyLast4",
        "ProviderCredential.baseUrl",
    ],
    "User Activity Export": ["UserUsage.exportUrl"],
    "Error Reports": ["Query.errorReports", "Subscription.errorReports"],
}


def _has(schema: object, path: str) -> bool:
    type_name, field = path.split(".")
    t = schema.get_type(type_name)  # type: ignore[attr-defined]
    return isinstance(t, GraphQLObjectType) and field in t.fields


def test_mapping_points_at_real_fields() -> None:
    schema = build_schema(sdl())
    paths = [p for cols in TABLES.values() for ps in cols.values() for p in ps]
    paths += [p for ps in SECTIONS.values() for p in ps]
    missing = [p for p in paths if not _has(schema, p)]
    assert missing == []


def test_every_dashboard_table_and_column_is_mapped() -> None:
    if not DASHBOARD.exists():
        pytest.skip(f"{DASHBOARD} not found (shared/ is laid beside the repository)")
    text = DASHBOARD.read_text()
    headers = [
        " | ".join(c.strip() for c in line.strip().strip("|").split("|"))
        for line in text.splitlines()
        if line.startswith("| ") and not re.match(r"^\|\s*(Loading|Enable protection)", line)
    ]
    assert headers, "no table found in the dashboard text"
    for header in headers:
        assert header in TABLES, f"dashboard table not covered by the schema mapping: {header}"
        assert list(TABLES[header]) == header.split(" | ")
    for section in SECTIONS:
        assert section in text, f"section {section!r} is no longer in the dashboard text"
