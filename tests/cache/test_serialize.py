"""Dict round trips of the IR dataclasses (what caches store)."""

from __future__ import annotations

import orjson
import pytest

from backend.cache.serialize import (
    part_from_dict,
    request_from_dict,
    request_to_dict,
    response_from_dict,
    response_to_dict,
)
from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)

RESPONSE = ChatResponse(
    id="msg_1",
    model="claude-sonnet-4",
    content=[
        ThinkingPart(thinking="let me think", signature="sig=="),
        ThinkingPart(redacted_data="opaque"),
        TextPart("Hello, wörld ✓"),
        ToolCallPart(id="call_1", name="get_weather", arguments='{"city": "Paris"}'),
    ],
    finish_reason="tool_calls",
    usage=Usage(input_tokens=12, output_tokens=34, cached_tokens=5, cache_write_tokens=2),
    stop_sequence=None,
    created=1_700_000_000,
    # An OpenAI n=2 answer with logprobs: the extra choice and the logprobs, upstream JSON.
    extra={
        "openai_logprobs": {"content": [{"token": "Hi", "logprob": -0.5, "top_logprobs": []}]},
        "openai_choices": [
            {
                "index": 1,
                "message": {"role": "assistant", "content": "Second", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
    },
)

REQUEST = ChatRequest(
    model="gpt-4o",
    system=[TextPart("be brief")],
    messages=[
        Message("user", [TextPart("look"), ImagePart(data="aGk=", media_type="image/png")]),
        Message("assistant", [ToolCallPart("c1", "f", "{}")], name="bot"),
        Message(
            "user",
            [ToolResultPart("c1", [TextPart("42"), ImagePart(url="https://x/y.png")], True)],
        ),
    ],
    tools=[Tool("f", "does f", {"type": "object", "properties": {}})],
    tool_choice=ToolChoice("tool", "f"),
    parallel_tool_calls=False,
    max_tokens=100,
    temperature=0.2,
    top_p=0.9,
    stop=["END"],
    stream=True,
    include_usage=True,
    response_format={"type": "json_object"},
    user="u-1",
    thinking={"type": "enabled", "budget_tokens": 1024},
    metadata={"k": "v"},
    extra={"seed": 7},
    forward_headers={"anthropic-beta": "x"},
)


def test_response_round_trip_through_json() -> None:
    data = orjson.loads(orjson.dumps(response_to_dict(RESPONSE)))
    assert response_from_dict(data) == RESPONSE


def test_request_round_trip_through_json() -> None:
    data = orjson.loads(orjson.dumps(request_to_dict(REQUEST)))
    assert request_from_dict(data) == REQUEST


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    data = response_to_dict(RESPONSE) | {"future_field": 1}
    data["usage"]["audio_tokens"] = 3
    assert response_from_dict(data) == RESPONSE


def test_an_entry_without_extra_loads_with_none() -> None:
    data = response_to_dict(RESPONSE)
    del data["extra"]
    assert response_from_dict(data).extra == {}


def test_unknown_part_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown part type"):
        part_from_dict({"type": "hologram"})
