"""Model references: provider/model, bare names by prefix or Ollama discovery, clear errors."""

from __future__ import annotations

import pytest

from backend.ir.errors import NotFound
from backend.routing.refs import ModelRef, parse_model_ref


@pytest.mark.parametrize(
    ("text", "provider", "model"),
    [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
        ("ollama/llama3.2", "ollama", "llama3.2"),
        ("ollama/llama3.2:latest", "ollama", "llama3.2"),
        ("ollama/gpt-oss:20b", "ollama", "gpt-oss:20b"),
        ("gemini/gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
        ("azure/prod-gpt4o", "azure", "prod-gpt4o"),
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("o1", "openai", "o1"),
        ("o3-mini", "openai", "o3-mini"),
        ("o4-mini", "openai", "o4-mini"),
        ("text-embedding-3-small", "openai", "text-embedding-3-small"),
        ("claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
        ("gemini-2.5-pro", "gemini", "gemini-2.5-pro"),
    ],
)
def test_parse(text: str, provider: str, model: str) -> None:
    assert parse_model_ref(text) == ModelRef(provider, model)


def test_custom_provider_prefix_needs_configuration() -> None:
    ref = parse_model_ref("groq/llama-3.1-8b", providers={"groq"})
    assert ref == ModelRef("groq", "llama-3.1-8b") and ref.key == "groq/llama-3.1-8b"
    with pytest.raises(NotFound, match="unknown provider 'groq'"):
        parse_model_ref("groq/llama-3.1-8b")


def test_bare_name_from_ollama_discovery_wins_over_prefixes() -> None:
    models = {"llama3.2", "gpt-oss:20b"}
    assert parse_model_ref("llama3.2", ollama_models=models) == ModelRef("ollama", "llama3.2")
    assert parse_model_ref("llama3.2:latest", ollama_models=models).key == "ollama/llama3.2"
    assert parse_model_ref("gpt-oss:20b", ollama_models=models).provider == "ollama"
    assert parse_model_ref("gpt-oss-120b", ollama_models=models).provider == "openai"


def test_unknown_bare_name_explains_addressing() -> None:
    with pytest.raises(NotFound) as info:
        parse_model_ref("mistery-model")
    err = info.value
    assert err.status == 404 and not err.retryable
    for hint in ("'<provider>/<model>'", "ollama/", "agent/<agent_id>", "alias"):
        assert hint in err.message
    # Prefixes are anchored: "o1" must not swallow names that only start with the letters.
    with pytest.raises(NotFound):
        parse_model_ref("o1x-model")


def test_from_key_round_trip() -> None:
    assert ModelRef.from_key("openai/ft:gpt-4o:org::x") == ModelRef("openai", "ft:gpt-4o:org::x")
    assert ModelRef.from_key("groq/meta-llama/llama-4") == ModelRef("groq", "meta-llama/llama-4")
    with pytest.raises(ValueError):
        ModelRef.from_key("gpt-4o")
