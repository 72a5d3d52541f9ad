"""The limits dialog's pure parts (``frontend_reflex.state.limits``), without a browser: the form's
starting values, the administrator's locks in words, and that only what changed is sent (so an
owner saving their key never re-sends a limit an administrator locked), checked against the
gateway's schema."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLSchema, OperationDefinitionNode, parse, validate
from graphql.execution.values import get_variable_values

from frontend_reflex import queries
from frontend_reflex.state.limits import limit_values, limits_changes, lock_rows
from frontend_reflex.validate import FormError

LIMITS = {
    "requestsPerMinute": 100,
    "tokensPerMinute": None,
    "allowedModels": ["gpt-4o*", "claude-*"],
    "spendCapUsd": "25.00000000",
    "capPeriod": "WEEKLY",
    "locks": [
        {
            "limit": "REQUESTS_PER_MINUTE",
            "ceiling": "100",
            "setById": 3,
            "setByName": "Ann Admin",
            "setByRole": "ORG_ADMIN",
            "setAt": "2026-03-10T12:30:15+00:00",
        },
        {
            "limit": "SPEND_CAP",
            "ceiling": "$25.00 weekly",
            "setById": 1,
            "setByRole": "SUPER_ADMIN",
        },
    ],
}


def form(**over: str) -> dict[str, str]:
    base = {"rpm": "100", "tpm": "", "models": "gpt-4o*, claude-*", "cap": "25", "period": "weekly"}
    return {**base, **over}


def test_starting_values_read_like_what_a_person_types() -> None:
    values = limit_values(LIMITS)
    assert values == {
        "rpm": "100",
        "tpm": "",
        "models": "gpt-4o*, claude-*",
        "no_models": "",
        "cap": "25",
        "period": "weekly",
    }
    assert limit_values({"allowedModels": [], "capPeriod": "DAILY"})["no_models"] == "yes"
    assert limit_values({"spendCapUsd": "2.50000000"})["cap"] == "2.5"
    assert limit_values({})["period"] == "monthly"


def test_locks_say_which_limit_its_ceiling_and_who_set_it() -> None:
    rows = lock_rows(LIMITS)
    assert rows[0] == {
        "limit": "Requests per minute",
        "ceiling": "100",
        "who": "Ann Admin (org admin)",
        "when": "2026-03-10 12:30:15",
    }
    # A lock recorded before names were: the role and the user id.
    assert rows[1]["who"] == "a super admin (user #1)"
    assert rows[1]["limit"] == "Spend cap"
    # A damaged record: the gateway answers no role (and "unreadable" for a lost ceiling).
    damaged = {"limit": "ALLOWED_MODELS", "ceiling": "unreadable", "setByRole": None}
    assert lock_rows({"locks": [damaged]})[0]["who"] == "an administrator"
    named = {**damaged, "setByName": "Ann Admin", "setById": 3}
    assert lock_rows({"locks": [named]})[0]["who"] == "Ann Admin"


def test_only_what_changed_is_sent() -> None:
    current = limit_values(LIMITS)
    assert limits_changes(form(), current, "KEY") == {}
    assert limits_changes(form(tpm="20,000"), current, "KEY") == {"tokensPerMinute": 20000}
    assert limits_changes(form(rpm=""), current, "KEY") == {"requestsPerMinute": None}
    assert limits_changes(form(models="GPT-4o*  claude-*"), current, "KEY") == {}
    assert limits_changes(form(models="gpt-4o-mini"), current, "APP") == {
        "allowedModels": ["gpt-4o-mini"]
    }
    assert limits_changes(form(models=""), current, "APP") == {"allowedModels": None}
    assert limits_changes(form(cap="$25.00"), current, "KEY") == {}
    assert limits_changes(form(cap=""), current, "KEY") == {"spendCapUsd": None}
    assert limits_changes(form(cap="30", period="monthly"), current, "ORGANIZATION") == {
        "spendCapUsd": "30",
        "capPeriod": "monthly",
    }
    # A user's cap is weekly: no period is sent, whatever the form holds.
    assert limits_changes(form(period="daily"), current, "USER") == {}
    # An empty allowlist stays empty when the box is left empty (it cannot be typed).
    empty = limit_values({"allowedModels": []})
    assert limits_changes({"models": ""}, empty, "KEY") == {}


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"rpm": "lots"}, "Requests per minute must be a whole number from 1 to 1,000,000"),
        ({"rpm": "0"}, "Requests per minute must be a whole number"),
        ({"tpm": "1.5"}, "Tokens per minute must be a whole number from 1 to 1,000,000,000"),
        ({"cap": "ten"}, "Spend cap must be an amount in dollars"),
        ({"cap": "-1"}, "Spend cap cannot be negative"),
        ({"period": "yearly"}, "Cap period must be daily, weekly or monthly"),
        ({"models": " ".join(f"m{i}" for i in range(101))}, "at most 100"),
    ],
)
def test_bad_input_is_explained(over: dict[str, str], words: str) -> None:
    with pytest.raises(FormError, match=words):
        limits_changes(form(**over), limit_values(LIMITS), "APP")


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    from backend.graphql.schema import schema as strawberry_schema

    return strawberry_schema._schema


def test_the_mutation_the_dialog_sends_is_what_the_schema_takes(schema: GraphQLSchema) -> None:
    changes: dict[str, Any] = limits_changes(
        form(rpm="", tpm="5000", models="openai/*", cap="9.5", period="daily"),
        limit_values(LIMITS),
        "KEY",
    )
    doc, variables = queries.set_limits("KEY", "42", changes)
    ast = parse(doc)
    assert validate(schema, ast) == []
    (op,) = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
    out = get_variable_values(schema, op.variable_definitions or (), variables)
    assert not isinstance(out, list), [e.message for e in out]
    sent = out.coerced["input"]
    assert out.coerced["target"].value == "key"
    assert sent["requestsPerMinute"] is None
    assert (sent["tokensPerMinute"], sent["allowedModels"]) == (5000, ["openai/*"])
    assert (str(sent["spendCapUsd"]), sent["capPeriod"].value) == ("9.5", "daily")
