"""GraphQL documents for the authorization audit, built from the schema (no hand-written list).

For a rule of ``backend.graphql.authz`` (``Query.users``, ``Mutation.updateApp``,
``Query.dashboard.live``) a ``Probe`` selects every field of the answer a few levels deep (so
nested resolvers are exercised and any leak is visible), and fills arguments:

- required arguments always, with dummy values of their type (a validation error for a dummy
  value still proves the caller got past the permission check);
- target ids (``id``, ``userId``, ``organizationId``, ``appId``, ``targetId``) with a row of the
  chosen *side*: ``own`` (what the role may reach: a disposable row when the call mutates) or
  ``other`` (another organization's row, or for a member another user's). On the ``other`` side
  optional target arguments and filters are filled too, to try to read across organizations.

An ``id`` argument whose entity cannot be inferred from the field name fails the audit: a new
field must be taught here, never skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from graphql.pyutils import Undefined

from backend.data.models.keys import ApiKey
from backend.data.models.routing import AgentConfig, ModelAlias
from backend.data.models.sso import SsoRule
from backend.data.models.tenancy import App, Organization, User
from backend.graphql.authz import Rule, gate_roles
from backend.security.api_keys import generate_key
from backend.security.sessions import issue_token
from tests.security.authz_world import MEMBER_PASSWORD, World

#: Codes an allowed caller may get for dummy arguments (the call got past authorization).
INPUT_CODES = frozenset({"BAD_USER_INPUT", "NOT_FOUND", "FAILED_PRECONDITION"})
REFUSAL_CODES = frozenset({"FORBIDDEN", "UNAUTHENTICATED"})
SELECTION_DEPTH = 3
ENTITIES = (
    "user",
    "organization",
    "app",
    "apiKey",
    "adminToken",
    "modelAlias",
    "agentConfig",
    "gatewayLog",
    "ssoRule",
)
VERBS = ("create", "update", "delete", "revoke", "rotate", "set", "import", "report")
#: Fields whose ``id`` names a row through another argument: ``limits`` / ``setLimits`` take
#: ``target: LimitTarget``, which the probe fills with the enum's first value, ``KEY``.
ID_ENTITIES = {"limits": "apiKey"}
#: Argument (or input field) names that name a row, and the entity they name.
TARGET_NAMES = {
    "userId": "user",
    "actorId": "user",
    "organizationId": "organization",
    "appId": "app",
    "targetId": "organization",
}
DUMMY_SCALARS: dict[str, Any] = {
    "String": "authz-probe",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "Decimal": "1",
    "DateTime": "2031-01-01T00:00:00+00:00",
    "Date": "2031-01-01",
    "JSON": {},
}


def entity_of(field_name: str) -> str:
    """``updateApiKey`` -> ``apiKey``; ``gatewayLog`` -> ``gatewayLog``."""
    for verb in VERBS:
        rest = field_name[len(verb) :]
        if field_name.startswith(verb) and rest[:1].isupper():
            return rest[0].lower() + rest[1:]
    return field_name


def _required(arg: GraphQLArgument | GraphQLInputField) -> bool:
    return isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined


def selection(t: Any, depth: int = SELECTION_DEPTH) -> str:
    """Every field without required arguments, objects ``depth`` levels deep; gated nested
    fields are left out (each is a rule of its own)."""
    obj = get_named_type(t)
    if not isinstance(obj, GraphQLObjectType):
        return ""
    parts = ["__typename"]
    for name, f in obj.fields.items():
        if any(_required(a) for a in f.args.values()) or gate_roles(f) is not None:
            continue
        sub = get_named_type(f.type)
        if isinstance(sub, GraphQLObjectType):
            if depth > 0:
                parts.append(f"{name} {{ {selection(sub, depth - 1)} }}")
        else:
            parts.append(name)
    return " ".join(parts)


@dataclass
class Probe:
    rule: Rule
    document: str
    variables: dict[str, Any]
    #: Target arguments filled with a row of the chosen side.
    targeted: list[str] = field(default_factory=list)


@dataclass
class ProbeBuilder:
    schema: GraphQLSchema
    world: World
    person: str  # whose side "own" is: super | admin_a | member_a (any for anonymous)
    side: str = "own"  # own | other
    mutating: bool = False
    _targeted: list[str] = field(default_factory=list)

    async def build(self, rule: Rule) -> Probe:
        root_name, *names = rule.path.split(".")
        obj = self.schema.get_type(root_name)
        assert isinstance(obj, GraphQLObjectType), rule.path
        self.mutating = root_name == "Mutation"
        self._targeted = []
        var_defs: list[str] = []
        variables: dict[str, Any] = {}
        fields: list[tuple[str, GraphQLField]] = []
        for name in names:
            f = obj.fields[name]
            fields.append((name, f))
            nxt = get_named_type(f.type)
            if isinstance(nxt, GraphQLObjectType):
                obj = nxt
        text = selection(fields[-1][1].type)
        for name, f in reversed(fields):
            args = await self._args(name, f, var_defs, variables)
            inner = f" {{ {text} }}" if text else ""
            text = f"{name}{args}{inner}"
        op = {"Query": "query", "Mutation": "mutation", "Subscription": "subscription"}[root_name]
        head = f"({', '.join(var_defs)})" if var_defs else ""
        return Probe(rule, f"{op} Probe{head} {{ {text} }}", variables, list(self._targeted))

    async def _args(
        self, field_name: str, f: GraphQLField, var_defs: list[str], variables: dict[str, Any]
    ) -> str:
        out = []
        for arg_name, arg in f.args.items():
            value = await self._arg_value(field_name, arg_name, arg)
            if value is _SKIP:
                continue
            var = f"v{len(var_defs)}"
            var_defs.append(f"${var}: {arg.type}")
            variables[var] = value
            out.append(f"{arg_name}: ${var}")
        return f"({', '.join(out)})" if out else ""

    async def _arg_value(self, field_name: str, arg_name: str, arg: GraphQLArgument) -> Any:
        if field_name == "login":
            return {"email": self.world.user("member_a").email, "password": MEMBER_PASSWORD}[
                arg_name
            ]
        if arg_name == "id":
            entity = entity_of(field_name)
            entity = ID_ENTITIES.get(entity, entity)
            assert entity in ENTITIES, (
                f"teach tests/security/authz_probe.py the target of {field_name}(id:)"
            )
            return await self._target(entity, arg_name)
        if arg_name in TARGET_NAMES and (self.side == "other" or _required(arg)):
            return await self._target(TARGET_NAMES[arg_name], arg_name)
        if arg_name == "scope" and (self.side == "other" or _required(arg)):
            return "ORG"  # DlpScope / AliasScope
        named = get_named_type(arg.type)
        if isinstance(named, GraphQLInputObjectType) and (_required(arg) or self.side == "other"):
            return await self._value(arg.type, arg_name)
        if _required(arg):
            return await self._value(arg.type, arg_name)
        return _SKIP

    async def _value(self, t: Any, name: str) -> Any:
        if isinstance(t, GraphQLNonNull):
            return await self._value(t.of_type, name)
        if isinstance(t, GraphQLList):
            return []
        if isinstance(t, GraphQLEnumType):
            return next(iter(t.values))
        if isinstance(t, GraphQLInputObjectType):
            out: dict[str, Any] = {}
            target_done = False
            for fname, f in t.fields.items():
                if fname in TARGET_NAMES and not target_done:
                    # One target per input: a key belongs to a user *or* an app.
                    out[fname] = await self._target(TARGET_NAMES[fname], fname)
                    target_done = True
                elif _required(f):
                    out[fname] = await self._value(f.type, fname)
            if target_done and "scope" in t.fields:
                out["scope"] = "ORG"
            return out
        return DUMMY_SCALARS.get(getattr(t, "name", ""), "authz-probe")

    async def _target(self, entity: str, arg_name: str) -> int:
        self._targeted.append(arg_name)
        if self.side == "other":
            return await self._other(entity)
        return await (self._fresh if self.mutating else self._static)(entity)

    # -- the rows of each side ---------------------------------------------------------------

    async def _static(self, entity: str) -> int:
        """Rows the role may read (queries: nothing is changed)."""
        w = self.world
        rows: dict[str, Callable[[], int]] = {
            "user": lambda: w.user("member_a").id,
            "organization": lambda: w.org_a.id,
            "app": lambda: w.app_a.id,
            "apiKey": lambda: w.key_rows["member_a"].id,
            "adminToken": lambda: w.admin_token_rows[self.person].id,
            "modelAlias": lambda: w.alias_a.id if w.alias_a else 0,
            "agentConfig": lambda: w.agent.id if w.agent else 0,
            "gatewayLog": lambda: w.logs["member_a"].id,
            # super_admin only: no row is needed to show the others are refused.
            "ssoRule": lambda: 0,
        }
        return rows[entity]()

    async def _fresh(self, entity: str) -> int:
        """A disposable row the role may change (a mutation that succeeds harms nothing else)."""
        w, tag = self.world, self.world.unique()
        person = w.user(self.person)
        makers: dict[str, Callable[[], Awaitable[Any]]] = {
            "user": lambda: User.create(
                name=tag, email=f"{tag}@acme.test", organization=w.org_a, role="member"
            ),
            "organization": lambda: Organization.create(name=tag, slug=tag),
            "app": lambda: App.create(name=tag, slug=tag, organization=w.org_a),
            "apiKey": lambda: _api_key(w.user("member_a")),
            "adminToken": lambda: _admin_token(w, person),
            "modelAlias": lambda: ModelAlias.create(
                requested_model=tag, target_model="openai/gpt-4o", organization=w.org_a
            ),
            "agentConfig": lambda: AgentConfig.create(
                agent_id=tag, name=tag, normal_model="openai/gpt-4o-mini"
            ),
            "gatewayLog": lambda: _static_row(w.logs["member_a"]),
            "ssoRule": lambda: SsoRule.create(claim="groups", value=tag, role="member"),
        }
        if entity == "user" and self.person == "member_a":
            return person.id
        if entity == "organization" and self.person != "super":
            return w.org_a.id
        row = await makers[entity]()
        return int(row.id)

    async def _other(self, entity: str) -> int:
        """Rows the role must not reach: another organization's, for a member another user's."""
        w = self.world
        member = self.person == "member_a"
        rows: dict[str, int] = {
            "user": w.user("admin_a" if member else "member_b").id,
            "organization": w.org_b.id,
            "app": w.app_b.id,
            "apiKey": w.key_rows["admin_a" if member else "member_b"].id,
            "adminToken": w.admin_token_rows["admin_a" if member else "admin_b"].id,
            "modelAlias": w.alias_b.id if w.alias_b else 0,
            "agentConfig": w.agent.id if w.agent else 0,
            "gatewayLog": w.logs["admin_a" if member else "member_b"].id,
            "ssoRule": 0,
        }
        return rows[entity]


class _Skip:
    pass


_SKIP = _Skip()


async def _api_key(user: User) -> ApiKey:
    _, prefix, digest = generate_key()
    return await ApiKey.create(prefix=prefix, key_hash=digest, name="probe", user=user)


async def _admin_token(world: World, user: User) -> Any:
    _, row = await issue_token(user, "admin", now=world.gw.clock(), name="probe")
    return row


async def _static_row(row: Any) -> Any:
    return row


def error_codes(body: dict[str, Any]) -> list[str | None]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


def refusal_problem(body: dict[str, Any], column: str, rule: Rule) -> str | None:
    """Why ``body`` is not a clean refusal (None when it is)."""
    expected = "UNAUTHENTICATED" if column == "none" else "FORBIDDEN"
    codes = error_codes(body)
    if expected not in codes:
        return f"expected a {expected} error, got {body.get('errors')}"
    value: Any = body.get("data")
    for name in rule.field_path:
        if not isinstance(value, dict):
            break
        value = value.get(name)
    if value is not None:
        return f"refused but data came back: {body.get('data')}"
    return None


def allowed_problem(body: dict[str, Any]) -> str | None:
    """Why ``body`` is not an allowed call (None when it is): only input errors may appear."""
    for err in body.get("errors") or []:
        code = (err.get("extensions") or {}).get("code")
        if code not in INPUT_CODES:
            return f"unexpected error for an allowed caller: {err}"
    return None
