"""Issue 14 item 2, reasoning both ways, through the real gateway with the official SDKs.

Requests: OpenAI ``reasoning_effort`` and Anthropic ``thinking`` (budgeted, adaptive with
``output_config.effort``, disabled) reach each provider as its own config (checked in what the
fake received). Answers: Anthropic thinking, Gemini thought parts and Ollama ``thinking`` reach
an OpenAI client as ``reasoning_content`` (message and stream deltas); Anthropic's signed and
redacted thinking blocks survive a two-turn tool-use round trip through an OpenAI client.
The README's "Reasoning" tables list these mappings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.harness import wait_for_rows
from tests.fakes.anthropic_fake import AnthropicReply
from tests.fakes.base import ToolCall
from tests.fakes.gemini_fake import GeminiReply
from tests.fakes.ollama_fake import OllamaReply
from tests.fakes.openai_fake import OpenAIReply

CLAUDE = "anthropic/claude-sonnet-4-5"
GEMINI = "gemini/gemini-2.5-flash"
OLLAMA = "ollama/qwen3:8b"
O_SERIES = "openai/o3-mini"
GPT = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "hi"}]
THOUGHT = "The user greets me; a short greeting back will do."
SIGNATURE = "EqMBCkgIBxABGAIiQL1fake/signature+base64=="
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "generateContent",
    "ollama": "/api/chat",
}


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """The module's stack (``conftest``), with the fakes' scripts and records reset."""
    stack.reset()
    return stack


def oai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )


def ant(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )


def received(stack: Stack, provider: str) -> list[dict[str, Any]]:
    """The chat bodies ``provider``'s fake received."""
    fake = stack.fakes()[provider]
    return [r.json for r in fake.requests if PATHS[provider] in r.path]  # type: ignore[attr-defined]


