"""The Gemini door with the official ``google-genai`` SDK: generate_content and
generate_content_stream x {OpenAI, Anthropic, Gemini, Ollama} x {plain, tool round trip,
structured output, thinking}, each checked in the SDK's answer, at the fake upstream and in the
log row; count_tokens, embed_content and models.list on the door; the google-genai 3.x default
``/v1`` spelling.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.genai import errors, types
from pydantic import BaseModel

from backend.protocols.gemini.wire import camel
from tests.e2e.conftest import Stack
from tests.e2e.gemini_support import MODELS, WEATHER, answer, collect, gemini_client
from tests.e2e.harness import wait_for_rows
from tests.e2e.test_matrix import check_log_row, upstream_saw_tool_result
from tests.fakes.anthropic_fake import AnthropicReply
from tests.fakes.base import Reply, ToolCall
from tests.fakes.gemini_fake import GeminiReply
from tests.fakes.ollama_fake import OllamaReply
from tests.fakes.openai_fake import OpenAIReply

THOUGHT = "The user wants the weather; I should say it is sunny."
#: A reasoning model for the OpenAI case (gpt-4o-mini cannot think).
THINKING_MODELS = {**MODELS, "openai": "openai/o3-mini", "ollama": "ollama/qwen3:8b"}
REPLIES: dict[str, type[Reply]] = {
    "openai": OpenAIReply,
    "anthropic": AnthropicReply,
    "gemini": GeminiReply,
    "ollama": OllamaReply,
}


class City(BaseModel):
    name: str
    population: int


def endpoint(stream: bool) -> str:
    method = "streamGenerateContent" if stream else "generateContent"
    return f"/v1beta/models/{{model}}:{method}"


def generate(
    stack: Stack, model: str, contents: Any, stream: bool, config: types.GenerateContentConfig
) -> tuple[str, list[Any], list[str], Any, str]:
    client = gemini_client(stack)
    if stream:
        return collect(
            client.models.generate_content_stream(model=model, contents=contents, config=config)
        )
    return answer(client.models.generate_content(model=model, contents=contents, config=config))


async def check_row(
    stack: Stack, rid: str, model: str, usage: tuple[int, int], stream: bool
) -> None:
    await check_log_row(stack, rid, model, usage, stream)
    rows = await wait_for_rows(stack.database_url, 1, request_id=rid)
    assert rows[0].endpoint == endpoint(stream)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
async def test_plain_and_tool_round_trip(stack: Stack, provider: str, stream: bool) -> None:
    stack.reset()
    fake: Any = stack.fakes()[provider]
    model = MODELS[provider]
    fake.replies.append(
        Reply(text="Sunny and mild in Paris today.", input_tokens=21, output_tokens=7)
    )
    text, calls, _, usage, rid = generate(
        stack, model, "What's the weather in Paris?", stream, types.GenerateContentConfig()
    )
    assert (text, calls) == ("Sunny and mild in Paris today.", [])
    assert (usage.prompt_token_count, usage.candidates_token_count) == (21, 7)
    await check_row(stack, rid, model, (21, 7), stream)

    stack.reset()
    fake.replies.append(
        Reply(
            text=None,
            tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_up_1")],
            finish="tool_calls",
            input_tokens=30,
            output_tokens=12,
        )
    )
    fake.replies.append(Reply(text="It is 18C and sunny.", input_tokens=45, output_tokens=8))
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    user = types.Content(role="user", parts=[types.Part(text="What's the weather in Paris?")])
    text, calls, _, usage, rid = generate(stack, model, [user], stream, config)
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].args == {"city": "Paris"}
    assert calls[0].id  # the upstream's id (Gemini's made-up one), echoed back next turn
    await check_row(stack, rid, model, (30, 12), stream)
    sent = json.dumps(fake.requests[0].json)
    assert "get_weather" in sent and '"required"' in sent

    model_turn = types.Content(role="model", parts=[types.Part(function_call=calls[0])])
    result = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(
                    id=calls[0].id, name="get_weather", response={"output": "18C and sunny"}
                )
            )
        ],
    )
    text, calls2, _, usage, rid = generate(stack, model, [user, model_turn, result], stream, config)
    assert (text, calls2) == ("It is 18C and sunny.", [])
    body = fake.requests[1].json
    assert upstream_saw_tool_result(provider, body)
    if provider in ("openai", "anthropic"):
        # The upstream's own call id went out and came back with the result.
        assert "call_up_1" in json.dumps(body)
    await check_row(stack, rid, model, (45, 8), stream)


def schema_reached(provider: str, body: dict[str, Any]) -> bool:
    text = json.dumps(body)
    if provider == "gemini":
        gen = body["generationConfig"]
        return gen["responseMimeType"] == "application/json" and "population" in json.dumps(
            gen.get("responseSchema") or gen.get("responseJsonSchema")
        )
    if provider == "openai":
        return body["response_format"]["type"] == "json_schema" and "population" in text
    if provider == "anthropic":
        return "population" in json.dumps(body.get("output_config") or body.get("tools"))
    return isinstance(body.get("format"), dict) and "population" in text


@pytest.mark.parametrize("form", ["response_schema", "response_json_schema"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
async def test_structured_output(stack: Stack, provider: str, stream: bool, form: str) -> None:
    stack.reset()
    fake: Any = stack.fakes()[provider]
    fake.replies.append(Reply(text='{"name": "Paris", "population": 2100000}'))
    schema: Any = City if form == "response_schema" else City.model_json_schema()
    config = types.GenerateContentConfig(response_mime_type="application/json", **{form: schema})
    client = gemini_client(stack)
    if stream:
        text = collect(
            client.models.generate_content_stream(
                model=MODELS[provider], contents="Biggest city of France?", config=config
            )
        )[0]
        parsed = City.model_validate_json(text)
    else:
        resp = client.models.generate_content(
            model=MODELS[provider], contents="Biggest city of France?", config=config
        )
        parsed = resp.parsed if form == "response_schema" else City.model_validate(resp.parsed)
    assert parsed == City(name="Paris", population=2100000)
    assert schema_reached(provider, fake.requests[0].json)


def thinking_reached(provider: str, body: dict[str, Any]) -> bool:
    if provider == "gemini":
        # Verbatim as the SDK wrote it (it spells these keys in snake_case; Gemini takes both).
        sent = {camel(k): v for k, v in body["generationConfig"]["thinkingConfig"].items()}
        return sent == {"includeThoughts": True, "thinkingBudget": 2048}
    if provider == "anthropic":
        return body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    if provider == "openai":
        return body["reasoning_effort"] == "low"
    return body["think"] is True


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
async def test_thinking(stack: Stack, provider: str, stream: bool) -> None:
    stack.reset()
    fake: Any = stack.fakes()[provider]
    reply_class = REPLIES[provider]
    field = "reasoning_content" if provider == "openai" else "thinking"
    fake.replies.append(
        reply_class(text="Sunny.", input_tokens=20, output_tokens=30, **{field: THOUGHT})
    )
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048),
        max_output_tokens=4096,
    )
    text, _, thoughts, _, _ = generate(
        stack, THINKING_MODELS[provider], "Weather in Paris?", stream, config
    )
    assert text == "Sunny."
    assert "".join(thoughts) == THOUGHT
    assert thinking_reached(provider, fake.requests[0].json)


async def test_thoughts_only_when_asked(stack: Stack) -> None:
    """Without includeThoughts, a model's thinking is not shown (as Gemini does)."""
    stack.reset()
    stack.anthropic.replies.append(AnthropicReply(text="Sunny.", thinking=THOUGHT))
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_budget=2048), max_output_tokens=4096
    )
    text, _, thoughts, _, _ = generate(stack, MODELS["anthropic"], "Weather?", False, config)
    assert text == "Sunny." and all(not t for t in thoughts)


