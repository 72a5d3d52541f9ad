"""Schemathesis against ``/graphql`` of a real gateway: every query and mutation, fuzzed.

The schema is loaded by introspection (``schemathesis.graphql.from_url``); for each operation
schemathesis draws documents with valid arguments (positive mode) and with arguments that break
the schema (negative mode), sent as a super_admin so the resolvers and admin services really run,
and then without credentials. Every answer must be clean: no 5xx, a GraphQL JSON object, no
masked internal error ("Unexpected error."), no broken non-null contract, every resolver refusal
with an ``extensions.code``; without credentials nothing but ``login`` returns data. The server
log must hold no traceback.

Budget: ``FUZZ_GQL_EXAMPLES`` documents per operation and mode (default 5), derandomized
(``FUZZ_RANDOM=1`` explores new ones).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from graphql import StringValueNode, Visitor, visit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.graphql import nodes

from backend.admin.bootstrap import bootstrap_super_admin
from backend.graphql import authz
from tests.e2e.conftest import Stack
from tests.e2e.harness import orm
from tests.fuzz.checks import log_alarms

EXAMPLES = int(os.environ.get("FUZZ_GQL_EXAMPLES", "5"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
ADMIN_EMAIL = "fuzz-root@switchboard.test"
ADMIN_PASSWORD = "fuzz-Password-0123456789"
#: Operations that would end the fuzzing session itself rather than test anything.
SKIPPED = {"Mutation.logout", "Mutation.changePassword"}
#: Operations that answer without credentials: those the access matrix opens to callers with no
#: session (logging in, the SSO sign-in link, the static catalog of built-in DLP rules).
PUBLIC = {label for label, scopes in authz.SCOPES.items() if authz.NONE in scopes}
#: Codes of the gateway's own refusals (``backend.admin.errors``).
CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "FAILED_PRECONDITION",
    "ADMIN_ERROR",
    # Failed logins lock an account or address out; random logins can get there.
    "RATE_LIMITED",
}

_DECIMALS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=8).map(str),
    st.sampled_from(["0", "-1", "1e400", "NaN", "Infinity", "abc", "", "1" * 60, "0.000000001"]),
)
schemathesis.graphql.scalar("Decimal", _DECIMALS.map(nodes.String))
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(st.integers().map(nodes.Int), st.text(max_size=20).map(nodes.String)),
)


class _AddNul(Visitor):
    def enter_string_value(self, node: StringValueNode, *_: object) -> StringValueNode:
        return StringValueNode(value=node.value + "\x00", block=False)


def with_nuls(document: Any) -> Any:
    """The document with a NUL at the end of every string literal (PostgreSQL rejects them)."""
    return visit(document, _AddNul())


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    resolved: int = 0  # authenticated cases whose resolver ran (data, or a refusal with a path)
    skipped_negative: list[str] = field(default_factory=list)
    anonymous_data: set[str] = field(default_factory=set)


async def admin_token(stack: Stack) -> str:
    """(Re)create the super_admin and log in over HTTP, as the dashboard does."""
    async with orm(stack.database_url):
        await bootstrap_super_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    resp = httpx.post(
        f"{stack.gateway.url}/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ token } }",
            "variables": {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD},
        },
        timeout=30,
    )
    return str(resp.json()["data"]["login"]["token"])


def still_super_admin(stack: Stack, token: str) -> bool:
    """A fuzzed mutation may have revoked the token, demoted or deleted the admin."""
    resp = httpx.post(
        f"{stack.gateway.url}/graphql",
        json={"query": "{ me { role status } }"},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    me = (resp.json().get("data") or {}).get("me")
    return bool(me) and me["role"] == "super_admin" and me["status"] == "active"


def problem_with(label: str, status: int, body: Any, authenticated: bool) -> str | None:
    if status >= 500:
        return f"HTTP {status}"
    if not isinstance(body, dict) or not ({"data", "errors"} & set(body)):
        return f"not a GraphQL response: {body!r:.300}"
    field_name = label.split(".", 1)[1]
    data = body.get("data")
    value = data.get(field_name) if isinstance(data, dict) else None
    for err in body.get("errors") or []:
        message = err.get("message") if isinstance(err, dict) else None
        if not isinstance(message, str) or not message:
            return f"error without a message: {err!r:.300}"
        if message == "Unexpected error.":
            return "masked internal error"
        if "Cannot return null for non-nullable field" in message:
            return f"schema contract broken: {message}"
        code = (err.get("extensions") or {}).get("code")
        # A resolver's refusal has a path; it must say which refusal it is.
        if "path" in err and code not in CODES:
            return f"uncoded resolver error: {err!r:.300}"
    if not authenticated and value is not None and label not in PUBLIC:
        return f"answered without credentials: {value!r:.300}"
    return None


def operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        op = result.ok()
        if op.label not in SKIPPED:
            yield op


def run_operation(
    op: Any, mode: GenerationMode, headers: dict[str, str], tally: Tally, tag: str
) -> None:
    authenticated = "authorization" in headers

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[p for p in settings.default.phases if p.name != "explain"],
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        started = time.monotonic()
        resp = case.call(headers=headers, timeout=30)
        assert time.monotonic() - started < 30
        try:
            body = resp.json()
        except ValueError:
            body = None
        problem = problem_with(op.label, resp.status_code, body, authenticated)
        assert problem is None, f"{op.label} ({tag}): {problem}\n{case.body!r:.1500}"
        tally.cases[tag] += 1
        for err in (body or {}).get("errors") or []:
            tally.codes[str((err.get("extensions") or {}).get("code"))] += 1
        errors = body.get("errors") or []
        if authenticated and (body.get("data") or any("path" in e for e in errors)):
            tally.resolved += 1
        if not authenticated and (body.get("data") or {}).get(op.label.split(".", 1)[1]):
            tally.anonymous_data.add(op.label)

    one()


async def test_graphql_fuzz(stack: Stack) -> None:
    url = f"{stack.gateway.url}/graphql"
    schema = schemathesis.graphql.from_url(url, timeout=30)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        # Hypothesis rarely draws a NUL on its own in a handful of examples; force one often.
        return st.sampled_from([False, False, True]).map(
            lambda nul: with_nuls(body) if nul else body
        )

    ops = list(operations(schema))
    assert len(ops) > 50  # every domain's queries and mutations were found
    tally = Tally()
    log_start = len(stack.gateway.log_text())
    token = await admin_token(stack)
    started = time.monotonic()
    try:
        for op in ops:
            if not still_super_admin(stack, token):
                token = await admin_token(stack)
            auth = {"authorization": f"Bearer {token}"}
            run_operation(op, GenerationMode.POSITIVE, auth, tally, "admin positive")
            try:
                run_operation(op, GenerationMode.NEGATIVE, auth, tally, "admin negative")
            except (InvalidArgument, Unsatisfiable):
                tally.skipped_negative.append(op.label)
            except Exception as exc:  # schemathesis' SkipTest: nothing in the schema to break
                if "Impossible to generate negative" not in str(exc):
                    raise
                tally.skipped_negative.append(op.label)
            run_operation(op, GenerationMode.POSITIVE, {}, tally, "anonymous")
    finally:
        print(
            f"\nfuzz graphql: {sum(tally.cases.values())} cases over {len(ops)} operations "
            f"in {time.monotonic() - started:.0f} s "
            f"({dict(tally.cases)}), resolvers ran in {tally.resolved}, "
            f"error codes {dict(tally.codes.most_common())}, "
            f"no negative form for {len(tally.skipped_negative)} operations"
        )
    assert tally.anonymous_data <= PUBLIC
    assert tally.resolved > len(ops)  # the admin's documents reached the resolvers
    alarms = log_alarms(stack.gateway.log_text()[log_start:])
    assert not alarms, alarms[0]
