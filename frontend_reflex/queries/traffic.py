"""Documents of routing, the gateway log, key management, error reports and DLP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from frontend_reflex.queries.common import Op, _ids, enum_name

# -- routing -----------------------------------------------------------------------------------
ALIASES = """
query Aliases {
  modelAliases { id requestedModel targetModel scope organization { id name } }
}"""


def create_alias(requested: str, target: str, org_id: str, *, confirm: bool = False) -> Op:
    """``confirm``: save a target the catalog does not know (the gateway refuses it otherwise)."""
    doc = """
mutation CreateAlias($input: CreateModelAliasInput!) {
  createModelAlias(input: $input) { id }
}"""
    fields: dict[str, Any] = {"requestedModel": requested, "targetModel": target}
    if org_id:
        fields["organizationId"] = org_id
    fields = _ids(fields)
    fields["confirmUnknownTarget"] = confirm
    return doc, {"input": fields}


def delete_alias(alias_id: str) -> Op:
    return "mutation DeleteAlias($id: Int!) { deleteModelAlias(id: $id) }", {"id": int(alias_id)}


AGENTS = "query Agents { agentConfigs { id agentId name role normalModel heavyModel maxModel } }"


def update_agent(agent_pk: str, fields: Mapping[str, Any]) -> Op:
    doc = """
mutation UpdateAgent($id: Int!, $input: UpdateAgentConfigInput!) {
  updateAgentConfig(id: $id, input: $input) { id }
}"""
    return doc, {"id": int(agent_pk), "input": dict(fields)}


def import_agents(yaml_text: str) -> Op:
    doc = """
mutation ImportAgents($yaml: String!) {
  importAgentConfigs(yaml: $yaml) { created updated deleted }
}"""
    return doc, {"yaml": yaml_text}


MODELS = """
query Models {
  modelCatalog {
    model provider contextWindow inputPerMtok outputPerMtok cachedPerMtok reachable source
    overridden
  }
}"""

# -- gateway logs ------------------------------------------------------------------------------
_LOG_EVENT_FIELDS = (
    "requestId createdAt keyPrefix user { id name email } endpoint requestedModel actualModel "
    "deployment status inputTokens outputTokens costUsd latencyMs organizationId userId appId "
    "provider errorType upstreamStatus refusal { kind }"
)

# The page and the API's count of every row the filter matches (bounded: "more than 10,000").
LOGS = f"""
query Logs($first: Int, $after: String, $f: GatewayLogFilter) {{
  gatewayLogs(first: $first, after: $after, sort: NEWEST, filter: $f) {{
    nodes {{ id {_LOG_EVENT_FIELDS} app {{ id name }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
  gatewayLogCount(filter: $f) {{ count exact }}
}}"""

# What the log filter's selects offer: the first ``$n`` by name of each list, narrowed by the
# page's "Find" box (``$q``: the API's search in names, emails and slugs), with their totals.
LOG_FILTER_OPTIONS = """
query LogFilterOptions($q: String, $n: Int) {
  organizations(first: $n, search: $q, sort: NAME_ASC) { nodes { id name } totalCount }
  users(first: $n, filter: {search: $q}, sort: NAME_ASC) { nodes { id name email } totalCount }
  apps(first: $n, search: $q, sort: NAME_ASC) { nodes { id name } totalCount }
}"""

# Every row of one request, its fallback attempts first (oldest first), bodies included.
REQUEST_DETAIL = """
query RequestDetail($id: String!) {
  gatewayLogs(filter: {requestId: $id, includeSuperseded: true}, sort: OLDEST, first: 100) {
    nodes {
      id requestId createdAt keyPrefix endpoint requestedModel actualModel provider deployment
      status superseded errorType errorCode errorMessage upstreamStatus latencyMs ttftMs
      streamed attempts cacheHit agentId tier tags inputTokens cachedTokens outputTokens
      reasoningTokens costUsd requestBody responseBody organizationId
      price { inputPerMtok outputPerMtok cachedPerMtok cacheWritePerMtok source }
      refusal { kind summary scope scopeId period metric limit used resetsAt retryAfterSeconds
                model level reason }
      user { id name email } app { id name }
    }
  }
}"""

LOGS_SUBSCRIPTION = f"subscription LiveLogs {{ gatewayLogs {{ {_LOG_EVENT_FIELDS} }} }}"

# -- key management (the Keys page) -----------------------------------------------------------
KEYS_PAGE = """
query KeysPage($first: Int, $after: String, $f: ApiKeyFilter) {
  apiKeys(filter: $f, first: $first, after: $after, sort: CREATED_DESC) {
    nodes {
      id name prefix kind status createdAt expiresAt revokedAt lastUsedAt
      user { id name email organization { id name } }
      app { id name organization { id name } }
      limits { requestsPerMinute tokensPerMinute spendCapUsd capPeriod locks { limit } }
      spendThisPeriod { period periodStart costUsd requests unknownCostRequests }
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}"""


def rotate_key(key_id: str, grace_seconds: int) -> Op:
    doc = """
mutation RotateKey($id: Int!, $grace: Int) {
  rotateApiKey(id: $id, graceSeconds: $grace) {
    secret
    apiKey { id prefix }
    previous { id prefix status expiresAt revokedAt }
  }
}"""
    return doc, {"id": int(key_id), "grace": grace_seconds or None}


def set_key_expiry(key_id: str, expires_at: str | None) -> Op:
    """``expires_at``: an ISO time, or None for "never"."""
    doc = """
mutation KeyExpiry($id: Int!, $at: DateTime) {
  updateApiKey(id: $id, input: {expiresAt: $at}) { id expiresAt status }
}"""
    return doc, {"id": int(key_id), "at": expires_at}


ERRORS = """
query Errors($first: Int, $after: String) {
  errorReports(first: $first, after: $after) {
    nodes {
      id createdAt source type model error user { id name email } agent version requestId
    }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}"""

# -- DLP ---------------------------------------------------------------------------------------
DLP = """
query Dlp($first: Int, $after: String) {
  dlpProtectionsPaged(first: $first, after: $after) {
    nodes { scope targetId name enabled status rulesEnabled lastActivityAt }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}"""

DLP_ACTIVITY = """
query DlpActivity($first: Int, $after: String) {
  dlpActivity(first: $first, after: $after) {
    nodes { id createdAt kind scope rule matches size requestId detail }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}"""


def set_dlp(scope: str, target_id: str, enabled: bool) -> Op:
    doc = """
mutation SetDlp($scope: DlpScope!, $targetId: Int!, $enabled: Boolean!) {
  setDlpProtection(scope: $scope, targetId: $targetId, enabled: $enabled) { enabled }
}"""
    return doc, {"scope": enum_name(scope), "targetId": int(target_id), "enabled": enabled}
