"""The authorization table: who may call each GraphQL field and HTTP route, read from the code.

``python -m backend.graphql.authz --write`` regenerates ``docs/AUTHZ.md``; ``--check`` exits 1
when the file is stale (so does tests/security/test_authz_audit.py, which also calls every
field and route with every role and checks the outcome against this table).

Where each part comes from:

- Roles: the ``roles`` of the permission classes on each field (``backend.graphql.permissions``),
  intersected along the path from the root for a gated nested field (``Query.dashboard.live``).
  A field without permission classes is public.
- Scope: which rows an allowed ``org_admin`` or ``member`` reaches is decided by the admin
  services (``backend.admin.access``) and cannot be read off the schema, so it is declared in
  ``SCOPES``. A field that lets an ``org_admin`` or ``member`` in without a declared scope, or a
  declaration for a role the gate refuses, is an error: nothing new escapes review.
- HTTP: every route of the assembled app (``all_routes``), each declared in ``ROUTES``; a route
  without a declaration is an error.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from starlette.routing import BaseRoute, Route, WebSocketRoute

from backend.admin.access import ROLES

NONE = "none"
COLUMNS = (*ROLES, NONE)
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "AUTHZ.md"
#: The same table for the dashboard, which shows a control only to roles that may use it (it
#: never imports ``backend``: it reads this generated file).
UI_PATH = Path(__file__).resolve().parents[2] / "frontend_reflex" / "permissions.json"

# Scope vocabulary (what an allowed role reaches).
ALL = "all"
ANYONE = "anyone"
SELF = "self"
ORG = "own org"
GLOBAL_READ = "global (read)"
# Request rows belong to the organization each request was made under, not the user's current one.
MADE_UNDER_ORG = "requests made under own org"
OWN_UNDER_ORG = "own requests made under own org"
# Error reports likewise belong to the organization each was made under.
REPORTS_UNDER_ORG = {
    "org_admin": "reports made under own org",
    "member": "own reports made under own org",
}

#: Row scope of each field an org_admin or member may call (super_admins: "all" by default).
SCOPES: dict[str, dict[str, str]] = {
    # tenancy
    "Query.me": {"super_admin": SELF, "org_admin": SELF, "member": SELF},
    "Query.users": {"org_admin": "own org (no super_admins)"},
    "Query.user": {"org_admin": "own org (no super_admins), self", "member": SELF},
    "Query.organizations": {"org_admin": ORG},
    "Query.organization": {"org_admin": ORG, "member": ORG},
    "Query.apps": {"org_admin": ORG},
    "Query.app": {"org_admin": ORG},
    "Mutation.createUser": {"org_admin": "own org; not super_admin role"},
    "Mutation.updateUser": {"org_admin": "own org (no super_admins); not super_admin role"},
    "Mutation.deleteUser": {"org_admin": "own org (no super_admins); not self"},
    "Mutation.createApp": {"org_admin": ORG},
    "Mutation.updateApp": {"org_admin": ORG},
    "Mutation.deleteApp": {"org_admin": ORG},
    # keys and tokens
    "Query.apiKeys": {"org_admin": "own org's users and apps", "member": "own keys"},
    "Query.apiKey": {"org_admin": "own org's users and apps", "member": "own keys"},
    "Mutation.createApiKey": {"org_admin": "own org's users and apps", "member": "own keys"},
    "Mutation.updateApiKey": {"org_admin": "own org's users and apps", "member": "own keys"},
    "Mutation.revokeApiKey": {"org_admin": "own org's users and apps", "member": "own keys"},
    "Mutation.rotateApiKey": {"org_admin": "own org's users and apps", "member": "own keys"},
    "Mutation.deleteApiKey": {"org_admin": "own org's users and apps", "member": "own keys"},
    "Query.adminTokens": {"org_admin": "own tokens"},
    # limits (rates, tokens, allowlists, caps) and spend by tag
    "Query.limits": {
        "org_admin": "own org's users, apps and keys; own org",
        "member": "own keys, self, own org",
    },
    "Mutation.setLimits": {
        "org_admin": "own org's users, apps and keys (organizations: super_admin)",
        "member": "own keys; not above a limit an admin set",
    },
    "Query.spendByTag": {"org_admin": MADE_UNDER_ORG, "member": OWN_UNDER_ORG},
    "Mutation.createAdminToken": {"super_admin": SELF, "org_admin": SELF},
    "Mutation.revokeAdminToken": {"org_admin": "own tokens"},
    # routing
    "Query.modelAliases": {"org_admin": "global + own org"},
    "Mutation.createModelAlias": {"org_admin": "own org (global: super_admin)"},
    "Mutation.updateModelAlias": {"org_admin": "own org (global: super_admin)"},
    "Mutation.deleteModelAlias": {"org_admin": "own org (global: super_admin)"},
    "Query.agentConfigs": {"org_admin": GLOBAL_READ},
    "Query.fallbackChains": {"org_admin": GLOBAL_READ},
    "Query.priceOverrides": {"org_admin": GLOBAL_READ},
    "Query.modelCatalog": {"org_admin": GLOBAL_READ},
    # settings and opt-ins
    "Query.gatewaySettings": {"org_admin": GLOBAL_READ},
    "Query.userFeatures": {"org_admin": "own org's users", "member": SELF},
    "Mutation.setFeatureOptIn": {"org_admin": "own org's users", "member": SELF},
    # DLP
    "Query.dlpRules": {
        "super_admin": "built-in rule list",
        "org_admin": "built-in rule list",
        "member": "built-in rule list",
        NONE: "built-in rule list",
    },
    "Query.dlpProtections": {"org_admin": "own org and its apps"},
    "Query.dlpProtectionsPaged": {"org_admin": "own org and its apps"},
    "Query.dlpProtection": {"org_admin": "own org and its apps"},
    "Query.dlpActivity": {"org_admin": "own org and its apps"},
    "Mutation.setDlpProtection": {"org_admin": "own org and its apps"},
    "Mutation.updateDlpPolicy": {"org_admin": "own org and its apps"},
    # logs, usage, errors, dashboard
    "Query.gatewayLogs": {"org_admin": MADE_UNDER_ORG, "member": OWN_UNDER_ORG},
    "Query.gatewayLog": {"org_admin": MADE_UNDER_ORG, "member": OWN_UNDER_ORG},
    "Query.gatewayLogCount": {"org_admin": MADE_UNDER_ORG, "member": OWN_UNDER_ORG},
    "Query.userUsage": {"org_admin": MADE_UNDER_ORG, "member": OWN_UNDER_ORG},
    "Query.errorReports": REPORTS_UNDER_ORG,
    "Mutation.reportError": {"super_admin": "as self", "org_admin": "as self", "member": "as self"},
    "Query.dashboard": {"org_admin": ORG},
    "Query.dashboard.live": {"org_admin": MADE_UNDER_ORG},
    "Query.analytics": {"org_admin": MADE_UNDER_ORG, "member": OWN_UNDER_ORG},
    # auth
    "Mutation.login": {"super_admin": ANYONE, "org_admin": ANYONE, "member": ANYONE, NONE: ANYONE},
    "Mutation.logout": {
        "super_admin": "own token",
        "org_admin": "own token",
        "member": "own token",
        NONE: "no-op",
    },
    "Mutation.changePassword": {"super_admin": SELF, "org_admin": SELF, "member": SELF},
    # single sign-on (settings and rules: super_admin only)
    "Query.ssoLogin": {role: ANYONE for role in COLUMNS},
    "Mutation.redeemSsoLogin": {role: "the holder of a sign-in ticket" for role in COLUMNS},
    # live
    "Subscription.gatewayLogs": {"org_admin": MADE_UNDER_ORG, "member": OWN_UNDER_ORG},
    "Subscription.errorReports": REPORTS_UNDER_ORG,
}

#: Roles that may change rows belonging to no organization (global aliases), for fields whose
#: other rows an org_admin may change in their own organization. The services enforce it
#: (``require_super`` on a global row); the dashboard hides these controls on global rows.
GLOBAL_ROWS: dict[str, frozenset[str]] = {
    "Mutation.createModelAlias": frozenset({"super_admin"}),
    "Mutation.updateModelAlias": frozenset({"super_admin"}),
    "Mutation.deleteModelAlias": frozenset({"super_admin"}),
}

_API_KEY = {
    "super_admin": "own API key",
    "org_admin": "own API key",
    "member": "own API key",
}
#: Every HTTP route: who may call it. Proxy routes take gateway API keys (app keys too), never a
#: dashboard session or admin token; admin routes take a session or admin token.
ROUTES: dict[str, dict[str, str]] = {
    "GET /healthz": {role: ANYONE for role in COLUMNS},
    "POST /v1/chat/completions": _API_KEY,
    "POST /v1/messages": _API_KEY,
    "POST /v1/messages/count_tokens": _API_KEY,
    "POST /v1/embeddings": _API_KEY,
    "GET /v1/models": _API_KEY,
    "POST /v1/error-reports": _API_KEY,
    # The Gemini door (key as x-goog-api-key or ?key=); /v1/models/... is its google-genai 3.x
    # spelling.
    "GET /v1beta/models": _API_KEY,
    "GET /v1beta/models/{name:path}": _API_KEY,
    "POST /v1beta/models/{name:path}": _API_KEY,
    "GET /v1/models/{name:path}": _API_KEY,
    "POST /v1/models/{name:path}": _API_KEY,
    # The Responses door; a WebSocket upgrade there is answered 426 whoever asks (clients such as
    # Codex then use HTTP), before any key is read.
    "POST /v1/responses": _API_KEY,
    "WS /v1/responses": {role: "anyone: refused with 426 (use HTTP)" for role in COLUMNS},
    # Stored responses: the key's own organization's only (another's id is a 404).
    "GET /v1/responses/{response_id}": _API_KEY,
    "DELETE /v1/responses/{response_id}": _API_KEY,
    "GET /v1/responses/{response_id}/input_items": _API_KEY,
    "GET /admin/users/{user_id:int}/activity.csv": {
        "super_admin": "any user",
        "org_admin": "requests made under own org, by its users or users who left it"
        " (no super_admins)",
        "member": OWN_UNDER_ORG,
    },
    # Each field is gated on its own (the tables above); anonymous requests reach only the
    # public fields.
    "GET /graphql": {role: "per field" for role in COLUMNS},
    # The explorer's own static files (GraphiQL, React): public, no data in them.
    "GET /graphql/assets/{name}": {role: ANYONE for role in COLUMNS},
    "POST /graphql": {role: "per field" for role in COLUMNS},
    # Single sign-on: the browser's two stops (the callback needs the sealed flow cookie the
    # login set, and the provider's code).
    "GET /auth/oidc/login": {role: ANYONE for role in COLUMNS},
    "GET /auth/oidc/callback": {
        role: "anyone finishing a sign-in they started" for role in COLUMNS
    },
    # Aggregates without tenant text; anyone who can reach it unless
    # SWITCHBOARD_METRICS_TOKEN is set, then only holders of that bearer token.
    "GET /metrics": {role: "anyone, or the metrics token when set" for role in COLUMNS},
    # A WebSocket without a valid token is closed (4403) right after connection_init.
    "WS /graphql": {role: "per field" for role in ROLES},
}


class AuthzTableError(Exception):
    """The code and the declarations above disagree (a new field or route needs a decision)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: ``path`` is ``Query.users``, ``Query.dashboard.live`` or ``GET /healthz``."""

    kind: str  # query | mutation | subscription | nested | http
    path: str
    cells: dict[str, str]  # column -> scope note; a refused column is absent

    def allows(self, column: str) -> bool:
        return column in self.cells

    @property
    def field_path(self) -> list[str]:
        """GraphQL field names from the root (``["dashboard", "live"]``)."""
        return self.path.split(".")[1:]


def gate_roles(field: GraphQLField) -> frozenset[str] | None:
    """Roles the field's own gates let through, or None when it has no gate (public)."""
    definition = (field.extensions or {}).get("strawberry-definition")
    classes: Sequence[Any] = getattr(definition, "permission_classes", None) or ()
    if not classes:
        return None
    roles = frozenset(ROLES)
    for cls in classes:
        gate = getattr(cls, "roles", None)
        if not isinstance(gate, frozenset):
            raise AuthzTableError(f"permission class {cls.__name__} declares no `roles`")
        roles &= gate
    return roles


