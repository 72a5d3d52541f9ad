"""{OpenAI SDK, Anthropic SDK} x {OpenAI, Anthropic, Gemini, Ollama} x {stream, not} x
{plain answer, full tool-call round trip}, each checked at the fake upstream and in the log row.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from backend.ir.chat import Usage
from backend.pricing.book import PriceBook
from tests.e2e.conftest import Stack
from tests.e2e.harness import wait_for_rows
from tests.fakes.base import Reply, ToolCall

MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "ollama": "ollama/llama3.2",
}

WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_TOOL_OPENAI["function"]["parameters"],  # type: ignore[index]
}


def openai_client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )


def anthropic_client(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )


# -- one call through each SDK, returning (text, tool calls, usage, request id) ----------------


def call_openai(
    stack: Stack, model: str, messages: list[dict[str, Any]], stream: bool, tools: bool
) -> tuple[str, list[tuple[str, str, dict[str, Any]]], tuple[int, int], str]:
    client = openai_client(stack)
    extra: dict[str, Any] = {"tools": [WEATHER_TOOL_OPENAI]} if tools else {}
    if not stream:
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=messages,
            **extra,  # type: ignore[arg-type]
        )
        resp = raw.parse()
        msg = resp.choices[0].message
        calls = [
            (c.id, c.function.name, json.loads(c.function.arguments))
            for c in (msg.tool_calls or [])
        ]
        assert resp.usage is not None
        return (
            msg.content or "",
            calls,
            (resp.usage.prompt_tokens, resp.usage.completion_tokens),
            raw.headers["x-request-id"],
        )
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        **extra,
    )
    text, usage = "", (0, 0)
    acc: dict[int, dict[str, str]] = {}
    for chunk in raw.parse():
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for tc in choice.delta.tool_calls or []:
                slot = acc.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                slot["id"] += tc.id or ""
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["args"] += tc.function.arguments or ""
    calls = [(s["id"], s["name"], json.loads(s["args"])) for _, s in sorted(acc.items())]
    return text, calls, usage, raw.headers["x-request-id"]


def call_anthropic(
    stack: Stack, model: str, messages: list[dict[str, Any]], stream: bool, tools: bool
) -> tuple[str, list[tuple[str, str, dict[str, Any]]], tuple[int, int], str]:
    client = anthropic_client(stack)
    extra: dict[str, Any] = {"tools": [WEATHER_TOOL_ANTHROPIC]} if tools else {}
    if not stream:
        raw = client.messages.with_raw_response.create(
            model=model,
            max_tokens=200,
            messages=messages,
            **extra,  # type: ignore[arg-type]
        )
        msg = raw.parse()
        rid = raw.headers["x-request-id"]
    else:
        with client.messages.stream(
            model=model,
            max_tokens=200,
            messages=messages,
            **extra,  # type: ignore[arg-type]
        ) as s:
            msg = s.get_final_message()
            rid = s.response.headers["x-request-id"]
    text = "".join(b.text for b in msg.content if b.type == "text")
    calls = [(b.id, b.name, dict(b.input)) for b in msg.content if b.type == "tool_use"]  # type: ignore[arg-type]
    return text, calls, (msg.usage.input_tokens, msg.usage.output_tokens), rid


CALLERS = {"openai": call_openai, "anthropic": call_anthropic}


def tool_result_turns(sdk: str, call_id: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The assistant's tool call and the tool's answer, in the client's own protocol."""
    if sdk == "openai":
        return [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": json.dumps(args)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"},
        ]
    return [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": call_id, "name": "get_weather", "input": args}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call_id, "content": "18C and sunny"}
            ],
        },
    ]


def upstream_saw_tool_result(provider: str, body: dict[str, Any]) -> bool:
    """The tool's answer reached the provider in that provider's own wire format."""
    text = json.dumps(body)
    if "18C and sunny" not in text:
        return False
    if provider == "openai":
        return any(m.get("role") == "tool" for m in body["messages"])
    if provider == "anthropic":
        return any(
            isinstance(m["content"], list)
            and any(b.get("type") == "tool_result" for b in m["content"])
            for m in body["messages"]
        )
    if provider == "gemini":
        return any("functionResponse" in p for c in body["contents"] for p in c["parts"])
    return any(m.get("role") == "tool" for m in body["messages"])


def expected_cost(model: str, usage: Usage) -> Decimal | None:
    return PriceBook().cost(model, usage)


async def check_log_row(
    stack: Stack, request_id: str, model: str, usage: tuple[int, int], streamed: bool
) -> None:
    rows = await wait_for_rows(stack.database_url, 1, request_id=request_id)
    assert len(rows) == 1, f"no log row for {request_id}"
    row = rows[0]
    assert row.status == 200
    assert row.actual_model == model
    assert row.requested_model == model
    assert (row.input_tokens, row.output_tokens) == usage
    assert row.streamed is streamed
    assert row.user_id == stack.seeded.user_id
    cost = expected_cost(model, Usage(input_tokens=usage[0], output_tokens=usage[1]))
    if model.startswith("ollama/"):
        assert cost == 0 and row.cost_usd == 0
    else:
        assert cost is not None and cost > 0
        assert row.cost_usd == cost


@pytest.mark.parametrize("scenario", ["plain", "tools"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_sdk_provider_matrix(
    stack: Stack, sdk: str, provider: str, stream: bool, scenario: str
) -> None:
    stack.reset()
    fake = stack.fakes()[provider]
    model = MODELS[provider]
    call = CALLERS[sdk]
    user = [{"role": "user", "content": "What's the weather in Paris?"}]
    if scenario == "plain":
        fake.replies.append(
            Reply(text="Sunny and mild in Paris today.", input_tokens=21, output_tokens=7)
        )  # type: ignore[attr-defined]
        text, calls, usage, rid = call(stack, model, user, stream, False)
        assert text == "Sunny and mild in Paris today."
        assert calls == []
        assert usage == (21, 7)
        await check_log_row(stack, rid, model, usage, stream)
        return

    fake.replies.append(  # type: ignore[attr-defined]
        Reply(
            text=None,
            tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_abc")],
            finish="tool_calls",
            input_tokens=30,
            output_tokens=12,
        )
    )
    fake.replies.append(Reply(text="It is 18C and sunny.", input_tokens=45, output_tokens=8))  # type: ignore[attr-defined]
    text, calls, usage, rid = call(stack, model, user, stream, True)
    assert len(calls) == 1
    call_id, name, args = calls[0]
    assert name == "get_weather" and args == {"city": "Paris"} and call_id
    assert usage == (30, 12)
    await check_log_row(stack, rid, model, usage, stream)
    # The tool definition reached the provider.
    assert "get_weather" in json.dumps(fake.requests[0].json)  # type: ignore[attr-defined]

    text, calls, usage, rid = call(
        stack, model, user + tool_result_turns(sdk, call_id, args), stream, True
    )
    assert text == "It is 18C and sunny."
    assert calls == []
    assert usage == (45, 8)
    assert upstream_saw_tool_result(provider, fake.requests[1].json)  # type: ignore[attr-defined]
    await check_log_row(stack, rid, model, usage, stream)
