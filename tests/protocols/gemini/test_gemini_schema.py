"""JSON Schema -> Gemini Schema rewriting (what pydantic and zod produce, what Gemini accepts)."""

from __future__ import annotations

from typing import Any

import orjson

from backend.protocols.gemini.schema import to_gemini_schema

#: Keys the Gemini Developer API's Schema type knows; anything else is a 400 upstream.
GEMINI_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip


def keys_everywhere(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            if key == "properties":
                for sub in value.values():
                    found |= keys_everywhere(sub)
            elif key in ("items",):
                found |= keys_everywhere(value)
            elif key == "anyOf":
                for sub in value:
                    found |= keys_everywhere(sub)
    return found


PYDANTIC = {
    "$defs": {
        "Address": {
            "properties": {
                "street": {"title": "Street", "type": "string"},
                "zip": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            },
            "required": ["street"],
            "title": "Address",
            "type": "object",
            "additionalProperties": False,
        },
        "Node": {
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "type": "object",
        },
    },
    "properties": {
        "home": {"$ref": "#/$defs/Address", "description": "Where they live"},
        "work": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]},
        "kind": {"const": "person", "type": "string"},
        "email": {"type": "string", "format": "email"},
        "born": {"type": "string", "format": "date-time"},
        "score": {"type": "number", "format": "double", "exclusiveMaximum": 10},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "tree": {"$ref": "#/$defs/Node"},
        "mixed": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "either": {"type": ["string", "integer"]},
        "merged": {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
            ]
        },
        "free": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["home", "kind", "missing"],
    "title": "Person",
    "type": "object",
}


def test_output_uses_only_gemini_keys() -> None:
    out = to_gemini_schema(PYDANTIC)
    assert keys_everywhere(out) <= GEMINI_KEYS, keys_everywhere(out) - GEMINI_KEYS
    raw = orjson.dumps(out)
    assert b"$ref" not in raw and b"$defs" not in raw and b"additionalProperties" not in raw


def test_refs_inlined_with_sibling_description() -> None:
    home = to_gemini_schema(PYDANTIC)["properties"]["home"]
    assert home["type"] == "OBJECT"
    assert home["description"] == "Where they live"
    assert home["required"] == ["street"]
    # A null default says nothing Gemini can use; nullable carries the meaning.
    assert home["properties"]["zip"] == {"type": "STRING", "nullable": True}


def test_optional_ref_becomes_nullable_object() -> None:
    work = to_gemini_schema(PYDANTIC)["properties"]["work"]
    assert work["type"] == "OBJECT" and work["nullable"] is True
    assert set(work["properties"]) == {"street", "zip"}


def test_recursive_ref_is_cut_off() -> None:
    tree = to_gemini_schema(PYDANTIC)["properties"]["tree"]
    child = tree["properties"]["children"]["items"]
    assert child == {"type": "OBJECT"}


def test_const_formats_and_required() -> None:
    out = to_gemini_schema(PYDANTIC)
    props = out["properties"]
    assert props["kind"] == {"type": "STRING", "enum": ["person"]}
    assert "format" not in props["email"]
    assert props["born"]["format"] == "date-time"
    assert props["score"] == {"type": "NUMBER", "format": "double"}
    assert out["required"] == ["home", "kind"]  # "missing" is not a property


def test_union_shapes() -> None:
    props = to_gemini_schema(PYDANTIC)["properties"]
    assert props["mixed"] == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    assert props["either"] == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    merged = props["merged"]
    assert set(merged["properties"]) == {"a", "b"} and merged["required"] == ["a", "b"]
    assert props["free"] == {"type": "OBJECT"}


def test_property_ordering_only_when_asked() -> None:
    schema = {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "string"}}}
    assert "propertyOrdering" not in to_gemini_schema(schema)
    assert to_gemini_schema(schema, order_properties=True)["propertyOrdering"] == ["b", "a"]


def test_non_string_enum_moves_to_description() -> None:
    out = to_gemini_schema({"type": "integer", "enum": [1, 2], "description": "Level"})
    assert out == {"type": "INTEGER", "description": "Level (Allowed values: 1, 2)"}


def test_type_inferred_and_depth_bounded() -> None:
    assert to_gemini_schema({"enum": ["a", "b"]}) == {"type": "STRING", "enum": ["a", "b"]}
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(100):
        deep = {"type": "object", "properties": {"x": deep}}
    out = to_gemini_schema(deep)
    assert orjson.dumps(out).count(b"properties") <= 42
