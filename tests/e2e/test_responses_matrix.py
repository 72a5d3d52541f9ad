"""``POST /v1/responses`` with the official ``openai`` SDK (``responses.create``, ``.stream``,
``.parse``) x every provider (OpenAI through its own Responses API, Anthropic, Gemini, Ollama and
an OpenAI-compatible chat server, Azure) x stream and not x {plain, tool round trip, structured
output, reasoning}; each checked in what the SDK got, what the fake provider received and the log
row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.e2e.conftest import Stack
from tests.e2e.harness import wait_for_rows
from tests.fakes.anthropic_fake import AnthropicReply
from tests.fakes.base import FakeUpstream, Reply, ToolCall
from tests.fakes.gemini_fake import GeminiReply
from tests.fakes.ollama_fake import OllamaReply
from tests.fakes.openai_fake import OpenAIFake, OpenAIReply

MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "ollama": "ollama/qwen3:8b",
    "compat": "compat/gpt-4o-mini",
    "azure": "azure/gpt-4o-mini",
}
#: Reasoning models per provider (what a client asks to think).
THINKERS = MODELS | {
    "openai": "openai/o3-mini",
    "compat": "compat/o3-mini",
    "azure": "azure/o3-mini",
}
PATHS = {
    "openai": "/v1/responses",
    "anthropic": "/v1/messages",
    "gemini": "enerateContent",
    "ollama": "/api/chat",
    "compat": "/v1/chat/completions",
    "azure": "/chat/completions",
}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
THOUGHT = "The user wants the weather; a short answer will do."
SIGNATURE = "EqMBCkgIBxABGAIiQL1fake/signature+base64=="
REPLY_CLASSES: dict[str, type[Reply]] = {
    "openai": OpenAIReply,
    "compat": OpenAIReply,
    "azure": OpenAIReply,
    "anthropic": AnthropicReply,
    "gemini": GeminiReply,
    "ollama": OllamaReply,
}


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture(scope="module")
def compat() -> Iterator[OpenAIFake]:
    fake = OpenAIFake().start()
    try:
        yield fake  # type: ignore[misc]
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def gateway_overrides(compat: OpenAIFake) -> dict[str, str]:
    # One more OpenAI fake serves both the compatible server and Azure (its deployment paths).
    return {
        "SWITCHBOARD_PROVIDER_COMPAT_BASE_URL": compat.sdk_base_url,
        "AZURE_OPENAI_API_KEY": "azure-upstream-key-0123456789",
        "AZURE_OPENAI_BASE_URL": compat.base_url,
    }


def fake_of(stack: Stack, compat: OpenAIFake, provider: str) -> FakeUpstream:
    if provider in ("compat", "azure"):
        return compat
    return stack.fakes()[provider]  # type: ignore[return-value]


def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.seeded.user_key,
        max_retries=0,
        timeout=30,
    )


def thinking_reply(provider: str, text: str | None, **kw: Any) -> Reply:
    """A reply with thinking in the provider's own form (its fake renders it)."""
    cls = REPLY_CLASSES[provider]
    if provider in ("openai", "compat", "azure"):
        return cls(text=text, reasoning_content=THOUGHT, **kw)  # type: ignore[call-arg]
    if provider == "anthropic":
        return cls(text=text, thinking=THOUGHT, signature=SIGNATURE, **kw)  # type: ignore[call-arg]
    return cls(text=text, thinking=THOUGHT, **kw)  # type: ignore[call-arg]


def call(stack: Stack, stream: bool, **kwargs: Any) -> tuple[Any, list[str], str]:
    """(final response, streamed event types, request id) through ``create`` or ``stream``."""
    c = client(stack)
    if not stream:
        raw = c.responses.with_raw_response.create(**kwargs)
        return raw.parse(), [], raw.headers["x-request-id"]
    types: list[str] = []
    with c.responses.stream(**kwargs) as s:
        for event in s:
            types.append(event.type)
        final = s.get_final_response()
        rid = s._response.headers["x-request-id"]
    return final, types, rid


