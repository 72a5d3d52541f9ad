"""IR conversations shared by the Gemini golden and SDK-faithfulness tests."""

from __future__ import annotations

from backend.ir.chat import (
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.protocols.gemini.toolids import make_tool_call_id

RID = "Z9KXaLr6Ip2Dz7IPu7SWmQk"
SIGNATURE = "CiQBcsjafE3+9hPq/YbkDRp2Y0sb4Jx0f1Qw+/8="
PARIS_ID = make_tool_call_id(RID, 0, "get_weather", SIGNATURE)
LONDON_ID = make_tool_call_id(RID, 1, "get_weather")

WEATHER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "city": {"type": "string", "description": "City name", "minLength": 1},
        "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", None]},
        "days": {"type": "integer", "enum": [1, 3, 7], "exclusiveMinimum": 0},
    },
    "required": ["city", "unit"],
}


def weather_tool() -> Tool:
    return Tool("get_weather", "Current weather for a city", WEATHER_SCHEMA)


def tool_round_trip() -> ChatRequest:
    """Two parallel calls answered (one failed), a mid-conversation system message, images."""
    return ChatRequest(
        model="gemini-3-pro-preview",
        system=[TextPart("You are a weather bot.")],
        messages=[
            Message(
                "user",
                [
                    TextPart("Weather in Paris and London?"),
                    ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                ],
            ),
            Message(
                "assistant",
                [
                    ThinkingPart("I should call the tool twice.", signature="anthropic-only"),
                    TextPart("Let me check."),
                    ToolCallPart(PARIS_ID, "get_weather", '{"city":"Paris","unit":"celsius"}'),
                    ToolCallPart(LONDON_ID, "get_weather", '{"city": "London"}'),
                ],
            ),
            Message("user", [ToolResultPart(PARIS_ID, [TextPart("18C, sunny")])]),
            Message(
                "user", [ToolResultPart(LONDON_ID, [TextPart("station offline")], is_error=True)]
            ),
            Message("system", [TextPart("Answer in French.")]),
            Message(
                "user",
                [TextPart("And this photo?"), ImagePart(url="https://example.com/cat.png?s=1")],
            ),
            Message("assistant", [TextPart("")]),
            Message("user", [ImagePart(url="data:image/jpeg;base64,/9j/4AAQ")]),
        ],
        tools=[weather_tool()],
        tool_choice=ToolChoice("tool", "get_weather"),
        max_tokens=256,
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
    )


def history_from_other_provider() -> ChatRequest:
    """A tool call made by another provider: its id carries no thought signature."""
    return ChatRequest(
        model="gemini-3-pro-preview",
        messages=[
            Message("user", [TextPart("Weather in Oslo?")]),
            Message("assistant", [ToolCallPart("call_abc123", "get_weather", '{"city":"Oslo"}')]),
            Message("user", [ToolResultPart("call_abc123", [TextPart("-3C")])]),
        ],
        tools=[Tool("get_weather", None, {"type": "object", "properties": {}})],
        tool_choice=ToolChoice("auto"),
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "report",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"summary": {"type": "string"}, "temp_c": {"type": "number"}},
                    "required": ["summary", "temp_c"],
                    "additionalProperties": False,
                },
            },
        },
    )
