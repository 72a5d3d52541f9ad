"""OpenAI chat codec, request side: strict client validation and IR -> upstream encoding."""

from __future__ import annotations

from typing import Any

import pytest

from backend.ir.chat import (
    ChatRequest,
    ImagePart,
    Message,
    Opaque,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.ir.errors import InvalidRequest
from backend.protocols.openai_chat import (
    FLAGS_KEY,
    decode_request,
    encode_request,
    estimate_tokens,
)


def body(**over: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **over}


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "param", "fragment"),
    [
        ([], None, "JSON object"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "Missing required"),
        ({"model": 3, "messages": []}, "model", "expected a string"),
        ({"model": " ", "messages": [{"role": "user", "content": "x"}]}, "model", "empty"),
        ({"model": "m"}, "messages", "Missing required"),
        ({"model": "m", "messages": {}}, "messages", "expected an array"),
        ({"model": "m", "messages": []}, "messages", "empty array"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]", "expected an object"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role", "Missing"),
        (
            {"model": "m", "messages": [{"role": "bot", "content": "x"}]},
            "messages[0].role",
            "'bot'",
        ),
        (
            {"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]},
            "messages[0].role",
            "deprecated",
        ),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content", "Missing"),
        (
            {"model": "m", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "string or array",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": 5}]}]},
            "messages[0].content[0].type",
            "a string",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
            "Missing",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
                    }
                ],
            },
            "messages[0].content[0].image_url.url",
            "http(s)",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}
                        ],
                    }
                ],
            },
            "messages[0].content[0].image_url.url",
            "base64",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": {}},
                            }
                        ],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
            "expected a string",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "Missing",
        ),
        (
            {"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
            "expected 'text'",
        ),
        (body(tools=[{"type": 7}]), "tools[0].type", "a string"),
        (body(tools=[{"type": "function", "function": {}}]), "tools[0].function.name", "Missing"),
        (body(tool_choice="any"), "tool_choice", "'any'"),
        (body(tool_choice={"function": {"name": "f"}}), "tool_choice.type", "function"),
        (body(temperature="hot"), "temperature", "expected a number"),
        (body(temperature=3), "temperature", "out of range"),
        (body(top_p=True), "top_p", "expected a number"),
        (body(max_tokens=0), "max_tokens", "minimum"),
        (body(max_tokens=1.5), "max_tokens", "integer"),
        (body(stop=[1]), "stop[0]", "expected a string"),
        (body(stream="yes"), "stream", "boolean"),
        (
            body(stream=True, stream_options={"include_usage": 1}),
            "stream_options.include_usage",
            "boolean",
        ),
        (body(response_format={"type": "yaml"}), "response_format.type", "'yaml'"),
        (body(response_format={"type": "json_schema"}), "response_format.json_schema", "Missing"),
        (body(functions=[{"name": "f"}]), "functions", "deprecated"),
        (body(metadata=["x"]), "metadata", "expected an object"),
    ],
)
def test_invalid_requests_name_the_parameter(
    payload: Any, param: str | None, fragment: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_request(payload)
    assert info.value.param == param
    assert fragment in info.value.message
    assert info.value.status == 400


# -- decoding semantics ----------------------------------------------------------------------------
def test_leading_system_and_developer_lift_later_ones_stay() -> None:
    req = decode_request(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "a"},
                {"role": "developer", "content": [{"type": "text", "text": "b"}]},
                {"role": "user", "content": "q"},
                {"role": "developer", "content": "late"},
            ],
        }
    )
    assert req.system == [TextPart("a"), TextPart("b")]
    assert req.messages == [Message("user", [TextPart("q")]), Message("system", [TextPart("late")])]
    assert "system_role" not in req.extra[FLAGS_KEY]


def test_tool_messages_merge_only_when_consecutive() -> None:
    req = decode_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "b",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "2"}]},
                {"role": "user", "content": "more"},
                {"role": "tool", "tool_call_id": "c", "content": "3"},
            ],
        }
    )
    roles = [(m.role, len(m.parts)) for m in req.messages]
    assert roles == [("user", 1), ("assistant", 2), ("user", 2), ("user", 1), ("user", 1)]
    assert req.messages[2].parts[1] == ToolResultPart("b", [TextPart("2")])
    # Empty assistant text next to tool calls is not kept as an empty text part.
    assert all(isinstance(p, ToolCallPart) for p in req.messages[1].parts)


def test_every_unmodelled_param_is_kept_for_the_passthrough() -> None:
    req = decode_request(body(n=2, seed=7, verbosity="low", frobnicate=True, logit_bias=None))
    assert req.protocol == "openai"
    assert {k: v for k, v in req.extra.items() if k != FLAGS_KEY} == {
        "n": 2,
        "seed": 7,
        "verbosity": "low",
        "frobnicate": True,
    }