async def test_count_tokens_embed_and_models(stack: Stack) -> None:
    stack.reset()
    client = gemini_client(stack)
    stack.gemini.replies.append(Reply(input_tokens=17))
    counted = client.models.count_tokens(model=MODELS["gemini"], contents="How many tokens?")
    assert counted.total_tokens == 17
    assert stack.gemini.requests[0].path.endswith(":countTokens")
    # OpenAI-format providers cannot count: the gateway estimates (never zero).
    counted = client.models.count_tokens(model=MODELS["openai"], contents="How many tokens?")
    assert counted.total_tokens and counted.total_tokens > 0

    stack.reset()
    emb = client.models.embed_content(
        model="gemini/gemini-embedding-001",
        contents=["first text", "second text"],
        config=types.EmbedContentConfig(output_dimensionality=4, task_type="RETRIEVAL_QUERY"),
    )
    assert emb.embeddings is not None and [len(e.values or []) for e in emb.embeddings] == [4, 4]
    sent = stack.gemini.requests[0].json["requests"]
    assert [r["taskType"] for r in sent] == ["RETRIEVAL_QUERY", "RETRIEVAL_QUERY"]
    emb = client.models.embed_content(model="openai/text-embedding-3-small", contents="hello")
    assert emb.embeddings is not None and len(emb.embeddings[0].values or []) > 0
    # taskType changes Gemini's vectors and OpenAI has nothing like it: a 400, not a drop.
    with pytest.raises(Exception) as refused:
        client.models.embed_content(
            model="openai/text-embedding-3-small",
            contents="hello",
            config=types.EmbedContentConfig(task_type="RETRIEVAL_QUERY"),
        )
    assert getattr(refused.value, "code", None) == 400
    assert "taskType" in str(refused.value)

    names = [m.name for m in client.models.list()]
    assert "models/anthropic/claude-sonnet-4-5" in names or any(
        n.startswith("models/anthropic/") for n in names
    )
    one = client.models.get(model=names[0])
    assert one.name == names[0]