def upstream_body(fake: FakeUpstream, provider: str, n: int = -1) -> dict[str, Any]:
    reqs = [r for r in fake.requests if PATHS[provider] in r.path]
    body = reqs[n].json
    assert isinstance(body, dict)
    return body


def check_sequence(types: list[str], *items: str) -> None:
    """The full Responses event sequence for output items of these kinds, in order."""
    expected = ["response.created", "response.in_progress"]
    for kind in items:
        expected.append("response.output_item.added")
        if kind == "message":
            expected += ["response.content_part.added", "response.output_text.delta"]
        elif kind == "function_call":
            expected.append("response.function_call_arguments.delta")
        else:
            expected += [
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
            ]
        # deltas repeat: compare without repeats below
        if kind == "message":
            expected += [
                "response.output_text.done",
                "response.content_part.done",
            ]
        elif kind == "function_call":
            expected.append("response.function_call_arguments.done")
        else:
            expected += [
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
            ]
        expected.append("response.output_item.done")
    expected.append("response.completed")
    collapsed = [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]
    assert collapsed == expected, types


async def check_row(stack: Stack, rid: str, model: str, usage: Any, streamed: bool) -> None:
    rows = await wait_for_rows(stack.database_url, 1, request_id=rid)
    assert len(rows) == 1, f"no log row for {rid}"
    row = rows[0]
    assert (row.endpoint, row.status, row.actual_model) == ("/v1/responses", 200, model)
    assert (row.input_tokens, row.output_tokens) == (usage.input_tokens, usage.output_tokens)
    assert row.streamed is streamed


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
PROVIDERS = pytest.mark.parametrize("provider", list(MODELS))


@PROVIDERS
@STREAM
async def test_plain_text(stack: Stack, compat: OpenAIFake, provider: str, stream: bool) -> None:
    stack.reset()
    compat.reset()
    fake = fake_of(stack, compat, provider)
    # Prompt-cache reads where the provider reports them (Ollama does not).
    cached = 0 if provider == "ollama" else 6
    fake.replies.append(
        Reply(
            text="Sunny and mild in Paris.", input_tokens=21, output_tokens=7, cached_tokens=cached
        )
    )
    resp, types, rid = call(
        stack,
        stream,
        model=MODELS[provider],
        instructions="Be brief.",
        input="What's the weather in Paris?",
        max_output_tokens=300,
        temperature=0.5,
        metadata={"team": "docs"},
    )
    assert resp.status == "completed" and resp.id.startswith("resp_")
    assert resp.output_text == "Sunny and mild in Paris."
    assert resp.model == MODELS[provider] and resp.instructions == "Be brief."
    assert resp.metadata == {"team": "docs"}
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (21, 7)
    assert resp.usage.total_tokens == 28
    assert resp.usage.input_tokens_details.cached_tokens == cached
    if stream:
        check_sequence(types, "message")
    body = upstream_body(fake, provider)
    text = json.dumps(body)
    assert "Be brief." in text and "What's the weather in Paris?" in text
    if provider == "openai":
        assert body["instructions"] == "Be brief." and body["store"] is False
        assert body["max_output_tokens"] == 300 and body["metadata"] == {"team": "docs"}
        assert body["input"] == [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What's the weather in Paris?"}],
            }
        ]
    await check_row(stack, rid, MODELS[provider], resp.usage, stream)