# -- requests ----------------------------------------------------------------------------------
def test_reasoning_effort_reaches_each_provider(stack: Stack) -> None:
    client = oai(stack)
    for model in (CLAUDE, GEMINI, OLLAMA, O_SERIES):
        client.chat.completions.create(model=model, messages=HI, reasoning_effort="high")  # type: ignore[arg-type]
    (claude,) = received(stack, "anthropic")
    assert claude["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert claude["max_tokens"] > 24576, "the API needs room above the budget"
    (gemini,) = received(stack, "gemini")
    assert gemini["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 24576,
        "includeThoughts": True,
    }
    (ollama,) = received(stack, "ollama")
    assert ollama["think"] is True
    (o3,) = received(stack, "openai")
    assert o3["reasoning_effort"] == "high"


def test_reasoning_budget_stays_below_the_clients_limit(stack: Stack) -> None:
    oai(stack).chat.completions.create(
        model=CLAUDE, messages=HI, reasoning_effort="medium", max_completion_tokens=3000
    )
    (claude,) = received(stack, "anthropic")
    assert claude["max_tokens"] == 3000
    assert claude["thinking"] == {"type": "enabled", "budget_tokens": 2999}


def test_reasoning_effort_none_turns_thinking_off(stack: Stack) -> None:
    client = oai(stack)
    for model in (CLAUDE, GEMINI, OLLAMA):
        client.chat.completions.create(model=model, messages=HI, reasoning_effort="none")  # type: ignore[arg-type]
    assert received(stack, "anthropic")[0]["thinking"] == {"type": "disabled"}
    assert received(stack, "gemini")[0]["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 0
    }
    assert received(stack, "ollama")[0]["think"] is False


def test_anthropic_thinking_budget_reaches_each_provider(stack: Stack) -> None:
    client = ant(stack)
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    for model in (GEMINI, OLLAMA, O_SERIES, GPT):
        client.messages.create(model=model, max_tokens=4000, messages=HI, thinking=thinking)  # type: ignore[arg-type]
    assert received(stack, "gemini")[0]["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048,
        "includeThoughts": True,
    }
    assert received(stack, "ollama")[0]["think"] is True
    o3, gpt = received(stack, "openai")
    assert o3["reasoning_effort"] == "low"
    # gpt-4o-mini cannot reason and answers 400 to reasoning_effort: a documented no-op.
    assert "reasoning_effort" not in gpt


def test_anthropic_adaptive_thinking_uses_the_effort(stack: Stack) -> None:
    client = ant(stack)
    for model in (GEMINI, O_SERIES):
        client.messages.create(
            model=model,
            max_tokens=4000,
            messages=HI,  # type: ignore[arg-type]
            thinking={"type": "adaptive"},  # type: ignore[typeddict-item,typeddict-unknown-key]
            extra_body={"output_config": {"effort": "medium"}},
        )
    thinking_config = received(stack, "gemini")[0]["generationConfig"]["thinkingConfig"]
    assert thinking_config["thinkingBudget"] == 8192
    assert received(stack, "openai")[0]["reasoning_effort"] == "medium"


# -- answers -----------------------------------------------------------------------------------
def _thinking_replies(stack: Stack) -> None:
    stack.anthropic.replies.append(AnthropicReply(text="Hello!", thinking=THOUGHT))
    stack.gemini.replies.append(
        GeminiReply(text="Hello!", thinking=THOUGHT, output_tokens=30, reasoning_tokens=20)
    )
    stack.ollama.replies.append(OllamaReply(text="Hello!", thinking=THOUGHT))


@pytest.mark.parametrize("model", [CLAUDE, GEMINI, OLLAMA])
def test_thinking_reaches_an_openai_client(stack: Stack, model: str) -> None:
    _thinking_replies(stack)
    resp = oai(stack).chat.completions.create(model=model, messages=HI)
    message = resp.choices[0].message
    assert message.content == "Hello!"
    assert (message.model_extra or {}).get("reasoning_content") == THOUGHT
    if model == GEMINI:
        assert resp.usage is not None and resp.usage.completion_tokens == 30
        details = resp.usage.completion_tokens_details
        assert details is not None and details.reasoning_tokens == 20


@pytest.mark.parametrize("model", [CLAUDE, GEMINI, OLLAMA])
def test_thinking_streams_to_an_openai_client(stack: Stack, model: str) -> None:
    _thinking_replies(stack)
    stream = oai(stack).chat.completions.create(model=model, messages=HI, stream=True)
    reasoning, content = "", ""
    for chunk in stream:
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            content += choice.delta.content or ""
    assert (reasoning, content) == (THOUGHT, "Hello!")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", [GEMINI, OLLAMA, GPT])
def test_thinking_reaches_an_anthropic_client(stack: Stack, model: str, stream: bool) -> None:
    _thinking_replies(stack)
    # An OpenAI-compatible reasoning server (vLLM, DeepSeek) sends reasoning_content.
    stack.openai.replies.append(OpenAIReply(text="Hello!", reasoning_content=THOUGHT))
    client = ant(stack)
    if stream:
        with client.messages.stream(model=model, max_tokens=100, messages=HI) as events:  # type: ignore[arg-type]
            msg = events.get_final_message()
    else:
        msg = client.messages.create(model=model, max_tokens=100, messages=HI)  # type: ignore[arg-type]
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking == THOUGHT  # type: ignore[union-attr]
    assert msg.content[1].text == "Hello!"  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
def test_compatible_server_reasoning_reaches_an_openai_client(stack: Stack, stream: bool) -> None:
    stack.openai.replies.append(OpenAIReply(text="Hello!", reasoning_content=THOUGHT))
    client = oai(stack)
    if stream:
        reasoning = ""
        for chunk in client.chat.completions.create(model=GPT, messages=HI, stream=True):  # type: ignore[arg-type]
            for choice in chunk.choices:
                reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
    else:
        message = client.chat.completions.create(model=GPT, messages=HI).choices[0].message  # type: ignore[arg-type]
        reasoning = (message.model_extra or {}).get("reasoning_content")
    assert reasoning == THOUGHT


async def test_reasoning_tokens_are_priced_as_output(stack: Stack) -> None:
    # Token counts no other test here uses, to find this request's log row.
    reply = GeminiReply(
        text="Hello!", thinking=THOUGHT, input_tokens=17, output_tokens=43, reasoning_tokens=29
    )
    stack.gemini.replies.append(reply)
    resp = oai(stack).chat.completions.create(model=GEMINI, messages=HI)
    assert resp.usage is not None and resp.usage.completion_tokens == 43
    rows = await wait_for_rows(stack.database_url, 1, timeout=30, input_tokens=17)
    assert [r.output_tokens for r in rows] == [43], "Gemini's thoughtsTokenCount is output"
    # gemini-2.5-flash list rates: $0.30 in / $2.50 out per million tokens.
    assert rows[0].cost_usd == (17 * Decimal("0.3") + 43 * Decimal("2.5")) / 10**6


# -- the signature round trip ------------------------------------------------------------------
def _tool_turn(stack: Stack) -> None:
    call = ToolCall("get_weather", {"city": "Paris"}, id="toolu_01")
    stack.anthropic.replies.append(
        AnthropicReply(
            text=None,
            tool_calls=[call],
            thinking=THOUGHT,
            signature=SIGNATURE,
            redacted_thinking=REDACTED,
            finish="tool_calls",
        )
    )
    stack.anthropic.replies.append(AnthropicReply(text="Sunny in Paris."))


def _second_turn_assistant(stack: Stack) -> dict[str, Any]:
    _, second = received(stack, "anthropic")
    assistant = second["messages"][1]
    assert assistant["role"] == "assistant"
    return assistant


EXPECTED_BLOCKS = [
    {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE},
    {"type": "redacted_thinking", "data": REDACTED},
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
]


def test_signed_thinking_round_trips_through_an_openai_client(stack: Stack) -> None:
    _tool_turn(stack)
    client = oai(stack)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model=CLAUDE, messages=messages, tools=[WEATHER], reasoning_effort="low"
    )
    message = first.choices[0].message
    assert (message.model_extra or {})["thinking_blocks"] == EXPECTED_BLOCKS[:2]
    assert message.tool_calls and message.tool_calls[0].id == "toolu_01"
    # The SDK's own message object goes back as is, as the OpenAI docs show.
    messages += [message, {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny"}]
    final = client.chat.completions.create(
        model=CLAUDE, messages=messages, tools=[WEATHER], reasoning_effort="low"
    )
    assert final.choices[0].message.content == "Sunny in Paris."
    assert _second_turn_assistant(stack)["content"] == EXPECTED_BLOCKS


def test_signed_thinking_round_trips_through_an_openai_stream(stack: Stack) -> None:
    _tool_turn(stack)
    client = oai(stack)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    with client.chat.completions.stream(
        model=CLAUDE, messages=messages, tools=[WEATHER], reasoning_effort="low"
    ) as stream:
        first = stream.get_final_completion()
    message = first.choices[0].message
    assert (message.model_extra or {})["reasoning_content"] == THOUGHT
    echoed = message.model_dump(exclude_none=True, exclude={"parsed"})
    messages += [echoed, {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny"}]
    client.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER])  # type: ignore[list-item]
    assert _second_turn_assistant(stack)["content"] == EXPECTED_BLOCKS
