"""Every GraphQL document the dashboard sends, and the shape of its variables.

All knowledge of the gateway's schema (``schema.graphql``) lives here: states call these builders
with plain Python values (ids as the strings they keep in their state) and read results through
:mod:`frontend_reflex.fmt`, so a schema change touches one file.

Fixed sets of values (role, status, capPeriod, strategy, kind, scope, feature...) are GraphQL enums
named like the gateway's stored strings in upper case (``org_admin`` is ``ORG_ADMIN``,
``least-busy`` is ``LEAST_BUSY``). The dashboard keeps the stored strings in its state (its forms
and labels use them): builders send ``enum_name(value)``, states read with ``stored(name)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

Op = tuple[str, dict[str, Any]]
_ID_FIELDS = ("organizationId", "ownerId", "userId", "appId")
_ENUM_FIELDS = ("role", "status", "capPeriod", "kind")
# Stored values with a dash: their enum names have "_" (which other stored values also use).
_DASHED = frozenset({"least-busy", "round-robin", "price-table"})


def enum_name(value: str) -> str:
    """The GraphQL enum name of a stored value (``least-busy`` -> ``LEAST_BUSY``)."""
    return value.strip().upper().replace("-", "_")


def stored(name: Any, default: str = "") -> str:
    """The stored value of a GraphQL enum name (``LEAST_BUSY`` -> ``least-busy``)."""
    if not name:
        return default
    low = str(name).lower()
    dashed = low.replace("_", "-")
    return dashed if dashed in _DASHED else low


def _enums(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Enum-typed input fields as enum names (an empty value stays as sent: the gateway says)."""
    out = dict(fields)
    for key in _ENUM_FIELDS:
        if isinstance(out.get(key), str) and out[key]:
            out[key] = enum_name(out[key])
    return out