@PROVIDERS
@STREAM
async def test_tool_round_trip(
    stack: Stack, compat: OpenAIFake, provider: str, stream: bool
) -> None:
    stack.reset()
    compat.reset()
    fake = fake_of(stack, compat, provider)
    fake.replies.append(
        Reply(
            text=None,
            tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_abc")],
            finish="tool_calls",
            input_tokens=30,
            output_tokens=12,
        )
    )
    fake.replies.append(Reply(text="It is 18C and sunny.", input_tokens=45, output_tokens=8))
    ask = [{"role": "user", "content": "What's the weather in Paris?"}]
    first, types, _ = call(
        stack,
        stream,
        model=MODELS[provider],
        input=ask,
        tools=[WEATHER],
        tool_choice="auto",
        # Gemini and Ollama cannot limit a turn to one call: false is a 400 there (model_rules).
        **({} if provider in ("gemini", "ollama") else {"parallel_tool_calls": False}),
    )
    calls = [o for o in first.output if o.type == "function_call"]
    assert len(calls) == 1, first.output
    fc = calls[0]
    assert fc.name == "get_weather" and json.loads(fc.arguments) == {"city": "Paris"}
    assert fc.call_id and fc.id.startswith("fc_") and fc.status == "completed"
    if provider not in ("gemini", "ollama"):  # those two name no call ids: the gateway does
        assert fc.call_id == "call_abc"
    if stream:
        check_sequence(types, "function_call")
    assert "get_weather" in json.dumps(upstream_body(fake, provider, 0))
    # The SDK's own output items go back as input, then the tool's result.
    history: list[Any] = [*ask, *[o.model_dump(exclude_none=True) for o in first.output]]
    history.append({"type": "function_call_output", "call_id": fc.call_id, "output": "18C, sun"})
    second, _, _ = call(stack, stream, model=MODELS[provider], input=history, tools=[WEATHER])
    assert second.output_text == "It is 18C and sunny."
    body = upstream_body(fake, provider, 1)
    assert "18C, sun" in json.dumps(body)
    if provider == "openai":
        kinds = [i["type"] for i in body["input"]]
        assert kinds == ["message", "function_call", "function_call_output"]
        assert body["input"][1]["call_id"] == "call_abc"
        assert body["tools"] == [WEATHER]
        assert upstream_body(fake, provider, 0)["parallel_tool_calls"] is False
    elif provider == "anthropic":
        results = [
            b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
        ]
        assert {"tool_use", "tool_result"} <= {b["type"] for b in results}


@PROVIDERS
@STREAM
async def test_structured_output(
    stack: Stack, compat: OpenAIFake, provider: str, stream: bool
) -> None:
    stack.reset()
    compat.reset()
    fake = fake_of(stack, compat, provider)
    answer = '{"city": "Paris", "celsius": 18}'
    if provider == "anthropic":
        # claude-sonnet-4-5 has native structured output: the JSON comes back as text.
        fake.replies.append(AnthropicReply(text=answer))
    else:
        fake.replies.append(Reply(text=answer))
    c = client(stack)
    kwargs: dict[str, Any] = {
        "model": MODELS[provider],
        "input": "Weather in Paris as JSON",
        "text_format": Weather,
    }
    if stream:
        with c.responses.stream(**kwargs) as s:
            for _ in s:
                pass
            parsed = s.get_final_response().output_parsed
    else:
        parsed = c.responses.parse(**kwargs).output_parsed
    assert parsed == Weather(city="Paris", celsius=18)
    body = upstream_body(fake, provider)
    if provider == "openai":
        fmt = body["text"]["format"]
        assert fmt["type"] == "json_schema" and fmt["name"] == "Weather" and fmt["strict"]
        assert fmt["schema"]["required"] == ["city", "celsius"]
    elif provider in ("compat", "azure"):
        assert body["response_format"]["json_schema"]["name"] == "Weather"
    elif provider == "anthropic":
        assert body["output_config"]["format"]["type"] == "json_schema"
    elif provider == "gemini":
        assert body["generationConfig"]["responseMimeType"] == "application/json"
    else:
        assert body["format"]["required"] == ["city", "celsius"]


