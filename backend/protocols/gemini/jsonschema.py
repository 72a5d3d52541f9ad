"""Gemini ``Schema`` -> JSON Schema, for a Gemini client's tools and response schema.

A Gemini client writes tool ``parameters`` and ``responseSchema`` in Gemini's own schema type (the
OpenAPI 3.0 subset: upper-case ``type``, ``nullable``, ``example``, ``propertyOrdering``); the IR
and every other provider speak JSON Schema. The mapping, field by field:

- ``type``: ``STRING``/``NUMBER``/``INTEGER``/``BOOLEAN``/``ARRAY``/``OBJECT``/``NULL`` (any case)
  becomes the lower-case JSON type; ``TYPE_UNSPECIFIED`` is no ``type``.
- ``nullable: true`` becomes ``"null"`` added to ``type`` (or a ``{"type": "null"}`` branch of
  ``anyOf`` when the node has no single type).
- ``example`` becomes ``examples: [example]``; ``propertyOrdering`` is dropped (JSON Schema keeps
  the declared order of ``properties``, which is what it asks for).
- ``properties``, ``items``, ``anyOf`` recurse; every other Gemini key has the same name and
  meaning in JSON Schema (``description``, ``title``, ``enum``, ``format``, ``required``,
  ``minItems``/``maxItems``, ``minLength``/``maxLength``, ``pattern``, ``minimum``/``maximum``,
  ``minProperties``/``maxProperties``, ``default``) and is copied.

Going back to Gemini (``schema.to_gemini_schema``) gives the same schema again, except
``propertyOrdering``, which that direction recomputes from the declared order for response
schemas.
"""

from __future__ import annotations

from typing import Any

from backend.ir.errors import InvalidRequest
from backend.protocols.gemini.wire import camel

_TYPES = {
    "STRING": "string",
    "NUMBER": "number",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "ARRAY": "array",
    "OBJECT": "object",
    "NULL": "null",
}
_COPIED = frozenset(
    {
        "description",
        "title",
        "enum",
        "format",
        "required",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "minProperties",
        "maxProperties",
        "default",
    }
)
_KNOWN = _COPIED | {"type", "nullable", "example", "propertyOrdering", "properties", "items"}
_KNOWN |= {"anyOf"}
#: Deeper than this is refused: no real schema nests so far, and recursion must stay bounded.
MAX_DEPTH = 64


def from_gemini_schema(schema: Any, path: str) -> dict[str, Any]:
    """Convert one Gemini schema; ``path`` names it in errors (``tools[0]...parameters``)."""
    return _node(schema, path, 0)


def _node(raw: Any, path: str, depth: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"Invalid value at '{path}': a schema must be an object.", param=path)
    if depth > MAX_DEPTH:
        raise InvalidRequest(
            f"Invalid value at '{path}': schema nested deeper than {MAX_DEPTH} levels.", param=path
        )
    src = {camel(str(k)): v for k, v in raw.items()}
    unknown = sorted(k for k in src if k not in _KNOWN)
    if unknown:
        raise InvalidRequest(
            f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at '{path}': "
            "Cannot find field.",
            param=f"{path}.{unknown[0]}",
        )
    out: dict[str, Any] = {}
    json_type = _type(src.get("type"), path)
    out.update((k, v) for k, v in src.items() if k in _COPIED and v is not None)
    if "example" in src:
        out["examples"] = [src["example"]]
    props = src.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise InvalidRequest(
                f"Invalid value at '{path}.properties': expected an object.",
                param=f"{path}.properties",
            )
        out["properties"] = {
            str(name): _node(sub, f"{path}.properties.{name}", depth + 1)
            for name, sub in props.items()
        }
    if src.get("items") is not None:
        out["items"] = _node(src["items"], f"{path}.items", depth + 1)
    any_of = src.get("anyOf")
    if any_of is not None:
        if not isinstance(any_of, list):
            raise InvalidRequest(
                f"Invalid value at '{path}.anyOf': expected a list.", param=f"{path}.anyOf"
            )
        out["anyOf"] = [_node(b, f"{path}.anyOf[{i}]", depth + 1) for i, b in enumerate(any_of)]
    nullable = src.get("nullable") is True
    if json_type is not None:
        out["type"] = [json_type, "null"] if nullable and json_type != "null" else json_type
    elif nullable:
        if "anyOf" in out:
            out["anyOf"].append({"type": "null"})
        else:
            out["nullable"] = True  # nothing to attach it to; keep the word as given
    if nullable and isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _type(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(
            f"Invalid value at '{path}.type': expected a type name.", param=f"{path}.type"
        )
    name = value.upper()
    if name == "TYPE_UNSPECIFIED":
        return None
    if name not in _TYPES:
        raise InvalidRequest(
            f"Invalid value at '{path}.type' ({value!r}): expected one of {', '.join(_TYPES)}.",
            param=f"{path}.type",
        )
    return _TYPES[name]