def _ids(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Ids travel as strings in the dashboard's state; the schema's ids are Int."""
    out = dict(fields)
    for key in _ID_FIELDS:
        if out.get(key) not in (None, ""):
            out[key] = int(out[key])
        elif key in out:
            out[key] = None
    return out


# -- session -----------------------------------------------------------------------------------
USER_FIELDS = "id name email role status weeklyCapUsd hasPassword organization { id name }"

LOGIN = f"""
mutation Login($email: String!, $password: String!) {{
  login(email: $email, password: $password) {{ token user {{ {USER_FIELDS} }} }}
}}"""

LOGOUT = "mutation Logout { logout }"

ME = f"query Me {{ me {{ {USER_FIELDS} }} }}"


def login_result(data: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    result = data.get("login")
    if isinstance(result, Mapping):
        user = result.get("user")
        return str(result.get("token") or ""), dict(user) if isinstance(user, Mapping) else None
    return "", None


# -- home --------------------------------------------------------------------------------------
_DASHBOARD_COMMON = """
    costTrends(days: 7) { day costUsd requests byProvider { provider costUsd } }
    providerLoad(hours: 24) { provider requests share errors errorRate avgLatencyMs health }
    topSpenders(days: 7, limit: 10) {
      userId costUsd unknownCostRequests requests tokens user { name email }
    }
    routingStrategy"""
_LIVE = """
    live(minutes: 60) {
      minutes { minute requests errors tokens costUsd p50Ms p95Ms }
      requests errors tokens costUsd unknownCostRequests p50Ms p95Ms
    }"""


def dashboard(*, with_live: bool) -> str:
    """Every admin reads all of it (org_admins: their organization's numbers, live hour included);
    ``with_live`` False leaves the live hour out (the benchmarks time both)."""
    return f"query Dashboard {{ dashboard {{ {_LIVE if with_live else ''}{_DASHBOARD_COMMON} }} }}"


# -- users, organizations, apps -----------------------------------------------------------------
# One page of each list, newest first, with the true total (``state.pager``); ``$f`` / ``$q``:
# the page's search box.
USERS = f"""
query Users($first: Int, $after: String, $f: UserFilter) {{
  users(first: $first, after: $after, filter: $f, sort: CREATED_DESC) {{
    nodes {{ {USER_FIELDS} createdAt }}
    pageInfo {{ hasNextPage endCursor }}
    totalCount
  }}
}}"""

ORG_FIELDS = (
    "id name slug owner { id name email } memberCount spendCapUsd capPeriod rollover "
    "dlpEnabled ssoOnly createdAt"
)

ORGANIZATIONS = f"""
query Organizations($first: Int, $after: String, $q: String) {{
  organizations(first: $first, after: $after, search: $q, sort: CREATED_DESC) {{
    nodes {{ {ORG_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
    totalCount
  }}
}}"""

APP_FIELDS = "id name slug contact active dlpEnabled createdAt organization { id name }"

APPS = f"""
query Apps($first: Int, $after: String, $q: String) {{
  apps(first: $first, after: $after, search: $q, sort: CREATED_DESC) {{
    nodes {{ {APP_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
    totalCount
  }}
}}"""


def create_user(fields: Mapping[str, Any]) -> Op:
    doc = f"""
mutation CreateUser($input: CreateUserInput!) {{
  createUser(input: $input) {{ {USER_FIELDS} }}
}}"""
    return doc, {"input": _enums(_ids(fields))}


def update_user(user_id: str, fields: Mapping[str, Any]) -> Op:
    doc = f"""
mutation UpdateUser($id: Int!, $input: UpdateUserInput!) {{
  updateUser(id: $id, input: $input) {{ {USER_FIELDS} }}
}}"""
    return doc, {"id": int(user_id), "input": _enums(_ids(fields))}


def set_user_status(user_id: str, status: str) -> Op:
    return update_user(user_id, {"status": status})


def create_organization(fields: Mapping[str, Any]) -> Op:
    doc = f"""
mutation CreateOrganization($input: CreateOrganizationInput!) {{
  createOrganization(input: $input) {{ {ORG_FIELDS} }}
}}"""
    return doc, {"input": _enums(_ids(fields))}


def update_organization(org_id: str, fields: Mapping[str, Any]) -> Op:
    doc = f"""
mutation UpdateOrganization($id: Int!, $input: UpdateOrganizationInput!) {{
  updateOrganization(id: $id, input: $input) {{ {ORG_FIELDS} }}
}}"""
    return doc, {"id": int(org_id), "input": _enums(_ids(fields))}


def create_app(fields: Mapping[str, Any]) -> Op:
    doc = f"""
mutation CreateApp($input: CreateAppInput!) {{
  createApp(input: $input) {{ {APP_FIELDS} }}
}}"""
    return doc, {"input": _ids(fields)}


def update_app(app_id: str, fields: Mapping[str, Any]) -> Op:
    doc = f"""
mutation UpdateApp($id: Int!, $input: UpdateAppInput!) {{
  updateApp(id: $id, input: $input) {{ {APP_FIELDS} }}
}}"""
    return doc, {"id": int(app_id), "input": _ids(fields)}


# -- API keys ----------------------------------------------------------------------------------
KEY_FIELDS = "id name prefix status createdAt lastUsedAt revokedAt expiresAt"


def my_keys(user_id: str) -> Op:
    doc = f"""
query MyKeys($userId: Int!) {{
  apiKeys(filter: {{ userId: $userId }}, first: 200) {{ nodes {{ {KEY_FIELDS} }} }}
}}"""
    return doc, {"userId": int(user_id)}


def create_api_key(*, name: str, user_id: str = "", app_id: str = "") -> Op:
    doc = f"""
mutation CreateApiKey($input: CreateApiKeyInput!) {{
  createApiKey(input: $input) {{ secret apiKey {{ {KEY_FIELDS} }} }}
}}"""
    fields: dict[str, Any] = {"name": name}
    if user_id:
        fields["userId"] = user_id
    if app_id:
        fields["appId"] = app_id
    return doc, {"input": _ids(fields)}


def created_secret(data: Mapping[str, Any]) -> str:
    result = data.get("createApiKey") or {}
    return str(result.get("secret") or "") if isinstance(result, Mapping) else ""


def revoke_api_key(key_id: str) -> Op:
    doc = "mutation Revoke($id: Int!) { revokeApiKey(id: $id) { id status revokedAt } }"
    return doc, {"id": int(key_id)}


# -- usage -------------------------------------------------------------------------------------
_USAGE_FIELDS = "userId requests errors inputTokens outputTokens costUsd unknownCostRequests"

USAGE = f"""
query Usage($first: Int, $after: String) {{
  userUsage(first: $first, after: $after, sort: COST_DESC) {{
    nodes {{ {_USAGE_FIELDS} exportUrl user {{ id name email }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""


def week_start(now: dt.datetime | None = None) -> dt.datetime:
    """Monday 00:00 UTC of the current ISO week: the period of a user's weekly cap."""
    now = now or dt.datetime.now(dt.UTC)
    day = now.astimezone(dt.UTC).date()
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime.combine(monday, dt.time(), tzinfo=dt.UTC)


def user_usage(user_id: str | None = None) -> Op:
    """Last 30 days and this ISO week of one user (members: their own, ``user_id`` None)."""
    doc = f"""
query UserUsage($userId: Int, $week: DateTime) {{
  month: userUsage(userId: $userId) {{ nodes {{ {_USAGE_FIELDS} }} }}
  week: userUsage(userId: $userId, since: $week) {{ nodes {{ {_USAGE_FIELDS} }} }}
}}"""
    uid = int(user_id) if user_id else None
    return doc, {"userId": uid, "week": week_start().isoformat()}


def activity_csv_path(user_id: str) -> str:
    return f"/admin/users/{int(user_id)}/activity.csv"


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


# -- gateway settings --------------------------------------------------------------------------
_SETTINGS_FIELDS = (
    "routingStrategy routingStrategies ollama { baseUrl connected configuredBy healthy lastError } "
    "offeredFeatures knownFeatures"
)

SETTINGS = f"""
query Settings {{
  gatewaySettings {{ {_SETTINGS_FIELDS} }}
  providerCredentials {{ provider kind baseUrl apiKeySet apiKeyLast4 enabled updatedAt }}
  fallbackChains {{ primaryModel chain }}
  modelCatalog {{ model provider reachable }}
}}"""


def set_strategy(strategy: str) -> Op:
    doc = """
mutation SetStrategy($s: RoutingStrategy!) {
  setRoutingStrategy(strategy: $s) { routingStrategy }
}"""
    return doc, {"s": enum_name(strategy)}


def set_ollama(base_url: str) -> Op:
    doc = """
mutation SetOllama($url: String) {
  setOllamaConnection(baseUrl: $url) { ollama { baseUrl connected } }
}"""
    return doc, {"url": base_url or None}


def set_credential(provider: str, fields: Mapping[str, Any]) -> Op:
    doc = """
mutation SetCredential($provider: String!, $input: ProviderCredentialInput!) {
  setProviderCredential(provider: $provider, input: $input) { provider apiKeyLast4 }
}"""
    return doc, {"provider": provider, "input": _enums(fields)}


def set_chain(primary: str, chain: list[str], *, confirm: bool = False) -> Op:
    doc = """
mutation SetChain($primary: String!, $chain: [String!]!, $confirm: Boolean!) {
  setFallbackChain(primaryModel: $primary, chain: $chain, confirmUnknownTarget: $confirm) {
    primaryModel
  }
}"""
    return doc, {"primary": primary, "chain": chain, "confirm": confirm}


def unknown_target(message: str) -> bool:
    """The gateway refused a model name its catalog does not know (saving needs a confirm)."""
    return "confirmUnknownTarget" in message


def delete_chain(primary: str) -> Op:
    doc = "mutation DeleteChain($primary: String!) { deleteFallbackChain(primaryModel: $primary) }"
    return doc, {"primary": primary}


def set_offered_features(features: list[str]) -> Op:
    doc = """
mutation SetFeatures($f: [Feature!]!) {
  setOfferedFeatures(features: $f) { offeredFeatures }
}"""
    return doc, {"f": [enum_name(f) for f in features]}


MY_FEATURES = "query MyFeatures { userFeatures { name description offered enabled } }"


def set_opt_in(feature: str, enabled: bool) -> Op:
    doc = """
mutation OptIn($feature: Feature!, $enabled: Boolean!) {
  setFeatureOptIn(feature: $feature, enabled: $enabled) { name enabled }
}"""
    return doc, {"feature": enum_name(feature), "enabled": enabled}


# -- provider deployments ----------------------------------------------------------------------
DEPLOYMENTS = """
query Deployments {
  providerDeployments {
    provider name baseUrl apiKeySet apiKeyLast4 weight rpmLimit tpmLimit models enabled
    status {
      health problem inFlight requests failures rateLimited limitRefusals cooldownSeconds
      lastError requestsLastMinute tokensLastMinute instances
    }
  }
}"""


def set_deployment(provider: str, name: str, fields: Mapping[str, Any]) -> Op:
    doc = """
mutation SetDeployment($p: String!, $n: String!, $i: ProviderDeploymentInput!) {
  setProviderDeployment(provider: $p, name: $n, input: $i) { provider name apiKeyLast4 }
}"""
    return doc, {"p": provider, "n": name, "i": dict(fields)}


def delete_deployment(provider: str, name: str) -> Op:
    doc = """
mutation DeleteDeployment($p: String!, $n: String!) {
  deleteProviderDeployment(provider: $p, name: $n)
}"""
    return doc, {"p": provider, "n": name}


# -- alerts ------------------------------------------------------------------------------------
ALERTS = """
query Alerts {
  alertChannels {
    name kind url secretSet secretLast4 smtpHost smtpPort sender recipients enabled
  }
  alertRules {
    name kind channels thresholds scopeKind provider errorRatePercent minRequests
    windowSeconds enabled
  }
  alertDeliveries(first: 50) {
    id createdAt kind severity title channel status attempts lastError sentAt
  }
}"""


def set_alert_channel(name: str, fields: Mapping[str, Any]) -> Op:
    doc = """
mutation SetAlertChannel($n: String!, $i: AlertChannelInput!) {
  setAlertChannel(name: $n, input: $i) { name secretLast4 }
}"""
    out = dict(fields)
    for key in ("kind", "smtpSecurity"):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = enum_name(out[key])
    return doc, {"n": name, "i": out}


def delete_alert_channel(name: str) -> Op:
    doc = "mutation DeleteAlertChannel($n: String!) { deleteAlertChannel(name: $n) }"
    return doc, {"n": name}


def send_test_alert(name: str) -> Op:
    doc = """
mutation SendTestAlert($n: String!) {
  sendTestAlert(name: $n) { id status attempts lastError }
}"""
    return doc, {"n": name}


def set_alert_rule(name: str, fields: Mapping[str, Any]) -> Op:
    doc = """
mutation SetAlertRule($n: String!, $i: AlertRuleInput!) {
  setAlertRule(name: $n, input: $i) { name }
}"""
    out = dict(fields)
    for key in ("kind", "scopeKind"):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = enum_name(out[key])
    return doc, {"n": name, "i": out}


def delete_alert_rule(name: str) -> Op:
    doc = "mutation DeleteAlertRule($n: String!) { deleteAlertRule(name: $n) }"
    return doc, {"n": name}


# -- single sign-on ----------------------------------------------------------------------------
SSO_LOGIN = "query SsoLogin { ssoLogin { enabled displayName loginUrl } }"

REDEEM_SSO = f"""
mutation RedeemSso($ticket: String!) {{
  redeemSsoLogin(ticket: $ticket) {{ token user {{ {USER_FIELDS} }} }}
}}"""

SSO_SETTINGS = """
query SsoSettings {
  ssoProvider {
    enabled displayName issuer clientId clientSecretSet clientSecretLast4 scopes gatewayUrl
    dashboardUrl callbackUrl defaultRole defaultOrganizationId requireVerifiedEmail
  }
  ssoRules { id position claim value role organization { id name } }
}"""


def redeem_result(data: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """``(token, user)`` of a redeemed sign-in ticket (the shape of ``login``)."""
    return login_result({"login": data.get("redeemSsoLogin")})


def set_sso_provider(fields: Mapping[str, Any]) -> Op:
    doc = """
mutation SetSsoProvider($input: SsoProviderInput!) {
  setSsoProvider(input: $input) { issuer clientSecretLast4 callbackUrl }
}"""
    out = dict(fields)
    if "defaultOrganizationId" in out:
        raw = out["defaultOrganizationId"]
        out["defaultOrganizationId"] = int(raw) if raw not in (None, "") else None
    if "defaultRole" in out:
        out["defaultRole"] = enum_name(out["defaultRole"]) if out["defaultRole"] else None
    return doc, {"input": out}


def create_sso_rule(fields: Mapping[str, Any]) -> Op:
    doc = """
mutation CreateSsoRule($input: SsoRuleInput!) { createSsoRule(input: $input) { id } }"""
    return doc, {"input": _enums(_ids(fields))}


def delete_sso_rule(rule_id: str) -> Op:
    doc = "mutation DeleteSsoRule($id: Int!) { deleteSsoRule(id: $id) }"
    return doc, {"id": int(rule_id)}


# -- limits (keys, users, apps, organizations) --------------------------------------------------
LIMIT_FIELDS = (
    "requestsPerMinute tokensPerMinute allowedModels spendCapUsd capPeriod "
    "locks { limit ceiling setById setByName setByRole setAt }"
)
LIMITS = f"""
query Limits($target: LimitTarget!, $id: Int!) {{
  limits(target: $target, id: $id) {{ {LIMIT_FIELDS} }}
}}"""


def set_limits(target: str, ident: str, changes: Mapping[str, Any]) -> Op:
    """``changes`` holds only what changed (LimitsInput: a field left out stays, null removes)."""
    doc = f"""
mutation SetLimits($target: LimitTarget!, $id: Int!, $input: LimitsInput!) {{
  setLimits(target: $target, id: $id, input: $input) {{ {LIMIT_FIELDS} }}
}}"""
    return doc, {"target": target, "id": int(ident), "input": _enums(changes)}


# -- analytics ---------------------------------------------------------------------------------
_TOTALS = (
    "requests errors errorRate inputTokens outputTokens cachedTokens costUsd "
    "unknownCostRequests avgLatencyMs p50Ms p95Ms"
)

ANALYTICS = f"""
query Analytics($d: AnalyticsDimension!, $s: DateTime!, $u: DateTime!, $f: AnalyticsFilter,
                $l: Int) {{
  analytics(dimension: $d, since: $s, until: $u, filter: $f, limit: $l) {{
    dimension since until granularity groupCount
    groups {{ key label entityId totals {{ {_TOTALS} }} }}
    total {{ {_TOTALS} }}
    series {{ bucket requests errors costUsd unknownCostRequests }}
  }}
}}"""


def analytics(
    dimension: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    limit: int = 100,
    filters: Mapping[str, Any] | None = None,
) -> Op:
    """``dimension`` as stored (``model``, ``org``...); the window [since, until) in UTC."""
    names = {"org": "ORGANIZATION"}
    return ANALYTICS, {
        "d": names.get(dimension, enum_name(dimension)),
        "s": since.isoformat(),
        "u": until.isoformat(),
        "f": _ids(filters) if filters else None,
        "l": limit,
    }


#: One page of a usage table (the Usage page's users or apps): no series, no window total.
USAGE_GROUPS = f"""
query UsageGroups($d: AnalyticsDimension!, $s: DateTime!, $u: DateTime!, $l: Int!, $o: Int!) {{
  analytics(dimension: $d, since: $s, until: $u, limit: $l, offset: $o) {{
    groupCount
    groups {{ key label entityId totals {{ {_TOTALS} }} }}
  }}
}}"""


#: One page of the Analytics table in the order chosen (``AnalyticsSort``); no series, no total.
ANALYTICS_PAGE = f"""
query AnalyticsPage($d: AnalyticsDimension!, $s: DateTime!, $u: DateTime!, $f: AnalyticsFilter,
                    $l: Int!, $o: Int!, $sort: AnalyticsSort!) {{
  analytics(dimension: $d, since: $s, until: $u, filter: $f, limit: $l, offset: $o, sort: $sort) {{
    groupCount
    groups {{ key label entityId totals {{ {_TOTALS} }} }}
  }}
}}"""


def analytics_page(
    dimension: str,
    since: dt.datetime,
    until: dt.datetime,
    *,
    limit: int,
    offset: int,
    sort: str,
) -> Op:
    """``limit`` groups after ``offset`` in the order ``sort`` (an ``AnalyticsSort`` name)."""
    _doc, variables = analytics(dimension, since, until, limit=limit)
    return ANALYTICS_PAGE, {**variables, "o": offset, "sort": sort}


def usage_groups(
    dimension: str, since: dt.datetime, until: dt.datetime, *, limit: int, offset: int
) -> Op:
    """``limit`` groups of ``dimension`` (``user`` or ``app``) after the first ``offset``."""
    return USAGE_GROUPS, {
        "d": enum_name(dimension),
        "s": since.isoformat(),
        "u": until.isoformat(),
        "l": limit,
        "o": offset,
    }


# -- audit log ---------------------------------------------------------------------------------
AUDIT = """
query Audit($first: Int, $after: String, $a: String, $t: String, $who: Int, $s: DateTime,
            $u: DateTime) {
  auditLog(first: $first, after: $after, action: $a, target: $t, actorId: $who, since: $s,
           until: $u) {
    nodes { id createdAt actorId actor { id name email } action target detail }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}"""

# -- catalog and price overrides ---------------------------------------------------------------
PRICE_OVERRIDES = """
query Prices { priceOverrides { model inputPerMtok outputPerMtok cachedPerMtok contextWindow } }"""


def set_price(model: str, fields: Mapping[str, Any]) -> Op:
    doc = """
mutation SetPrice($m: String!, $i: PriceOverrideInput!) {
  setPriceOverride(model: $m, input: $i) { model }
}"""
    return doc, {"m": model, "i": dict(fields)}


def delete_price(model: str) -> Op:
    return "mutation DeletePrice($m: String!) { deletePriceOverride(model: $m) }", {"m": model}