@PROVIDERS
@STREAM
async def test_reasoning(stack: Stack, compat: OpenAIFake, provider: str, stream: bool) -> None:
    stack.reset()
    compat.reset()
    fake = fake_of(stack, compat, provider)
    fake.replies.append(
        thinking_reply(provider, "Sunny.", input_tokens=20, output_tokens=40, reasoning_tokens=25)
    )
    fake.replies.append(Reply(text="Still sunny."))
    model = THINKERS[provider]
    reasoning: Any = {"effort": "low", "summary": "auto"}
    first, types, _ = call(
        stack, stream, model=model, input="Weather?", reasoning=reasoning, include=[]
    )
    kinds = [o.type for o in first.output]
    assert kinds == ["reasoning", "message"], first.output
    item = first.output[0]
    assert [s.text for s in item.summary] == [THOUGHT]
    assert first.output_text == "Sunny."
    if stream:
        check_sequence(types, "reasoning", "message")
    if provider in ("openai", "gemini", "compat", "azure"):
        # Providers that report reasoning tokens.
        assert first.usage.output_tokens_details.reasoning_tokens == 25
    body = upstream_body(fake, provider)
    if provider == "openai":
        assert body["reasoning"] == {"effort": "low", "summary": "auto"}
        assert "reasoning.encrypted_content" in body["include"]
    elif provider in ("compat", "azure"):
        assert body["reasoning_effort"] == "low"
    elif provider == "anthropic":
        assert body["thinking"]["type"] == "enabled"
    elif provider == "gemini":
        assert body["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    else:
        assert body["think"] is True
    # The next turn carries the reasoning item back: the provider that signed it gets it again.
    history = [
        {"role": "user", "content": "Weather?"},
        *[o.model_dump(exclude_none=True) for o in first.output],
        {"role": "user", "content": "And now?"},
    ]
    second, _, _ = call(stack, stream, model=model, input=history, reasoning=reasoning)
    assert second.output_text == "Still sunny."
    body = upstream_body(fake, provider, 1)
    if provider == "openai":
        echoed = [i for i in body["input"] if i["type"] == "reasoning"]
        assert echoed and echoed[0]["encrypted_content"].startswith("gAAAAA-fake-")
        assert "id" not in echoed[0]
    elif provider == "anthropic":
        blocks = [
            b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
        ]
        assert {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE} in blocks


GOLDEN = Path(__file__).parents[1] / "protocols" / "openai_responses" / "golden"


@STREAM
async def test_hosted_tools_pass_through_to_openai(stack: Stack, stream: bool) -> None:
    """OpenAI's own answer with a hosted web search, its annotated text and encrypted reasoning
    reaches the SDK item for item; the web search tool and ``include`` reach OpenAI as sent."""
    stack.reset()
    if stream:
        raw = (GOLDEN / "upstream_stream.sse").read_bytes()
        stack.openai.replies.append(Reply(raw=raw, raw_content_type="text/event-stream"))
    else:
        stack.openai.replies.append(Reply(raw=(GOLDEN / "upstream_response.json").read_bytes()))
    tools: Any = [{"type": "web_search", "search_context_size": "low"}, WEATHER]
    resp, types, _ = call(
        stack,
        stream,
        model="openai/gpt-5",
        input="Find the docs and list them.",
        tools=tools,
        include=["web_search_call.action.sources", "reasoning.encrypted_content"],
        reasoning={"effort": "medium", "summary": "auto"},
    )
    upstream = json.loads((GOLDEN / "upstream_response.json").read_text())
    got = [o.model_dump(exclude_none=True) for o in resp.output]
    if stream:  # the gateway names the items it streams itself; hosted ones keep OpenAI's id
        for item in (*got, *upstream["output"]):
            if item["type"] != "web_search_call":
                item.pop("id")
    assert got == upstream["output"]
    assert resp.usage.input_tokens_details.cached_tokens == 768
    assert resp.usage.output_tokens_details.reasoning_tokens == 64
    if stream:
        assert "response.web_search_call.searching" in types
        assert "response.output_text.annotation.added" in types
    sent = upstream_body(stack.openai, "openai")
    assert sent["tools"] == tools and sent["store"] is False
    assert sent["include"] == ["web_search_call.action.sources", "reasoning.encrypted_content"]
