"""The OpenAI Agents SDK through the gateway's Responses API (issue 15 must-show 1).

``openai-agents`` (pinned in pyproject's dev extras) with its default model class,
``OpenAIResponsesModel``, on an ``AsyncOpenAI`` client whose base URL is the gateway, runs an
agent with one function tool, streamed (``Runner.run_streamed``) and not (``Runner.run``), on every
provider. Each fake upstream plays a scripted model (``AgentScript``) that calls the tool, then
answers a final text once the tool's result is back. Tracing is off for the runs (its exporter
would post to api.openai.com).
"""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI

pytest.importorskip(
    "agents", reason="openai-agents is not installed (pip install -e '.[dev]' installs it)"
)
from agents import (
    Agent,
    FunctionTool,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
)

from tests.e2e.agent_support import chats
from tests.e2e.conftest import Stack
from tests.fakes.base import AgentScript, FakeUpstream

KEYWORD = "SWITCHBOARD-AGENTS-CHECK"
FINAL_TEXT = "It is sunny in Paris."
INSTRUCTIONS = "You answer weather questions with the get_weather tool."
MODELS = [
    ("openai", "openai/gpt-4o-mini"),
    ("anthropic", "anthropic/claude-sonnet-4-5"),
    ("gemini", "gemini/gemini-2.5-flash"),
    ("ollama", "ollama/llama3.2"),
]


def weather_tool(calls: list[str]) -> FunctionTool:
    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return f"Sunny, 21 C in {city}"

    return get_weather


async def run_agent(stack: Stack, model: str, tool: FunctionTool, *, stream: bool) -> Any:
    client = AsyncOpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.seeded.user_key,
        max_retries=0,
        timeout=60,
    )
    agent = Agent(
        name="Weather",
        instructions=INSTRUCTIONS,
        tools=[tool],
        model=OpenAIResponsesModel(model=model, openai_client=client),
    )
    config = RunConfig(tracing_disabled=True)
    prompt = f"{KEYWORD}: what is the weather in Paris?"
    async with client:
        if not stream:
            return await Runner.run(agent, prompt, run_config=config, max_turns=4)
        result = Runner.run_streamed(agent, prompt, run_config=config, max_turns=4)
        kinds = [event.type async for event in result.stream_events()]
        # The run was streamed: raw Responses events came through, not only the end result.
        assert "raw_response_event" in kinds
        return result


@pytest.mark.parametrize("stream", [False, True], ids=["run", "run_streamed"])
@pytest.mark.parametrize(("provider", "model"), MODELS)
async def test_agent_calls_its_function_tool(
    stack: Stack, provider: str, model: str, stream: bool
) -> None:
    stack.reset()
    fake: FakeUpstream = stack.fakes()[provider]  # type: ignore[assignment]
    fake.script = AgentScript(
        keyword=KEYWORD,
        tool="get_weather",
        arguments={"city": "Paris"},
        final_text=FINAL_TEXT,
    )
    calls: list[str] = []
    result = await run_agent(stack, model, weather_tool(calls), stream=stream)

    assert result.final_output == FINAL_TEXT
    assert calls == ["Paris"]
    items = [item.type for item in result.new_items]
    assert items == ["tool_call_item", "tool_call_output_item", "message_output_item"]

    sent = chats(provider, fake)
    assert len(sent) == 2, [r.path for r in fake.requests]
    (_, first_body, first), (_, _, last) = sent
    assert first.tools == ["get_weather"] and KEYWORD in first.user_text
    assert INSTRUCTIONS in first.system_text
    # The tool's output went back to the model as the result of that call.
    assert last.result_for == (
        fake.script.call_id if provider in ("openai", "anthropic") else "get_weather"
    )
    assert "Sunny, 21 C in Paris" in last.result_text
    if provider == "openai":
        # OpenAI's own Responses API upstream: the SDK's strict function schema unchanged.
        (tool,) = first_body["tools"]
        assert tool["type"] == "function" and tool["strict"] is True
        assert tool["parameters"]["required"] == ["city"]
        assert first_body["instructions"] == INSTRUCTIONS