def _cells(
    path: str, roles: frozenset[str] | None, scopes: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    columns = set(COLUMNS) if roles is None else set(roles)
    declared = scopes.get(path, {})
    stale = set(declared) - columns
    if stale:
        raise AuthzTableError(f"SCOPES[{path!r}] names roles the gate refuses: {sorted(stale)}")
    cells: dict[str, str] = {}
    for column in COLUMNS:
        if column not in columns:
            continue
        note = declared.get(column) or {"super_admin": ALL}.get(column)
        if note is None:
            raise AuthzTableError(f"declare the {column} scope of {path} in SCOPES")
        cells[column] = note
    return cells


def _object(t: Any) -> GraphQLObjectType | None:
    named: GraphQLNamedType = get_named_type(t)
    return named if isinstance(named, GraphQLObjectType) else None


def _nested_gates(
    root: GraphQLObjectType, name: str, field: GraphQLField, roles: frozenset[str] | None
) -> Iterable[tuple[str, frozenset[str]]]:
    """Gated fields below a root field, by shortest path, with the roles of the whole path."""
    start = _object(field.type)
    if start is None:
        return
    queue: deque[tuple[GraphQLObjectType, str, frozenset[str] | None]] = deque(
        [(start, f"{root.name}.{name}", roles)]
    )
    seen = {start.name}
    while queue:
        obj, path, path_roles = queue.popleft()
        for sub_name, sub in obj.fields.items():
            own = gate_roles(sub)
            effective = path_roles
            if own is not None:
                effective = own if path_roles is None else own & path_roles
            if own is not None:
                yield f"{path}.{sub_name}", effective or frozenset()
            nxt = _object(sub.type)
            if nxt is not None and nxt.name not in seen and not nxt.name.startswith("__"):
                seen.add(nxt.name)
                queue.append((nxt, f"{path}.{sub_name}", effective))


def graphql_rules(
    schema: GraphQLSchema | None = None, scopes: Mapping[str, Mapping[str, str]] = SCOPES
) -> list[Rule]:
    if schema is None:
        from backend.graphql.schema import schema as strawberry_schema

        schema = strawberry_schema._schema
    rules: list[Rule] = []
    nested: list[Rule] = []
    for root, kind in (
        (schema.query_type, "query"),
        (schema.mutation_type, "mutation"),
        (schema.subscription_type, "subscription"),
    ):
        if root is None:
            continue
        for name, field in root.fields.items():
            roles = gate_roles(field)
            path = f"{root.name}.{name}"
            rules.append(Rule(kind, path, _cells(path, roles, scopes)))
            for sub_path, sub_roles in _nested_gates(root, name, field, roles):
                nested.append(Rule("nested", sub_path, _cells(sub_path, sub_roles, scopes)))
    unknown = set(scopes) - {r.path for r in (*rules, *nested)}
    if unknown:
        raise AuthzTableError(f"SCOPES names fields that do not exist: {sorted(unknown)}")
    return rules + nested


def all_routes() -> list[BaseRoute]:
    """Every route of the gateway app, as ``create_app`` assembles it once the gateway exists."""
    from backend.app import _admin_factories, _mount_admin, create_app
    from backend.config import Settings

    app = create_app(Settings())
    # The factories only close over the gateway; building the routes needs no running one.
    _mount_admin(app, None, *_admin_factories())  # type: ignore[arg-type]
    return list(app.routes)


def route_keys(routes: Iterable[BaseRoute]) -> list[str]:
    """``METHOD /path`` for every route and method (HEAD, which Starlette adds to GET, left out)."""
    keys: list[str] = []
    for route in routes:
        if isinstance(route, WebSocketRoute):
            keys.append(f"WS {route.path}")
        elif isinstance(route, Route):
            methods = sorted((route.methods or set()) - {"HEAD"})
            keys += [f"{m} {route.path}" for m in methods]
        else:
            raise AuthzTableError(f"unexpected route type {type(route).__name__}")
    return keys


def http_rules(routes: Iterable[BaseRoute] | None = None) -> list[Rule]:
    keys = route_keys(all_routes() if routes is None else routes)
    missing = [k for k in keys if k not in ROUTES]
    if missing:
        raise AuthzTableError(f"declare who may call these routes in ROUTES: {missing}")
    unknown = sorted(set(ROUTES) - set(keys))
    if unknown:
        raise AuthzTableError(f"ROUTES names routes that do not exist: {unknown}")
    return [Rule("http", k, dict(ROUTES[k])) for k in keys]


_SECTIONS = (
    ("query", "GraphQL queries"),
    ("mutation", "GraphQL mutations"),
    ("subscription", "GraphQL subscriptions (graphql-transport-ws / graphql-ws)"),
    ("nested", "Gated nested fields"),
    ("http", "HTTP routes"),
)


def _table(rules: list[Rule], first: str) -> list[str]:
    out = [
        f"| {first} | " + " | ".join(COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for r in rules:
        name = r.path if r.kind == "http" else ".".join(r.field_path)
        cells = [r.cells.get(c, "—") for c in COLUMNS]
        out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return out


def render(rules: list[Rule] | None = None) -> str:
    rules = graphql_rules() + http_rules() if rules is None else rules
    lines = [
        "# Authorization",
        "",
        "Generated by `python -m backend.graphql.authz --write` from the code: the roles come",
        "from the permission classes on each GraphQL field (and the route declarations in",
        "`backend/graphql/authz.py`), the scope notes from `SCOPES` there. Do not edit by hand;",
        "`tests/security/test_authz_audit.py` fails when this file is stale and calls every",
        "field and route with every role to check it.",
        "",
        "A cell names what an allowed role reaches; `—` means refused: a GraphQL error with",
        "code `FORBIDDEN` (`UNAUTHENTICATED` without credentials), or HTTP 401/403.",
        "`none` is a caller without credentials. `own org` rows belong to the caller's",
        "organization; another organization's rows are refused or filtered out.",
        "HTTP: the proxy routes (`/v1/...`) take a gateway API key (a user's, or an app key),",
        "never a dashboard session or admin token; `/admin/...` and `/graphql` take a session",
        "or admin token (`Authorization: Bearer`, or the WebSocket `connection_init` payload).",
        "",
    ]
    for kind, title in _SECTIONS:
        section = [r for r in rules if r.kind == kind]
        if not section:
            continue
        lines += [f"## {title}", ""]
        lines += _table(section, "route" if kind == "http" else "field")
        lines.append("")
    return "\n".join(lines)


def ui_table(rules: list[Rule] | None = None) -> str:
    """``frontend_reflex/permissions.json``: for each root field, the roles it lets in and, where
    it matters, the roles that may act on global rows."""
    rules = graphql_rules() if rules is None else rules
    table: dict[str, dict[str, list[str]]] = {}
    for r in rules:
        if r.kind not in ("query", "mutation"):
            continue
        entry = {"roles": [role for role in ROLES if r.allows(role)]}
        if r.path in GLOBAL_ROWS:
            entry["globalRows"] = [role for role in ROLES if role in GLOBAL_ROWS[r.path]]
        table[r.path] = entry
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    text = render()
    ui = ui_table()
    if "--write" in args:
        DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOC_PATH.write_text(text)
        UI_PATH.write_text(ui)
        return 0
    if "--check" in args:
        for path, want in ((DOC_PATH, text), (UI_PATH, ui)):
            current = path.read_text() if path.exists() else ""
            if current != want:
                sys.stderr.write(f"{path} is stale: run python -m backend.graphql.authz --write\n")
                return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
