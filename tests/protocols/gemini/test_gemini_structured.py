"""Structured output to Gemini: a schema its responseSchema cannot enforce is a 400 naming what
it cannot express (issue 14 item 3), instead of a rewritten schema that lets more through."""

from __future__ import annotations

from typing import Any

import pytest

from backend.ir.chat import ChatRequest, Message, TextPart
from backend.ir.errors import InvalidRequest
from backend.protocols.gemini import encode_request
from backend.protocols.model_rules import refusal


def req(schema: dict[str, Any]) -> ChatRequest:
    fmt = {"type": "json_schema", "json_schema": {"name": "Out", "schema": schema}}
    return ChatRequest(model="m", messages=[Message("user", [TextPart("q")])], response_format=fmt)


NODE = {
    "type": "object",
    "properties": {"next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
}


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        (
            {
                "type": "object",
                "properties": {"n": {"$ref": "#/$defs/Node"}},
                "$defs": {"Node": NODE},
            },
            "recursive reference '#/$defs/Node'",
        ),
        ({"type": "object", "properties": {"n": {"enum": [1, 2]}}}, "non-string enum"),
        ({"type": "object", "properties": {"n": {"const": 3}}}, "non-string enum or const"),
        (
            {
                "type": "object",
                "properties": {
                    "m": {"type": "object", "additionalProperties": {"type": "integer"}}
                },
            },
            "a map ('additionalProperties' with a schema) at #/properties/m",
        ),
        ({"type": "array", "prefixItems": [{"type": "string"}]}, "tuple items"),
    ],
)
def test_schemas_gemini_cannot_enforce_are_refused(schema: dict[str, Any], words: str) -> None:
    problem = refusal(req(schema), "gemini", "gemini", "gemini-2.5-flash")
    assert isinstance(problem, InvalidRequest) and problem.param == "response_format"
    assert words in problem.message and "gemini-2.5-flash" in problem.message
    with pytest.raises(InvalidRequest):
        encode_request(req(schema), "gemini-2.5-flash", stream=False)


def test_pydantic_style_schema_is_translated() -> None:
    schema = {
        "type": "object",
        "properties": {"kind": {"enum": ["a", "b"]}, "sub": {"$ref": "#/$defs/Sub"}},
        "required": ["kind", "sub"],
        "additionalProperties": False,
        "$defs": {"Sub": {"type": "object", "properties": {"x": {"type": "integer"}}}},
    }
    assert refusal(req(schema), "gemini", "gemini", "gemini-2.5-flash") is None
    gen = encode_request(req(schema), "gemini-2.5-flash", stream=False)["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert gen["responseSchema"]["properties"]["sub"]["properties"]["x"] == {"type": "INTEGER"}
