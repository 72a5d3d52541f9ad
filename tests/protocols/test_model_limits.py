"""Per-model limits (``model_limits``) and the cross-protocol details of issue 14 item 4:
output ceilings, Gemini thinking ranges, Anthropic's sampling rules, the end-user id to OpenAI,
and Claude Code's attribution block."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from backend.ir.chat import ChatRequest, Message, Reasoning, TextPart, Tool, ToolChoice
from backend.ir.errors import InvalidRequest
from backend.protocols import anthropic_messages as am
from backend.protocols import gemini
from backend.protocols import openai_chat as oa
from backend.protocols.model_limits import clamp_output, gemini_thinking, max_output
from backend.protocols.model_rules import refusal

TOOL = Tool("f", None, {"type": "object", "properties": {}})
BILLING = "x-anthropic-billing-header: cc_version=2.1.332.699; cc_entrypoint=sdk-cli;"


def anthropic_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 32000,
        "messages": [{"role": "user", "content": "hi"}],
    }
    return body | fields


def from_anthropic(**fields: Any) -> ChatRequest:
    return am.decode_request(anthropic_body(**fields))


def from_openai(**fields: Any) -> ChatRequest:
    return oa.decode_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]} | fields
    )


# -- output ceilings ----------
@pytest.mark.parametrize(
    ("kind", "model", "limit"),
    [
        ("openai", "gpt-4o-mini", 16384),
        ("openai", "gpt-4o-mini-2024-07-18", 16384),
        ("openai", "gpt-4.1-mini", 32768),
        ("openai", "o3-mini", 100000),
        ("openai", "gpt-5-chat-latest", 16384),
        ("openai", "gpt-3.5-turbo", 4096),
        ("anthropic", "claude-opus-4-1-20250805", 32000),
        ("anthropic", "claude-sonnet-4-5", 64000),
        ("anthropic", "claude-3-5-haiku-latest", 8192),
        ("anthropic", "claude-3-haiku-20240307", 4096),
        ("gemini", "gemini-2.5-flash", 65536),
        ("gemini", "models/gemini-2.0-flash", 8192),
        ("openai", "my-vllm-model", None),
        ("ollama", "llama3.2", None),
    ],
)
def test_max_output_table(kind: str, model: str, limit: int | None) -> None:
    assert max_output(kind, model) == limit
    assert clamp_output(kind, model, 10**6) == (limit or 10**6)
    assert clamp_output(kind, model, 100) == 100


def test_claude_codes_32000_is_clamped_for_each_provider() -> None:
    req = from_anthropic()
    assert oa.encode_request(req, "gpt-4o-mini", stream=False)["max_tokens"] == 16384
    assert oa.encode_request(req, "o3-mini", stream=False)["max_completion_tokens"] == 32000
    assert am.encode_request(req, "claude-3-5-haiku-latest", stream=False)["max_tokens"] == 8192
    body = gemini.encode_request(req, "gemini-2.0-flash", stream=False)
    assert body["generationConfig"]["maxOutputTokens"] == 8192


# -- Gemini thinking ranges ----------
@pytest.mark.parametrize(
    ("model", "budget", "config"),
    [
        # 2.5 Pro cannot turn thinking off: its least budget, thoughts not shown.
        ("gemini-2.5-pro", 0, {"thinkingBudget": 128, "includeThoughts": False}),
        ("gemini-2.5-pro", 50000, {"thinkingBudget": 32768, "includeThoughts": True}),
        ("gemini-2.5-flash", 0, {"thinkingBudget": 0}),
        ("gemini-2.5-flash", 32768, {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", 100, {"thinkingBudget": 512, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", 0, {"thinkingBudget": 0}),
        ("gemini-3-pro-preview", 2048, {"thinkingBudget": 2048, "includeThoughts": True}),
    ],
)
def test_gemini_thinking_budget_ranges(model: str, budget: int, config: dict[str, Any]) -> None:
    assert gemini_thinking(model, budget) == config


def test_effort_none_to_gemini_2_5_pro_is_its_minimum_not_a_400() -> None:
    body = gemini.encode_request(
        from_openai(reasoning_effort="none"), "gemini-2.5-pro", stream=False
    )
    assert body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 128,
        "includeThoughts": False,
    }


# -- Anthropic sampling rules ----------
def anthropic_refusal(req: ChatRequest, model: str) -> InvalidRequest | None:
    return refusal(req, "anthropic", "anthropic", model)


def test_newer_claude_models_take_temperature_or_top_p_not_both() -> None:
    both = from_openai(temperature=0.3, top_p=0.8)
    err = anthropic_refusal(both, "claude-sonnet-4-5")
    assert isinstance(err, InvalidRequest) and err.param == "top_p"
    assert "'temperature' and 'top_p' cannot both be specified" in err.message
    assert "claude-sonnet-4-5" in err.message
    # Older models take both, and so do other providers.
    assert anthropic_refusal(both, "claude-3-5-sonnet-latest") is None
    assert anthropic_refusal(both, "claude-sonnet-4-20250514") is None
    assert refusal(both, "openai", "openai", "gpt-4o") is None
    # A default (1) beside the other is left out rather than refused.
    req = from_openai(temperature=1, top_p=0.8)
    assert anthropic_refusal(req, "claude-haiku-4-5") is None
    body = am.encode_request(req, "claude-haiku-4-5", stream=False)
    assert body["top_p"] == 0.8 and "temperature" not in body
    body = am.encode_request(from_openai(temperature=0.3, top_p=1), "claude-opus-4-1", stream=False)
    assert body["temperature"] == 0.3 and "top_p" not in body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 0.5}, "temperature"),
        ({"top_k": 40}, "top_k"),
        ({"top_p": 0.9}, "top_p"),
        (
            {
                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "any"},
            },
            "tool_choice",
        ),
    ],
)
def test_thinking_sets_its_own_sampling_rules(fields: dict[str, Any], param: str) -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    req = from_anthropic(thinking=thinking, **fields)
    err = anthropic_refusal(req, "claude-sonnet-4-5")
    assert isinstance(err, InvalidRequest) and err.param == param
    assert "with thinking on" in err.message
    # Without thinking they are fine (one at a time).
    assert anthropic_refusal(from_anthropic(**fields), "claude-sonnet-4-5") is None


def test_thinking_allows_temperature_1_and_top_p_from_095() -> None:
    thinking = {"type": "adaptive"}
    req = from_anthropic(thinking=thinking, temperature=1, top_p=0.97)
    assert anthropic_refusal(req, "claude-sonnet-4-5") is None


def test_reasoning_effort_with_temperature_to_claude_is_refused() -> None:
    req = from_openai(reasoning_effort="high", temperature=0.2, max_tokens=30000)
    err = anthropic_refusal(req, "claude-sonnet-4-5")
    assert isinstance(err, InvalidRequest) and err.param == "temperature"
    # No room to think below max_tokens: no thinking, so temperature is fine.
    small = from_openai(reasoning_effort="high", temperature=0.2, max_tokens=500)
    assert anthropic_refusal(small, "claude-sonnet-4-5") is None


# -- the end user's id ----------
def test_anthropic_user_id_reaches_openai_as_safety_identifier_and_user() -> None:
    short = from_anthropic(metadata={"user_id": "user-42"})
    body = oa.encode_request(short, "gpt-4o-mini", stream=False)
    assert body["user"] == body["safety_identifier"] == "user-42"
    assert "metadata" not in body
    # Claude Code's user_id is a JSON document longer than OpenAI's 64 characters: hashed.
    long_id = '{"device_id":"' + "a" * 64 + '","account_uuid":"","session_id":"s"}'
    body = oa.encode_request(
        from_anthropic(metadata={"user_id": long_id}), "gpt-4o-mini", stream=False
    )
    digest = hashlib.sha256(long_id.encode()).hexdigest()
    assert body["user"] == body["safety_identifier"] == digest and len(digest) == 64


def test_an_openai_clients_user_and_metadata_pass_as_sent() -> None:
    body = oa.encode_request(
        from_openai(user="u" * 80, metadata={"k": "v"}), "gpt-4o-mini", stream=False
    )
    assert body["user"] == "u" * 80 and body["metadata"] == {"k": "v"}
    assert "safety_identifier" not in body


# -- Claude Code's attribution block ----------
def test_billing_header_goes_to_anthropic_only() -> None:
    system = [
        {"type": "text", "text": BILLING},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
    ]
    req = from_anthropic(system=system)
    assert [p.text for p in req.system] == ["You are Claude Code."]
    # Anthropic gets the system blocks exactly as sent, the mark on the right one.
    assert am.encode_request(req, "claude-sonnet-4-5", stream=False)["system"] == system
    sent = oa.encode_request(req, "gpt-4o-mini", stream=False)["messages"][0]
    assert sent == {"role": "system", "content": "You are Claude Code."}
    body = gemini.encode_request(req, "gemini-2.5-flash", stream=False)
    assert body["systemInstruction"] == {"parts": [{"text": "You are Claude Code."}]}


def test_billing_like_text_inside_an_instruction_is_kept() -> None:
    text = f"{BILLING}\nAnd follow these rules."
    req = from_anthropic(system=[{"type": "text", "text": text}])
    assert [p.text for p in req.system] == [text]


def test_tool_choice_and_messages_unaffected() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("x")])],
        tools=[TOOL],
        tool_choice=ToolChoice("required"),
        reasoning=Reasoning(effort="none"),
        protocol="openai",
    )
    # Thinking off: a forced tool is fine on Claude.
    assert anthropic_refusal(req, "claude-sonnet-4-5") is None
