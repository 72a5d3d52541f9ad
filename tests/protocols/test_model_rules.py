"""The per-model parameter table and "never a silent drop": what each encoder sends or refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.ir.chat import (
    ChatRequest,
    ImagePart,
    Message,
    Opaque,
    Reasoning,
    TextPart,
    Tool,
    ToolChoice,
    ToolResultPart,
)
from backend.ir.errors import InvalidRequest
from backend.protocols import gemini, ollama
from backend.protocols import openai_chat as oa
from backend.protocols.model_rules import (
    ANTHROPIC_FIELDS,
    OPENAI_FIELDS,
    ollama_think,
    reasoning_budget,
    reasoning_effort,
    refusal,
    rules_for,
    takes_reasoning_effort,
)

TOOL = Tool("get_weather", None, {"type": "object", "properties": {"city": {"type": "string"}}})


def anthropic_door(**fields: Any) -> ChatRequest:
    """As the Anthropic codec decodes it."""
    req = ChatRequest(model="m", messages=[Message("user", [TextPart("hi")])], protocol="anthropic")
    for name, value in fields.items():
        setattr(req, name, value)
    return req


def openai_door(body: dict[str, Any]) -> ChatRequest:
    return oa.decode_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]} | body)


# -- item 4: per-model rules ---------------------------------------------------------------------


@pytest.mark.parametrize("model", ["o3-mini", "o1", "o4-mini-2025-04-16", "gpt-5", "gpt-5.1-mini"])
def test_reasoning_models_take_max_completion_tokens(model: str) -> None:
    body = oa.encode_request(anthropic_door(max_tokens=300), model, stream=False)
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body
    # Even when an OpenAI client itself said max_tokens.
    body = oa.encode_request(openai_door({"max_tokens": 50}), model, stream=False)
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-5-chat-latest", "omni-moderation", "llama3"])
def test_other_models_keep_max_tokens_and_sampling(model: str) -> None:
    req = anthropic_door(max_tokens=300, temperature=0.2, top_p=0.5)
    assert refusal(req, "openai", "openai", model) is None
    body = oa.encode_request(req, model, stream=False)
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (300, 0.2, 0.5)
    # The client's own spelling still wins for non-reasoning models.
    body = oa.encode_request(openai_door({"max_completion_tokens": 9}), model, stream=False)
    assert body["max_completion_tokens"] == 9


@pytest.mark.parametrize("param", ["temperature", "top_p"])
def test_reasoning_models_refuse_sampling_naming_parameter_and_model(param: str) -> None:
    err = refusal(anthropic_door(**{param: 0.2}), "azure", "azure", "o3-mini")
    assert isinstance(err, InvalidRequest) and err.status == 400
    assert err.param == param and err.code == "unsupported_value"
    assert f"'{param}'" in err.message and "azure" in err.message and "o3-mini" in err.message


def test_reasoning_models_take_the_default_sampling_value_by_leaving_it_out() -> None:
    req = anthropic_door(temperature=1.0, top_p=1)
    assert refusal(req, "openai", "openai", "o3-mini") is None
    body = oa.encode_request(req, "o3-mini", stream=False)
    assert "temperature" not in body and "top_p" not in body


def test_rules_are_per_provider_kind() -> None:
    # An Ollama model called "o3" is not OpenAI's.
    assert rules_for("ollama", "o3").fixed_sampling is False
    assert rules_for("azure", "o3").fixed_sampling is True


def test_gemini_takes_seed_penalties_and_top_k_in_generation_config() -> None:
    req = openai_door({"seed": 7, "frequency_penalty": 0.5, "presence_penalty": -0.5})
    gen = gemini.encode_request(req, "gemini-2.5-flash", stream=False)["generationConfig"]
    assert (gen["seed"], gen["frequencyPenalty"], gen["presencePenalty"]) == (7, 0.5, -0.5)
    req = anthropic_door(extra={"top_k": 5})
    assert gemini.encode_request(req, "g", stream=False)["generationConfig"] == {"topK": 5}


def test_ollama_takes_sampling_in_options() -> None:
    req = openai_door(
        {
            "seed": 42,
            "temperature": 0.1,
            "top_p": 0.8,
            "max_tokens": 64,
            "stop": ["END"],
            "frequency_penalty": 0.3,
            "presence_penalty": 0.4,
        }
    )
    options = ollama.encode_request(req, "llama3.2", stream=False)["options"]
    assert options == {
        "seed": 42,
        "temperature": 0.1,
        "top_p": 0.8,
        "num_predict": 64,
        "stop": ["END"],
        "frequency_penalty": 0.3,
        "presence_penalty": 0.4,
    }
    req = anthropic_door(extra={"top_k": 3})
    assert ollama.encode_request(req, "m", stream=False)["options"] == {"top_k": 3}


# -- item 5: never a silent drop ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "kinds"),
    [
        ({"n": 2}, "n", ["anthropic", "gemini", "ollama"]),
        ({"logprobs": True}, "logprobs", ["anthropic", "gemini", "ollama"]),
        ({"top_logprobs": 2}, "top_logprobs", ["anthropic", "gemini", "ollama"]),
        ({"seed": 1}, "seed", ["anthropic"]),
        ({"modalities": ["text", "audio"]}, "modalities", ["anthropic", "gemini", "ollama"]),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", ["anthropic", "gemini"]),
        ({"logit_bias": {"50256": -100}}, "logit_bias", ["anthropic", "ollama"]),
        ({"web_search_options": {}}, "web_search_options", ["anthropic", "gemini"]),
    ],
)
def test_openai_fields_other_providers_cannot_honour_are_refused(
    body: dict[str, Any], param: str, kinds: list[str]
) -> None:
    req = openai_door(body)
    assert refusal(req, "openai", "openai", "gpt-4o") is None
    for kind in kinds:
        err = refusal(req, kind, kind, "some-model")
        assert isinstance(err, InvalidRequest), kind
        assert err.param == param and f"'{param}'" in err.message and kind in err.message


def test_default_values_are_not_refused() -> None:
    req = openai_door({"n": 1, "logprobs": False, "modalities": ["text"], "store": True})
    for kind in ("anthropic", "gemini", "ollama"):
        assert refusal(req, kind, kind, "m") is None


def test_encoders_refuse_instead_of_dropping() -> None:
    with pytest.raises(InvalidRequest, match=r"'n'.*gemini"):
        gemini.encode_request(openai_door({"n": 2}), "gemini-2.5-flash", stream=False)
    with pytest.raises(InvalidRequest, match=r"'logprobs'.*ollama"):
        ollama.encode_request(openai_door({"logprobs": True}), "llama3.2", stream=False)


def test_anthropic_only_fields_are_refused_where_they_mean_something() -> None:
    req = anthropic_door(extra={"top_k": 5})
    err = refusal(req, "openai", "openai", "gpt-4o")
    assert isinstance(err, InvalidRequest) and err.param == "top_k"
    req = anthropic_door(extra={"mcp_servers": [{"type": "url", "url": "https://x"}]})
    assert all(refusal(req, k, k, "m") is not None for k in ("openai", "gemini", "ollama"))
    assert refusal(req, "anthropic", "anthropic", "claude-sonnet-4-5") is None
    # Prompt-caching and bookkeeping hints are documented no-ops.
    req = anthropic_door(extra={"cache_control": {"type": "ephemeral"}, "service_tier": "auto"})
    assert all(refusal(req, k, k, "m") is None for k in ("openai", "gemini", "ollama"))


def test_a_field_missing_from_the_table_is_refused_not_dropped() -> None:
    req = anthropic_door(extra={"brand_new_field": 1})
    err = refusal(req, "gemini", "gemini", "m")
    assert isinstance(err, InvalidRequest) and err.param == "brand_new_field"
    # The same protocol carries it on.
    assert refusal(req, "anthropic", "anthropic", "m") is None


def test_the_tables_hold_unmodelled_fields_for_every_provider() -> None:
    from backend.protocols.anthropic_messages.vocab import MODELLED_FIELDS
    from backend.protocols.openai_chat.vocab import EXTRA_PARAMS, MODELLED_PARAMS

    assert set(EXTRA_PARAMS) == set(OPENAI_FIELDS)
    assert not set(OPENAI_FIELDS) & MODELLED_PARAMS
    assert not set(ANTHROPIC_FIELDS) & MODELLED_FIELDS
    for table in (OPENAI_FIELDS, ANTHROPIC_FIELDS):
        for name, kinds in table.items():
            assert set(kinds) == {"openai", "anthropic", "gemini", "ollama"}, name


@pytest.mark.parametrize("choice", [ToolChoice("required"), ToolChoice("tool", "get_weather")])
def test_ollama_refuses_forced_tool_choice(choice: ToolChoice) -> None:
    req = anthropic_door(tools=[TOOL], tool_choice=choice)
    err = refusal(req, "ollama", "ollama", "llama3.2")
    assert isinstance(err, InvalidRequest) and err.param == "tool_choice"
    assert "ollama" in err.message and "llama3.2" in err.message
    with pytest.raises(InvalidRequest):
        ollama.encode_request(req, "llama3.2", stream=False)
    # Every other provider can force a tool.
    assert all(refusal(req, k, k, "m") is None for k in ("openai", "anthropic", "gemini"))


def test_ollama_refuses_image_urls_and_unpacks_data_urls() -> None:
    url = ImagePart(url="https://example.com/cat.png")
    for parts in ([TextPart("look"), url], [ToolResultPart("c1", [url])]):
        req = anthropic_door(messages=[Message("user", list(parts))])
        with pytest.raises(InvalidRequest, match=r"image URLs.*ollama") as info:
            ollama.encode_request(req, "llava", stream=False)
        assert info.value.param == "messages"
    req = anthropic_door(
        messages=[
            Message("user", [TextPart("look"), ImagePart(url="data:image/png;base64,iVBORw0K")])
        ]
    )
    message = ollama.encode_request(req, "llava", stream=False)["messages"][0]
    assert message == {"role": "user", "content": "look", "images": ["iVBORw0K"]}


# -- n and logprobs, OpenAI to OpenAI ------------------------------------------------------------


def test_openai_upstream_choices_and_logprobs_reach_an_openai_client() -> None:
    logprobs = {"content": [{"token": "A", "logprob": -0.1, "bytes": [65], "top_logprobs": []}]}
    second = {
        "index": 1,
        "message": {"role": "assistant", "content": "B", "refusal": None},
        "logprobs": {"content": []},
        "finish_reason": "length",
    }
    upstream = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A"},
                "logprobs": logprobs,
                "finish_reason": "stop",
            },
            second,
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    answer = oa.encode_response(oa.decode_response(upstream), "openai/gpt-4o")
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    assert answer["choices"][0]["logprobs"] == logprobs
    assert answer["choices"][0]["message"]["content"] == "A"
    assert answer["choices"][1] == second


def test_n_and_logprobs_in_an_openai_stream_pass_to_openai_only() -> None:
    for body, param in (({"n": 2}, "n"), ({"logprobs": True}, "logprobs")):
        req = openai_door(body | {"stream": True})
        assert refusal(req, "openai", "openai", "gpt-4o") is None
        for kind in ("anthropic", "gemini", "ollama"):
            err = refusal(req, kind, kind, "m")
            assert isinstance(err, InvalidRequest) and err.param == param


def test_blocks_tools_and_keys_without_translation_are_refused_naming_them() -> None:
    document = Opaque("anthropic", {"type": "document", "source": {}})
    req = anthropic_door(messages=[Message("user", [TextPart("a"), document])])
    assert refusal(req, "anthropic", "anthropic", "claude-x") is None
    err = refusal(req, "openai", "openai", "gpt-4o")
    assert isinstance(err, InvalidRequest) and err.param == "messages"
    assert "content block type 'document' (messages[0].content[1])" in err.message
    assert "openai model 'gpt-4o'" in err.message and "Anthropic Messages API" in err.message
    web = Opaque("anthropic", {"type": "web_search_20250305", "name": "web_search"})
    req = anthropic_door(tools=[TOOL, web])
    err = refusal(req, "gemini", "gemini", "gemini-2.5-flash")
    assert isinstance(err, InvalidRequest) and err.param == "tools"
    assert "tool type 'web_search_20250305' (tools[1])" in err.message
    cited = TextPart("x", extra={"citations": []})
    req = anthropic_door(messages=[Message("assistant", [cited])])
    err = refusal(req, "ollama", "ollama", "llama3.2")
    assert isinstance(err, InvalidRequest) and "field 'citations' of a text block" in err.message
    # Codec bookkeeping keys are never extras.
    req = anthropic_door(messages=[Message("user", [TextPart("x", extra={"_mine": 1})])])
    assert refusal(req, "ollama", "ollama", "llama3.2") is None


def test_readme_tables_match_the_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## What translates to what", 1)[1].split("\n## ", 1)[0]
    words = {"passed": "pass", "translated": "translate", "no-op": "ignore", "400": "refuse"}
    tables: list[dict[str, dict[str, str]]] = []
    for block in section.split("| Field |")[1:]:
        header, _, *rows = block.strip().splitlines()
        kinds = ["openai" if "OpenAI" in h else h.strip().lower() for h in header.split("|")[:-1]]
        table: dict[str, dict[str, str]] = {}
        for row in rows:
            if not row.startswith("|"):
                break
            cells = [c.strip() for c in row.strip("|").split("|")]
            support = {k: words[c] for k, c in zip(kinds, cells[1:], strict=True)}
            table[cells[0].strip("`")] = support
        tables.append(table)
    assert tables == [OPENAI_FIELDS, ANTHROPIC_FIELDS]


# -- reasoning ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reasoning", "budget", "effort"),
    [
        (Reasoning(effort="none"), 0, None),
        (Reasoning(effort="minimal"), 1024, "low"),
        (Reasoning(effort="low"), 2048, "low"),
        (Reasoning(effort="medium"), 8192, "medium"),
        (Reasoning(effort="high"), 24576, "high"),
        (Reasoning(effort="max"), 32768, "high"),
        (Reasoning(budget_tokens=1500), 1500, "low"),
        (Reasoning(budget_tokens=2049), 2049, "medium"),
        (Reasoning(budget_tokens=8192), 8192, "medium"),
        (Reasoning(budget_tokens=31999), 31999, "high"),
    ],
)
def test_effort_budget_table(reasoning: Reasoning, budget: int, effort: str | None) -> None:
    assert reasoning_budget(reasoning) == budget
    assert reasoning_effort(reasoning) == effort


def test_ollama_think_is_a_level_only_for_models_that_take_one() -> None:
    assert ollama_think(Reasoning(effort="high"), "qwen3:8b") is True
    assert ollama_think(Reasoning(effort="none"), "qwen3:8b") is False
    assert ollama_think(Reasoning(effort="xhigh"), "gpt-oss:20b") == "high"
    assert ollama_think(Reasoning(budget_tokens=1024), "gpt-oss:20b") == "low"
    assert ollama_think(Reasoning(effort="none"), "gpt-oss:20b") is False


def test_only_openai_reasoning_models_take_reasoning_effort() -> None:
    assert takes_reasoning_effort("openai", "o3-mini")
    assert takes_reasoning_effort("azure", "gpt-5")
    assert not takes_reasoning_effort("openai", "gpt-4o-mini")
    assert not takes_reasoning_effort("openai", "gpt-5-chat-latest")
    assert not takes_reasoning_effort("gemini", "gemini-2.5-flash")
