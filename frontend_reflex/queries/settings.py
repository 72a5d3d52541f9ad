"""Documents of gateway settings, deployments, alerts, single sign-on and limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from frontend_reflex.queries.common import Op, _enums, _ids, enum_name
from frontend_reflex.queries.people import USER_FIELDS, login_result

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
