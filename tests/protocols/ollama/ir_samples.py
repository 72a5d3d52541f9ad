"""IR conversations shared by the Ollama golden and SDK-faithfulness tests."""

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

WEATHER = Tool(
    "get_weather",
    "Current weather for a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
TIME = Tool("get_time", None, {})


def tool_round_trip() -> ChatRequest:
    return ChatRequest(
        model="qwen3",
        system=[TextPart("You are a weather bot."), TextPart("Be brief.")],
        messages=[
            Message(
                "user",
                [
                    TextPart("Weather in Paris and London? "),
                    ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                    ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
                ],
            ),
            Message(
                "assistant",
                [
                    ThinkingPart("two calls", signature="anthropic-only"),
                    TextPart("Let me check."),
                    ToolCallPart("call_a", "get_weather", '{"city":"Paris","unit":"celsius"}'),
                    ToolCallPart("call_b", "get_weather", '{"city": "London"}'),
                ],
            ),
            Message(
                "user",
                [
                    ToolResultPart("call_a", [TextPart("18C, sunny")]),
                    ToolResultPart("call_b", [TextPart("station offline")], is_error=True),
                    TextPart("Thanks!"),
                ],
            ),
            Message("system", [TextPart("Answer in French.")]),
            Message("user", [TextPart("And tomorrow?")]),
        ],
        tools=[WEATHER, TIME],
        tool_choice=ToolChoice("auto"),
        max_tokens=256,
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "report",
                "schema": {"type": "object", "properties": {"summary": {"type": "string"}}},
            },
        },
    )
