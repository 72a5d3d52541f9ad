"""DLP covers every text that leaves for the provider, not only messages (issue 13 item 9).

With the official SDKs against the fake upstreams (which record exactly what they received):
OpenAI's ``safety_identifier``, ``prompt_cache_key``, ``prediction.content``, tool descriptions
and enums, stop sequences and ``response_format`` schemas; Anthropic's tool descriptions and
``input_schema`` enums, ``stop_sequences`` and ``output_config`` schemas; the same fields when
translated to the Gemini and Ollama wire formats. Each arrives with placeholders, while what must
stay byte-exact (model, tool names, schema keys, an MCP server's URL and token) is unchanged, and
the answer (text, tool arguments, the stop sequence that ended it) comes back with the values.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.dlp_support import (
    ALL,
    EMPLOYEE,
    MODELS,
    DlpStack,
    Sensitive,
    assert_no_raw,
    dlp_stack,
)
from tests.fakes.anthropic_fake import AnthropicReply
from tests.fakes.base import Reply, ToolCall

EMAIL, PHONE, CARD = ALL[0], ALL[1], ALL[2]
USED: tuple[Sensitive, ...] = (EMAIL, PHONE, CARD, EMPLOYEE)
#: Placeholders as numbered in the requests below: tools first, then messages, then the rest.
P = {s.label: s.placeholder for s in USED}


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DlpStack]:
    async with dlp_stack(tmp_path_factory.mktemp("dlp-fields")) as s:
        yield s


def schema(shown: dict[str, str]) -> dict[str, Any]:
    """A tool's parameters: a described property with an enum, a property named "type"."""
    return {
        "type": "object",
        "properties": {
            "to": {
                "type": "string",
                "description": f"Who to notify, e.g. {shown['email']}",
                "enum": [shown["email"], "nobody"],
            },
            "type": {"type": "string", "default": shown["card"]},
        },
        "required": ["to"],
    }


RAW = {s.label: s.value for s in USED}
GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # a token the app means to send


def openai_tools(shown: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": "notify",
                "description": f"Notify {shown['email']} or call {shown['phone']}",
                "parameters": schema(shown),
            },
        }
    ]


def openai_request(shown: dict[str, str]) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"Ping {shown['employee']}"}],
        "tools": openai_tools(shown),
        "stop": [f"Regards, {shown['email']}"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "reply",
                "schema": {
                    "type": "object",
                    "properties": {"note": {"type": "string", "description": shown["phone"]}},
                },
            },
        },
        "safety_identifier": shown["email"],
        "prompt_cache_key": f"cache {shown['card']}",
        "prediction": {"type": "content", "content": f"Dear {shown['email']}, {shown['card']}"},
    }


def sent_body(stack: DlpStack, provider: str) -> tuple[str, Any]:
    rec = stack.last_chat(provider)
    body = rec.body.decode()
    assert_no_raw(body, USED, f"the {provider} request")
    return body, rec.json


async def test_openai_fields_arrive_redacted_and_the_answer_is_restored(stack: DlpStack) -> None:
    stack.reset()
    stack.openai.replies.append(
        Reply(
            text=f"Done for {P['email']} ({P['card']})",
            tool_calls=[ToolCall("notify", {"to": P["email"]})],
            finish="tool_calls",
        )
    )
    resp = await _openai(stack).chat.completions.create(
        model=MODELS["openai"], **openai_request(RAW)
    )
    msg = resp.choices[0].message
    assert msg.content == f"Done for {EMAIL.value} ({CARD.value})"
    assert msg.tool_calls and json.loads(msg.tool_calls[0].function.arguments) == {  # type: ignore[union-attr]
        "to": EMAIL.value
    }
    _, doc = sent_body(stack, "openai")
    expected = openai_request(P)
    for field in ("safety_identifier", "prompt_cache_key", "prediction", "stop", "tools"):
        assert doc[field] == expected[field], field
    assert doc["response_format"]["json_schema"] == expected["response_format"]["json_schema"]
    assert (
        doc["model"] == "gpt-4o-mini" and doc["messages"][0]["content"] == "Ping " + P["employee"]
    )


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "ollama"])
async def test_tool_descriptions_and_stop_sequences_are_redacted_across_protocols(
    stack: DlpStack, provider: str
) -> None:
    """An OpenAI client's tools and stop sequences, translated to another provider's wire."""
    stack.reset()
    stack.fakes()[provider].replies.append(Reply(text=f"ok {P['email']}"))  # type: ignore[attr-defined]
    request = openai_request(RAW)
    resp = await _openai(stack).chat.completions.create(
        model=MODELS[provider],
        messages=request["messages"],
        tools=request["tools"],
        stop=request["stop"],
    )
    assert resp.choices[0].message.content == f"ok {EMAIL.value}"
    body, _ = sent_body(stack, provider)
    for text in (
        f"Notify {P['email']} or call {P['phone']}",
        f"Who to notify, e.g. {P['email']}",
        f"Regards, {P['email']}",
    ):
        assert json.dumps(text)[1:-1] in body, (provider, text)
    assert '"notify"' in body  # the tool name is unchanged


def anthropic_request(shown: dict[str, str]) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"Ping {shown['employee']}"}],
        "tools": [
            {
                "name": "notify",
                "description": f"Notify {shown['email']} or call {shown['phone']}",
                "input_schema": schema(shown),
            }
        ],
        "stop_sequences": [f"Regards, {shown['email']}"],
        "output_config": {
            "format": {
                "type": "json_schema",
                "schema": {
                    "type": "object",
                    "properties": {"note": {"type": "string", "enum": [shown["card"]]}},
                },
            }
        },
    }


MCP = [
    {
        "type": "url",
        "url": "http://203.0.113.42:8080/mcp",
        "name": "crm",
        "authorization_token": GHP,
    }
]


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_fields_arrive_redacted_and_the_stop_sequence_is_restored(
    stack: DlpStack, stream: bool
) -> None:
    stack.reset()
    stack.anthropic.replies.append(
        AnthropicReply(
            text=f"Noted {P['email']}",
            finish="stop_sequence",
            stop_sequence=f"Regards, {P['email']}",
        )
    )
    client = _anthropic(stack)
    kwargs = {"model": MODELS["anthropic"], "max_tokens": 200, **anthropic_request(RAW)}
    kwargs["extra_body"] = {"mcp_servers": MCP}
    if stream:
        async with client.messages.stream(**kwargs) as s:
            msg = await s.get_final_message()
    else:
        msg = await client.messages.create(**kwargs)
    assert [b.text for b in msg.content if b.type == "text"] == [f"Noted {EMAIL.value}"]
    assert msg.stop_reason == "stop_sequence"
    assert msg.stop_sequence == f"Regards, {EMAIL.value}"
    rec = stack.last_chat("anthropic")
    doc = rec.json
    expected = anthropic_request(P)
    for field in ("tools", "stop_sequences", "output_config", "messages"):
        assert doc[field] == expected[field], field
    # Sent on purpose and byte-exact: the MCP server's address and credential.
    assert doc["mcp_servers"] == MCP
    body = rec.body.decode()
    assert_no_raw(body, USED, "the anthropic request")


def _openai(stack: DlpStack) -> Any:
    import openai

    return openai.AsyncOpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.scopes["org"].key,
        max_retries=0,
        timeout=60,
    )


def _anthropic(stack: DlpStack) -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(
        base_url=stack.gateway.url, api_key=stack.scopes["org"].key, max_retries=0, timeout=60
    )