async def test_v1_default_spelling(stack: Stack) -> None:
    """google-genai 3.x calls /v1/models/...: the door answers there too."""
    stack.reset()
    stack.anthropic.replies.append(Reply(text="Hello from v1."))
    client = gemini_client(stack, api_version="v1")
    resp = client.models.generate_content(model=MODELS["anthropic"], contents="hi")
    assert resp.text == "Hello from v1."
    assert any(n.startswith("models/") for n in (m.name for m in client.models.list()))


def sampling_sent(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    if provider == "gemini":
        return {k: v for k, v in body["generationConfig"].items() if k != "maxOutputTokens"}
    if provider == "ollama":
        return body["options"]
    keys = ("temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty")
    return {k: body[k] for k in keys if k in body}


@pytest.mark.parametrize("provider", list(MODELS))
async def test_sampling_fields_reach_each_provider(stack: Stack, provider: str) -> None:
    """Gemini CLI's defaults (temperature 1, topP 0.95, topK 64) work everywhere: topK is
    Anthropic's and Ollama's top_k, a documented no-op for OpenAI (no top-k there); seed and
    penalties go to OpenAI and Ollama; Anthropic has none of those, so they are a 400 there."""
    stack.reset()
    fake: Any = stack.fakes()[provider]
    fake.replies.append(Reply(text="ok"))
    config = types.GenerateContentConfig(temperature=1, top_p=0.95, top_k=64)
    text, *_ = generate(stack, MODELS[provider], "hi", False, config)
    assert text == "ok"
    expected = {
        "gemini": {"temperature": 1, "topP": 0.95, "topK": 64},
        "anthropic": {"temperature": 1, "top_p": 0.95, "top_k": 64},
        "openai": {"temperature": 1, "top_p": 0.95},
        "ollama": {"temperature": 1, "top_p": 0.95, "top_k": 64},
    }[provider]
    sent = sampling_sent(provider, fake.requests[0].json)
    if provider == "anthropic":
        # Claude models that take one sampler get the default temperature (1) left out.
        sent.setdefault("temperature", 1)
    assert sent == expected

    penalties = types.GenerateContentConfig(seed=7, presence_penalty=0.5, frequency_penalty=0.25)
    if provider == "anthropic":
        client = gemini_client(stack)
        with pytest.raises(errors.ClientError) as refused:
            client.models.generate_content(model=MODELS[provider], contents="hi", config=penalties)
        assert refused.value.code == 400
        message = refused.value.message or ""
        assert "cannot be honoured by anthropic model 'claude-sonnet-4-5'" in message
        assert "'generationConfig.presencePenalty'" in message  # the first it found
        return
    fake.replies.append(Reply(text="ok"))
    generate(stack, MODELS[provider], "hi", False, penalties)
    sent = sampling_sent(provider, fake.requests[1].json)
    if provider == "gemini":
        assert sent == {"seed": 7, "presencePenalty": 0.5, "frequencyPenalty": 0.25}
    else:
        assert sent == {"seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.25}
