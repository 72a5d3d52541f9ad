"""Resolution: agent tiers, aliases (org beats global), fallback chains."""

from __future__ import annotations

import pytest

from backend.ir.errors import InvalidRequest, NotFound
from backend.routing.resolve import resolve
from backend.state.snapshot import AgentInfo, RoutingConfig
from tests.routing.helpers import app_principal, user_principal

ROUTING = RoutingConfig(
    global_aliases={"fast": "openai/gpt-4o-mini", "smart": "anthropic/claude-sonnet-4-5"},
    org_aliases={
        1: {"fast": "gemini/gemini-2.5-flash"},
        2: {"smart": "openai/gpt-4o"},
    },
    agents={
        "coder": AgentInfo(
            "coder",
            "Coder",
            "writes code",
            "openai/gpt-4o-mini",
            "anthropic/claude-sonnet-4-5",
            "anthropic/claude-opus-4-5",
        ),
        "helper": AgentInfo("helper", "Helper", "", "fast", None, None),
    },
    chains={
        "openai/gpt-4o-mini": ("anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"),
        "gemini/gemini-2.5-flash": ("openai/gpt-4o-mini",),
    },
)


def test_org_alias_beats_global_for_that_org_only() -> None:
    org1 = resolve("fast", user_principal(org_id=1), ROUTING)
    assert org1.primary == "gemini/gemini-2.5-flash"
    assert org1.requested == "fast" and org1.alias_path == ("fast",)
    org2 = resolve("fast", user_principal(org_id=2), ROUTING)
    assert org2.primary == "openai/gpt-4o-mini"
    no_org = resolve("fast", user_principal(org_id=None), ROUTING)
    assert no_org.primary == "openai/gpt-4o-mini"
    assert resolve("fast", None, ROUTING).primary == "openai/gpt-4o-mini"


def test_app_keys_use_the_apps_organisation() -> None:
    assert resolve("smart", app_principal(org_id=2), ROUTING).primary == "openai/gpt-4o"
    assert resolve("smart", app_principal(org_id=1), ROUTING).primary == (
        "anthropic/claude-sonnet-4-5"
    )


def test_candidates_are_primary_then_chain() -> None:
    res = resolve("gpt-4o-mini", None, ROUTING)  # bare name: chain found by canonical key
    assert res.candidates == [
        "openai/gpt-4o-mini",
        "anthropic/claude-haiku-4-5",
        "gemini/gemini-2.5-flash",
    ]
    # The org's alias changes the primary, so the chain is the new primary's.
    res = resolve("fast", user_principal(1), ROUTING)
    assert res.candidates == ["gemini/gemini-2.5-flash", "openai/gpt-4o-mini"]
    assert resolve("openai/gpt-4o", None, ROUTING).candidates == ["openai/gpt-4o"]


def test_chain_dedupes_and_drops_unservable_entries() -> None:
    routing = RoutingConfig(
        global_aliases={"backup": "openai/gpt-4o"},
        chains={"openai/gpt-4o-mini": ("gpt-4o-mini", "nonsense-model", "backup", "openai/gpt-4o")},
    )
    res = resolve("openai/gpt-4o-mini", None, routing)
    assert res.candidates == ["openai/gpt-4o-mini", "openai/gpt-4o"]


@pytest.mark.parametrize(
    ("requested", "tier", "agent_tier", "primary"),
    [
        ("agent/coder", None, ("normal", "normal"), "openai/gpt-4o-mini"),
        ("agent/coder:heavy", None, ("heavy", "heavy"), "anthropic/claude-sonnet-4-5"),
        ("agent/coder:max", None, ("max", "max"), "anthropic/claude-opus-4-5"),
        ("agent/coder", "heavy", ("heavy", "heavy"), "anthropic/claude-sonnet-4-5"),
        ("agent/coder", "MAX", ("max", "max"), "anthropic/claude-opus-4-5"),
        # The suffix in the model name wins over the header.
        ("agent/coder:normal", "max", ("normal", "normal"), "openai/gpt-4o-mini"),
        # A tier without a model falls back to normal (which here is an alias).
        ("agent/helper:max", None, ("max", "normal"), "openai/gpt-4o-mini"),
    ],
)
def test_agent_tiers(
    requested: str, tier: str | None, agent_tier: tuple[str, str], primary: str
) -> None:
    res = resolve(requested, user_principal(2), ROUTING, tier)
    assert res.agent_id == requested.removeprefix("agent/").split(":")[0]
    assert (res.tier, res.effective_tier) == agent_tier
    assert res.primary == primary
    assert res.requested == requested


def test_agent_model_goes_through_the_orgs_alias() -> None:
    res = resolve("agent/helper", user_principal(1), ROUTING)
    assert res.primary == "gemini/gemini-2.5-flash"


def test_unknown_agent_and_bad_tier() -> None:
    with pytest.raises(NotFound, match=r"unknown agent 'ghost'.*coder, helper") as info:
        resolve("agent/ghost", None, ROUTING)
    assert not info.value.retryable
    with pytest.raises(InvalidRequest, match="unknown agent tier 'ultra'"):
        resolve("agent/coder:ultra", None, ROUTING)
    with pytest.raises(InvalidRequest, match="x-switchboard-tier"):
        resolve("agent/coder", None, ROUTING, "ultra")


def test_tier_header_is_ignored_without_an_agent() -> None:
    res = resolve("gpt-4o", None, ROUTING, "heavy")
    assert (res.agent_id, res.tier, res.primary) == (None, None, "openai/gpt-4o")


def test_alias_chains_follow_and_cycles_stop() -> None:
    routing = RoutingConfig(
        global_aliases={"a": "b", "b": "gpt-4o", "x": "y", "y": "x", "self": "self"},
        org_aliases={5: {"b": "claude-haiku-4-5"}},
    )
    assert resolve("a", None, routing).primary == "openai/gpt-4o"
    # The org's alias at the second hop beats the global one too.
    assert resolve("a", user_principal(5), routing).primary == "anthropic/claude-haiku-4-5"
    # x -> y -> x: stops at y, which is no model: a clean 404, not a hang.
    with pytest.raises(NotFound, match="'y'"):
        resolve("x", None, routing)
    with pytest.raises(NotFound, match="'self'"):
        resolve("self", None, routing)


def test_unknown_model_is_not_found() -> None:
    with pytest.raises(NotFound, match="unknown model 'whatever'"):
        resolve("whatever", None, ROUTING)


def test_ollama_bare_names_and_custom_providers() -> None:
    res = resolve("llama3.2", None, RoutingConfig(), ollama_models={"llama3.2"})
    assert res.candidates == ["ollama/llama3.2"]
    res = resolve("groq/llama-3.1-8b", None, RoutingConfig(), providers={"groq"})
    assert res.primary == "groq/llama-3.1-8b"