def test_unmodelled_parts_tools_and_keys_become_extras() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}
    custom = {"type": "custom", "custom": {"name": "grep", "description": "d"}}
    call = {"id": "c1", "type": "custom", "custom": {"name": "grep", "input": "x"}}
    req = decode_request(
        body(
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "a"}, audio]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [call],
                    "audio": {"id": "audio_1"},
                    "annotations": [],
                    "refusal": None,
                },
            ],
            tools=[custom, {"type": "function", "function": {"name": "f", "x_flag": 1}}],
            tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
        )
    )
    assert req.messages[0].parts == [TextPart("a"), Opaque("openai", audio)]
    assistant = req.messages[1]
    # An echoed answer's empty annotations and null refusal ask for nothing.
    assert assistant.parts == [Opaque("openai", call)]
    assert assistant.extra == {"audio": {"id": "audio_1"}}
    assert req.tools[0] == Opaque("openai", custom)
    assert isinstance(req.tools[1], Tool) and req.tools[1].extra == {"function": {"x_flag": 1}}
    assert req.tool_choice is None and req.extra["tool_choice"]["type"] == "allowed_tools"


def test_option_variants() -> None:
    req = decode_request(
        body(
            stop="END",
            tool_choice="required",
            max_tokens=10,
            max_completion_tokens=20,
            stream_options={"include_usage": True},
        )
    )
    assert req.stop == ["END"]
    assert req.tool_choice == ToolChoice("required")
    assert req.max_tokens == 20
    # include_usage only means something for a stream.
    assert not req.stream and not req.include_usage
    tool = decode_request(body(tools=[{"type": "function", "function": {"name": "noargs"}}])).tools
    assert tool == [Tool("noargs", None, {"type": "object", "properties": {}})]


# -- encoding to an upstream -----------------------------------------------------------------------
def test_encode_request_maps_ir_from_other_protocols() -> None:
    req = ChatRequest(
        model="claude-alias",
        system=[TextPart("be brief"), TextPart("cite sources")],
        messages=[
            Message("user", [TextPart("look"), ImagePart(data="QUJD", media_type="image/gif")]),
            Message(
                "assistant",
                [
                    ThinkingPart("hmm", signature="sig"),
                    TextPart("calling"),
                    ToolCallPart("toolu_1", "shot", '{"n":1}'),
                ],
            ),
            Message(
                "user",
                [
                    ToolResultPart(
                        "toolu_1",
                        [TextPart("done"), ImagePart(url="https://x/y.png")],
                        is_error=True,
                    ),
                    TextPart("what do you see?"),
                ],
            ),
        ],
        max_tokens=100,
        # Another protocol's extras must not reach OpenAI (no codec marker on this request).
        extra={"top_k": 5, "service_tier": "standard_only"},
        thinking={"type": "enabled", "budget_tokens": 1000},
    )
    out = encode_request(req, "gpt-4o", stream=True)
    assert out == {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "be brief"},
                    {"type": "text", "text": "cite sources"},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/gif;base64,QUJD"}},
                ],
            },
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "shot", "arguments": '{"n":1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "done"},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    {"type": "text", "text": "what do you see?"},
                ],
            },
        ],
        "max_tokens": 100,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_stream_always_asks_for_usage_and_flags_never_leak() -> None:
    req = decode_request(body(stream=True, max_completion_tokens=5, seed=1))
    out = encode_request(req, "gpt-5", stream=True)
    assert out["stream_options"] == {"include_usage": True}
    assert out["max_completion_tokens"] == 5 and "max_tokens" not in out
    assert out["seed"] == 1
    assert FLAGS_KEY not in out
    plain = encode_request(req, "gpt-5", stream=False)
    assert "stream" not in plain and "stream_options" not in plain


def test_tool_choice_and_assistant_without_content_encode() -> None:
    req = ChatRequest(
        model="m",
        messages=[Message("assistant", []), Message("user", [])],
        tool_choice=ToolChoice("tool", "f"),
        tools=[Tool("f", "does f", {"type": "object"})],
    )
    out = encode_request(req, "m", stream=False)
    assert out["messages"] == [
        {"role": "assistant", "content": ""},
        {"role": "user", "content": ""},
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}},
        }
    ]


# -- token estimate --------------------------------------------------------------------------------
def test_estimate_tokens_is_about_four_chars_per_token() -> None:
    short = decode_request(body())
    long = decode_request(body(messages=[{"role": "user", "content": "word " * 400}]))
    assert 0 < estimate_tokens(short) < 20
    # 2000 characters -> ~500 tokens plus a little framing.
    assert 500 <= estimate_tokens(long) <= 520
    image = decode_request(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
                }
            ]
        )
    )
    assert estimate_tokens(image) > 700
