"""Issue 14 item 3 through the real gateway: the official OpenAI SDK's ``chat.completions.parse``
(and its streaming helper) with a pydantic model works against every provider format, each fake
receiving the schema in its own field and answering valid JSON its own way (Anthropic: text
under ``output_config.format``, or a ``tool_use`` block of the forced tool on older models).
The Anthropic SDK's ``output_config.format`` reaches an OpenAI upstream as ``response_format``.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pytest
from pydantic import BaseModel

from tests.e2e.conftest import Stack
from tests.fakes.base import Reply, ToolCall


class Person(BaseModel):
    name: str
    age: int


ADA = {"name": "Ada", "age": 36}
ASK = [{"role": "user", "content": "Who wrote the first program?"}]


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """The module's stack (``conftest``), with the fakes' scripts and records reset."""
    stack.reset()
    return stack


def oai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )


_PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "enerateContent",
    "ollama": "/api/chat",
}


def sent(stack: Stack, name: str) -> dict[str, Any]:
    fake = stack.fakes()[name]
    [body] = [r.json for r in fake.requests if _PATHS[name] in r.path]  # type: ignore[attr-defined]
    return dict(body)


def schema_in(name: str, body: dict[str, Any]) -> Any:
    """The schema as the provider's own field carries it."""
    if name == "openai":
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Person"
        return fmt["json_schema"]["schema"]
    if name == "anthropic":
        fmt = body["output_config"]["format"]
        assert fmt["type"] == "json_schema" and "tools" not in body and "system" not in body
        return fmt["schema"]
    if name == "gemini":
        gen = body["generationConfig"]
        assert gen["responseMimeType"] == "application/json"
        return gen["responseSchema"]
    return body["format"]


CASES = [
    ("openai", "openai/gpt-4o-mini"),
    ("anthropic", "anthropic/claude-sonnet-4-5"),
    ("gemini", "gemini/gemini-2.5-flash"),
    ("ollama", "ollama/llama3.2"),
]


def check_schema(name: str, body: dict[str, Any]) -> None:
    schema = schema_in(name, body)
    if name == "gemini":  # Gemini's own schema dialect
        assert schema["type"] == "OBJECT"
        props = schema["properties"]
        assert (props["name"]["type"], props["age"]["type"]) == ("STRING", "INTEGER")
        assert schema["propertyOrdering"] == ["name", "age"]
    else:
        assert schema["properties"]["name"]["type"] == "string"
        assert schema["properties"]["age"]["type"] == "integer"
        assert sorted(schema["required"]) == ["age", "name"]


@pytest.mark.parametrize(("name", "model"), CASES)
async def test_parse_gives_the_model_instance_on_every_provider(
    stack: Stack, name: str, model: str
) -> None:
    stack.fakes()[name].replies.append(Reply(text=orjson.dumps(ADA).decode()))
    done = oai(stack).chat.completions.parse(model=model, messages=ASK, response_format=Person)  # type: ignore[arg-type]
    message = done.choices[0].message
    assert message.parsed == Person(name="Ada", age=36)
    assert done.choices[0].finish_reason == "stop"
    check_schema(name, sent(stack, name))


@pytest.mark.parametrize(("name", "model"), CASES)
async def test_streamed_parse_gives_the_model_instance_on_every_provider(
    stack: Stack, name: str, model: str
) -> None:
    stack.fakes()[name].replies.append(Reply(text=orjson.dumps(ADA).decode(), chunks=5))
    with oai(stack).chat.completions.stream(
        model=model,
        messages=ASK,  # type: ignore[arg-type]
        response_format=Person,
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Person(name="Ada", age=36)
    check_schema(name, sent(stack, name))


def forced_reply() -> Reply:
    return Reply(
        text=None, tool_calls=[ToolCall("Person", ADA, id="toolu_p1")], finish="tool_calls"
    )


def check_forced(body: dict[str, Any]) -> None:
    [tool] = body["tools"]
    assert tool["name"] == "Person" and tool["input_schema"]["properties"]["age"]["type"] == (
        "integer"
    )
    assert body["tool_choice"]["type"] == "tool" and body["tool_choice"]["name"] == "Person"
    assert "output_config" not in body and "system" not in body


async def test_parse_on_an_older_claude_uses_a_forced_tool(stack: Stack) -> None:
    stack.anthropic.replies.append(forced_reply())
    done = oai(stack).chat.completions.parse(
        model="anthropic/claude-3-5-haiku-latest",
        messages=ASK,  # type: ignore[arg-type]
        response_format=Person,
    )
    choice = done.choices[0]
    assert choice.message.parsed == Person(name="Ada", age=36)
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    check_forced(sent(stack, "anthropic"))


async def test_streamed_parse_on_an_older_claude_uses_a_forced_tool(stack: Stack) -> None:
    stack.anthropic.replies.append(forced_reply())
    with oai(stack).chat.completions.stream(
        model="anthropic/claude-3-5-haiku-latest",
        messages=ASK,  # type: ignore[arg-type]
        response_format=Person,
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.message.parsed == Person(name="Ada", age=36)
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    check_forced(sent(stack, "anthropic"))


async def test_json_object_on_claude_is_a_forced_object_tool(stack: Stack) -> None:
    stack.anthropic.replies.append(
        Reply(text=None, tool_calls=[ToolCall("json_object", ADA)], finish="tool_calls")
    )
    done = oai(stack).chat.completions.create(
        model="anthropic/claude-sonnet-4-5",
        messages=ASK,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
    )
    assert orjson.loads(done.choices[0].message.content or "") == ADA
    body = sent(stack, "anthropic")
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    assert body["tool_choice"]["name"] == "json_object"


async def test_recursive_schema_to_gemini_is_a_400_naming_it(stack: Stack) -> None:
    class Node(BaseModel):
        label: str
        child: Node | None = None

    with pytest.raises(openai.BadRequestError) as info:
        oai(stack).chat.completions.parse(
            model="gemini/gemini-2.5-flash",
            messages=ASK,  # type: ignore[arg-type]
            response_format=Node,
        )
    err = info.value.response.json()["error"]
    assert err["param"] == "response_format" and "recursive reference" in err["message"]
    assert "gemini" in err["message"]
    assert all("enerateContent" not in r.path for r in stack.gemini.requests)


async def test_anthropic_output_config_format_reaches_openai_as_response_format(
    stack: Stack,
) -> None:
    schema = Person.model_json_schema()
    stack.openai.replies.append(Reply(text=orjson.dumps(ADA).decode()))
    client = anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )
    msg = client.messages.create(
        model="openai/gpt-4o-mini",
        max_tokens=200,
        messages=ASK,  # type: ignore[arg-type]
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
    )
    assert [orjson.loads(b.text) for b in msg.content if b.type == "text"] == [ADA]
    fmt = sent(stack, "openai")["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == schema
