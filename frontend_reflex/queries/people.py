"""Documents of the session, Home, users, organizations, apps, their keys and usage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from frontend_reflex.queries.common import Op, _enums, _ids

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
