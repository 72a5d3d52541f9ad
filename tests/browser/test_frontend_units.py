"""The dashboard's pure parts, without a browser: every GraphQL document against the real schema,
formatting, form checks, GraphQL error wording, and the live-log merge.

These run everywhere (no Chromium needed); the test module imports ``backend`` only to read the
schema the dashboard must match, which the dashboard itself never does.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLSchema, OperationDefinitionNode, parse, validate
from graphql.execution.values import get_variable_values

from frontend_reflex import api, fmt, queries
from frontend_reflex.state.home import trend_points
from frontend_reflex.state.logs import log_row, merge_new
from frontend_reflex.state.users import usage_summary
from frontend_reflex.validate import FormError, model_list, money, slug


def _sample(param: inspect.Parameter) -> Any:
    annotation = str(param.annotation)
    if param.name == "with_live":
        return True
    if "Mapping" in annotation:
        return {}
    if "list" in annotation:
        return ["openai/gpt-4o-mini"]
    if annotation == "bool":
        return True
    if "datetime" in annotation:
        return dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    return "7"


def documents() -> Iterator[tuple[str, str]]:
    """Every document in ``queries`` (its modules' names, re-exported): the constants and what
    each builder returns."""
    for name, value in vars(queries).items():
        if isinstance(value, str) and value.lstrip().startswith(("query", "mutation", "subscr")):
            yield name, value
        elif inspect.isfunction(value) and value.__module__.startswith(f"{queries.__name__}."):
            sig = inspect.signature(value)
            if sig.return_annotation not in ("Op", "str") or name.startswith("_"):
                continue
            args = [
                _sample(p) for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD
            ]
            kwargs = {
                p.name: _sample(p) for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY
            }
            out = value(*args, **kwargs)
            doc = out[0] if isinstance(out, tuple) else out
            if doc.lstrip().startswith(("query", "mutation", "subscr")):
                yield name, doc
    # The bounded selects' documents live beside their state (state.choices).
    from frontend_reflex.state.choices import KINDS

    for kind, k in KINDS.items():
        yield f"choices.{kind}.search", k.search
        yield f"choices.{kind}.one", k.one


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    from backend.graphql.schema import schema as strawberry_schema

    return strawberry_schema._schema


def test_every_document_is_valid_against_the_gateway_schema(schema: GraphQLSchema) -> None:
    found = dict(documents())
    assert len(found) > 70, sorted(found)  # constants and builders (~40 each)
    problems = {
        name: [e.message for e in errors]
        for name, doc in found.items()
        if (errors := validate(schema, parse(doc)))
    }
    assert problems == {}


def _coerce(schema: GraphQLSchema, op: queries.Op) -> dict[str, Any]:
    """The operation's variables as the gateway's schema coerces them (fails on a refusal)."""
    doc, variables = op
    (operation,) = [d for d in parse(doc).definitions if isinstance(d, OperationDefinitionNode)]
    out = get_variable_values(schema, operation.variable_definitions or (), variables)
    assert not isinstance(out, list), [e.message for e in out]
    return out.coerced


def test_builders_send_enum_names_the_schema_accepts(schema: GraphQLSchema) -> None:
    """The dashboard keeps stored values ('org_admin', 'least-busy') and sends enum names."""
    op = queries.create_user(
        {"name": "A", "email": "a@x.io", "role": "org_admin", "status": "suspended"}
    )
    assert op[1]["input"]["role"] == "ORG_ADMIN"
    assert _coerce(schema, op)["input"]["status"].value == "suspended"
    op = queries.update_organization("3", {"capPeriod": "weekly"})
    assert _coerce(schema, op)["input"]["capPeriod"].value == "weekly"
    op = queries.set_strategy("least-busy")
    assert op[1] == {"s": "LEAST_BUSY"}
    assert _coerce(schema, op)["s"].value == "least-busy"
    assert _coerce(schema, queries.set_dlp("org", "4", True))["scope"].value == "org"
    op = queries.set_credential("openai", {"kind": "azure", "baseUrl": None})
    assert _coerce(schema, op)["input"]["kind"].value == "azure"
    op = queries.set_offered_features(["response_cache"])
    assert [f.value for f in _coerce(schema, op)["f"]] == ["response_cache"]
    assert _coerce(schema, queries.set_opt_in("response_cache", True))["feature"].value == (
        "response_cache"
    )


def test_every_enum_name_reads_back_as_its_stored_value(schema: GraphQLSchema) -> None:
    """What the dashboard reads (``stored``) is what it would send back (``enum_name``)."""
    from backend.graphql import enums

    names = {
        e.__strawberry_definition__.name
        for e in vars(enums).values()
        if hasattr(e, "__strawberry_definition__")
    }
    assert {"Role", "UserStatus", "RoutingStrategy", "Feature"} <= names
    for name in sorted(names):
        enum_type = schema.type_map[name]
        assert isinstance(enum_type, GraphQLEnumType)
        for graphql_name, value in enum_type.values.items():
            stored_value = value.value
            assert queries.stored(graphql_name) == stored_value, (name, graphql_name)
            assert queries.enum_name(stored_value) == graphql_name


def test_builders_send_int_ids_and_null_for_no_organization() -> None:
    _, variables = queries.create_user({"name": "A", "organizationId": "", "weeklyCapUsd": None})
    assert variables["input"]["organizationId"] is None
    _, variables = queries.update_user("12", {"organizationId": "3"})
    assert variables == {"id": 12, "input": {"organizationId": 3}}
    _, variables = queries.create_api_key(name="k", app_id="5")
    assert variables == {"input": {"name": "k", "appId": 5}}


def test_week_starts_on_monday_utc() -> None:
    sunday = dt.datetime(2026, 3, 8, 23, 30, tzinfo=dt.UTC)
    assert queries.week_start(sunday) == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def test_money_never_shows_zero_for_an_unknown_price() -> None:
    assert fmt.money(None) == "unknown"
    assert fmt.money("0") == "$0.00"
    # One precision for spend: 4 decimals, so a column lines up ($0.02 beside $0.001896 did
    # not); below that a cost is "<$0.0001", never rounded to $0.
    assert fmt.money("0.000021") == "<$0.0001"
    assert [fmt.money(v) for v in ("0.02", "0.001896")] == ["$0.0200", "$0.0019"]
    assert fmt.money("1234.5") == "$1,234.5000"
    # Budgets are in cents, whatever the stored precision (no "25.00000000" anywhere).
    assert fmt.cap("25.00000000") == "$25.00"
    assert fmt.amount("25.00000000") == "25" and fmt.amount("0.50000000") == "0.5"
    assert fmt.amount(None) == ""
    # Rates per million tokens: as set, at least cents.
    assert [fmt.rate(v) for v in ("0.075", "2.5", None)] == ["$0.075", "$2.50", "unknown"]


def test_spend_shows_unknown_prices_as_unknown() -> None:
    """Requests without a price are "unknown" next to the known spend, never added as $0."""
    assert fmt.spend("1.2", 0) == "$1.2000"
    assert fmt.spend("1.2", 3) == "$1.2000 + unknown (3 requests)"
    assert fmt.spend("0", 1) == "unknown (1 request)"
    assert fmt.spend(None, None) == "$0.00"
    summary = usage_summary(
        {
            "month": {"nodes": [{"costUsd": "0.5", "unknownCostRequests": 2}]},
            "week": {"nodes": [{"costUsd": "0", "unknownCostRequests": 2}]},
        },
        "no cap",
    )
    assert (summary["cost"], summary["week"]) == (
        "$0.5000 + unknown (2 requests)",
        "unknown (2 requests)",
    )
    assert fmt.cap(None) == "no cap"


def test_nodes_and_cursor_of_a_connection() -> None:
    conn = {"nodes": [{"id": 1}], "pageInfo": {"hasNextPage": True, "endCursor": "abc"}}
    assert fmt.nodes(conn) == [{"id": 1}]
    assert fmt.next_cursor(conn) == "abc"
    assert (
        fmt.next_cursor({"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": "x"}}) == ""
    )
    assert fmt.nodes(None) == []


def test_form_checks_explain_themselves() -> None:
    assert money({"cap": "$1,250.50"}, "cap", "Cap") == "1250.50"
    assert money({"cap": ""}, "cap", "Cap") is None
    with pytest.raises(FormError, match="Cap must be an amount in dollars"):
        money({"cap": "lots"}, "cap", "Cap")
    with pytest.raises(FormError, match="cannot be negative"):
        money({"cap": "-1"}, "cap", "Cap")
    assert slug({"slug": ""}, fallback="Acme Corp!") == "acme-corp"
    with pytest.raises(FormError):
        slug({"slug": "Not A Slug"})
    assert model_list("a, b\nc,") == ["a", "b", "c"]


def test_graphql_errors_become_plain_sentences() -> None:
    err = api.error_from_graphql(
        [
            {
                "message": "an organization with this slug already exists",
                "extensions": {"code": "BAD_USER_INPUT", "field": "slug"},
            }
        ]
    )
    assert err.message == "An organization with this slug already exists."
    assert not err.auth
    auth = api.error_from_graphql(
        [{"message": "authentication required", "extensions": {"code": "UNAUTHENTICATED"}}]
    )
    assert auth.auth
    trace = api.error_from_graphql([{"message": "Traceback (most recent call last):\n  x"}])
    assert "Traceback" not in trace.message
    forbidden = api.error_from_graphql(
        [{"message": "only a super_admin may do this", "extensions": {"code": "FORBIDDEN"}}]
    )
    assert forbidden.forbidden and not forbidden.auth


def test_gateway_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_GATEWAY_URL", "https://gw.example.com:8443/")
    assert api.graphql_http_url() == "https://gw.example.com:8443/graphql"
    assert api.graphql_ws_url() == "wss://gw.example.com:8443/graphql"
    monkeypatch.delenv("SWITCHBOARD_GATEWAY_URL")
    assert api.graphql_ws_url() == "ws://127.0.0.1:8000/graphql"


def test_live_rows_merge_on_top_without_duplicates() -> None:
    event = {
        "requestId": "r1",
        "createdAt": "2026-03-02T10:00:00Z",
        "keyPrefix": "sb-1",
        "user": {"id": 1, "name": "Mia"},
        "endpoint": "/v1/chat/completions",
        "requestedModel": "gpt",
        "actualModel": "openai/gpt-4o-mini",
        "status": 200,
        "inputTokens": 10,
        "outputTokens": 5,
        "costUsd": None,
    }
    row = log_row(event)
    assert row["user"] == "Mia" and row["tokens"] == "10 / 5" and row["cost"] == "unknown"
    older = log_row({**event, "requestId": "r0"})
    merged = merge_new([older], [row])
    assert [r["id"] for r in merged] == [row["id"], older["id"]]
    assert merge_new(merged, [row]) == merged  # the same row from a poll and the stream
    # Two attempts of one request inside a deployment pool: same model and status, two rows.
    tried = log_row({**event, "status": 429, "deployment": "acct-a"})
    again = log_row({**event, "status": 429, "deployment": "acct-b"})
    assert tried["id"] != again["id"] and tried["deployment"] == "acct-a"
    assert row["deployment"] == ""


def test_cost_trend_is_stacked_by_provider() -> None:
    days = [
        {"day": "2026-03-02", "byProvider": [{"provider": "openai", "costUsd": "1.5"}]},
        {
            "day": "2026-03-01",
            "byProvider": [
                {"provider": "anthropic", "costUsd": "2"},
                {"provider": "openai", "costUsd": "0.5"},
            ],
        },
    ]
    points, series = trend_points(days)
    assert series == ["openai", "anthropic"]
    assert points == [
        {"day": "2026-03-01", "anthropic": 2.0, "openai": 0.5},
        {"day": "2026-03-02", "openai": 1.5},
    ]


def test_usage_summary_of_a_user_without_traffic() -> None:
    summary = usage_summary({"month": {"nodes": []}, "week": {"nodes": []}}, "$25.00")
    assert summary["requests"] == "0" and summary["cost"] == "$0.00" and summary["cap"] == "$25.00"
