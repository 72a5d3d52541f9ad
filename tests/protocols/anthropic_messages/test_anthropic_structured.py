"""OpenAI ``response_format`` -> Anthropic structured output (issue 14 item 3): native
``output_config.format`` where the model has it, else a forced tool whose call comes back as the
answer's JSON text (plain and streamed); what cannot be forced is a 400, never a prompt."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ChatRequest,
    Message,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
)
from backend.ir.errors import InvalidRequest
from backend.ir.stream import BlockStart, StreamEnd, TextDelta, ToolArgsDelta
from backend.protocols.anthropic_messages import StreamDecoder, decode_response, encode_request
from backend.protocols.model_rules import refusal, structured_tool
from backend.protocols.sse import SSEEvent

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
FMT = {"type": "json_schema", "json_schema": {"name": "Person", "schema": SCHEMA, "strict": True}}
OLD = "claude-3-5-haiku-latest"
NEW = "claude-sonnet-4-5"


def req(**kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message("user", [TextPart("q")])], **kw)


def test_native_model_gets_output_config_format_and_no_prompt() -> None:
    body = encode_request(req(response_format=FMT), NEW, stream=False)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "system" not in body and "tools" not in body
    assert structured_tool(req(response_format=FMT), "anthropic", NEW) is None


def test_native_format_joins_the_clients_output_config() -> None:
    r = req(response_format=FMT)
    r.protocol = "anthropic"
    r.extra["output_config"] = {"effort": "low"}
    body = encode_request(r, NEW, stream=False)
    assert body["output_config"] == {
        "effort": "low",
        "format": {"type": "json_schema", "schema": SCHEMA},
    }


@pytest.mark.parametrize("model", [OLD, "claude-sonnet-4-20250514", "claude-opus-4-0"])
def test_older_models_get_a_forced_tool_named_after_the_schema(model: str) -> None:
    body = encode_request(req(response_format=FMT), model, stream=True)
    assert body["tools"] == [
        {
            "name": "Person",
            "description": "Give the answer as this tool's input.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {
        "type": "tool",
        "name": "Person",
        "disable_parallel_tool_use": True,
    }
    assert "output_config" not in body and "system" not in body


def test_json_object_is_a_forced_object_tool_on_every_model() -> None:
    body = encode_request(req(response_format={"type": "json_object"}), NEW, stream=False)
    assert body["tools"][0]["name"] == "json_object"
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    assert body["tool_choice"]["name"] == "json_object"


def test_client_tools_stay_callable_next_to_the_forced_tool() -> None:
    tool = Tool("lookup", None, {"type": "object", "properties": {}})
    body = encode_request(req(response_format=FMT, tools=[tool]), OLD, stream=False)
    assert [t["name"] for t in body["tools"]] == ["lookup", "Person"]
    assert body["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking"),
        (
            {
                "tools": [Tool("lookup", None, {"type": "object"})],
                "tool_choice": ToolChoice("none"),
            },
            "tool_choice 'none'",
        ),
        ({"tools": [Tool("Person", None, {"type": "object"})]}, "a client tool"),
    ],
)
def test_what_cannot_be_forced_is_refused_naming_response_format(
    extra: dict[str, Any], words: str
) -> None:
    r = req(response_format=FMT, **extra)
    problem = refusal(r, "anthropic", "anthropic", OLD)
    assert isinstance(problem, InvalidRequest)
    assert problem.param == "response_format" and words in problem.message
    assert OLD in problem.message
    with pytest.raises(InvalidRequest):
        encode_request(r, OLD, stream=False)
    # The same request on a model with native structured output is fine.
    assert refusal(r, "anthropic", "anthropic", NEW) is None


def test_forced_tool_call_comes_back_as_json_text_and_stop() -> None:
    body = {
        "id": "msg_1",
        "model": OLD,
        "content": [{"type": "tool_use", "id": "t1", "name": "Person", "input": {"name": "Ada"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    resp = decode_response(body, output_tool="Person")
    assert resp.content == [TextPart('{"name":"Ada"}')] and resp.finish_reason == "stop"
    # Without the forced tool it is an ordinary call.
    plain = decode_response(body)
    assert isinstance(plain.content[0], ToolCallPart) and plain.finish_reason == "tool_calls"


def _ev(data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(data["type"], orjson.dumps(data).decode())


def test_forced_tool_call_streams_as_text() -> None:
    frames = [
        {"type": "message_start", "message": {"id": "m", "model": OLD, "usage": {}}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t1", "name": "Person", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"name": "A'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": 'da"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}},
        {"type": "message_stop"},
    ]
    dec = StreamDecoder(output_tool="Person")
    events = [e for f in frames for e in dec.feed(_ev(f))]
    assert BlockStart(0, "text") in events
    assert not any(isinstance(e, ToolArgsDelta) for e in events)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert orjson.loads(text) == {"name": "Ada"}
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
