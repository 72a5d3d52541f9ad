"""The official ``openai`` SDK against ``OpenAIFake``: proves the fake speaks real OpenAI.

If the SDK parses the fake's answers (JSON, SSE with its accumulator, base64 embeddings,
errors, Azure paths), tests that use the fake to check the gateway test against the real wire.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.base import Reply, ToolCall
from tests.fakes.openai_fake import OpenAIFake, fake_vector


@pytest.fixture(scope="module")
def fake() -> Iterator[OpenAIFake]:
    with OpenAIFake() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(fake: OpenAIFake) -> None:
    fake.reset()


def sdk(fake: OpenAIFake) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.sdk_base_url, api_key="sk-test", max_retries=0)


MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_sdk_parses_plain_answer(fake: OpenAIFake) -> None:
    fake.replies.append(
        Reply(text="Hello there", input_tokens=12, output_tokens=3, cached_tokens=4)
    )
    async with sdk(fake) as client:
        out = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert out.choices[0].message.content == "Hello there"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage is not None and out.usage.total_tokens == 15
    assert out.usage.prompt_tokens_details is not None
    assert out.usage.prompt_tokens_details.cached_tokens == 4
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"


async def test_sdk_accumulates_streamed_text_and_tool_calls(fake: OpenAIFake) -> None:
    fake.replies.append(
        Reply(
            text="Let me look.",
            tool_calls=[
                ToolCall("get_weather", {"city": "Nice"}, id="call_a"),
                ToolCall("get_time", {"tz": "Europe/Rome"}, id="call_b"),
            ],
            chunks=4,
        )
    )
    async with (
        sdk(fake) as client,
        client.chat.completions.stream(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream_options={"include_usage": True},
        ) as stream,
    ):
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert message.role == "assistant"
    assert message.content == "Let me look."
    calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]
    assert calls == [
        ("call_a", "get_weather", '{"city":"Nice"}'),
        ("call_b", "get_time", '{"tz":"Europe/Rome"}'),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.completion_tokens == 5


async def test_sdk_raw_stream_ends_with_usage_chunk(fake: OpenAIFake) -> None:
    fake.replies.append(Reply(text="abc", chunks=3))
    async with sdk(fake) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:4]] == ["a", "b", "c"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


async def test_sdk_sees_errors_with_their_status(fake: OpenAIFake) -> None:
    fake.replies.append(Reply(status=429, error_message="Rate limit reached"))
    async with sdk(fake) as client:
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "Rate limit reached" in str(info.value)
    assert info.value.code == "rate_limit_exceeded"


async def test_sdk_sees_a_dropped_stream_as_a_failure(fake: OpenAIFake) -> None:
    fake.replies.append(Reply(text="abcdef", drop_after=2))
    async with sdk(fake) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass


async def test_sdk_embeddings_base64_default_and_float(fake: OpenAIFake) -> None:
    async with sdk(fake) as client:
        b64 = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        floats = await client.embeddings.create(
            model="text-embedding-3-small", input="a", encoding_format="float", dimensions=4
        )
    # The SDK asks for base64 by default and decodes it itself.
    assert fake.requests[0].json["encoding_format"] == "base64"
    assert [d.embedding for d in b64.data] == [fake_vector("a", 8), fake_vector("b", 8)]
    assert floats.data[0].embedding == fake_vector("a", 4)


async def test_sdk_lists_models(fake: OpenAIFake) -> None:
    async with sdk(fake) as client:
        page = await client.models.list()
    assert [m.id for m in page.data] == list(OpenAIFake.model_ids)


async def test_azure_sdk_uses_deployment_path(fake: OpenAIFake) -> None:
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=fake.base_url, api_key="azure-key", api_version="2024-10-21", max_retries=0
    )
    async with client:
        out = await client.chat.completions.create(model="my-deploy", messages=MESSAGES)
    assert out.choices[0].message.content == "ok"
    rec = fake.requests[0]
    assert rec.path == "/openai/deployments/my-deploy/chat/completions"
    assert "api-version=2024-10-21" in rec.query
    assert rec.headers["api-key"] == "azure-key"
