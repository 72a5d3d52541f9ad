"""JSON Schema -> Gemini ``Schema`` (the OpenAPI 3.0 subset the Gemini Developer API accepts).

Tool ``parameters`` and ``responseSchema`` are sent as Gemini's own schema type, which rejects
keys it does not know (``additionalProperties``, ``$schema``, ``$defs``/``$ref``, ``const``...)
with a 400. Clients write ordinary JSON Schema (pydantic, zod), so it is rewritten here, the way
the official google-genai SDK does for the Developer API:

- ``$ref`` into ``$defs``/``definitions`` is inlined; a recursive reference is cut off at the
  second visit and becomes a plain ``OBJECT`` (Gemini has no references at all).
- ``type: [T, "null"]`` and ``anyOf: [..., {"type": "null"}]`` become ``nullable: true``; with
  several non-null types only ``anyOf`` can express it, so the branches are kept there.
- ``oneOf`` becomes ``anyOf``; ``allOf`` branches are merged into the node.
- ``const`` becomes a one-value ``enum``; Gemini enums are strings only, so a non-string enum is
  dropped and its values are appended to ``description`` instead.
- ``format`` survives only where Gemini supports it (``enum``/``date-time`` on strings,
  ``int32``/``int64``, ``float``/``double``).
- ``required`` keeps only names present in ``properties``; an empty ``properties`` is removed.
- Every other key (``additionalProperties``, ``$schema``, ``$id``, ``examples``,
  ``exclusiveMinimum``, ``uniqueItems``, ``patternProperties``...) is dropped.
"""

from __future__ import annotations

from typing import Any

_KEPT = frozenset(
    {
        "description",
        "title",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "default",
        "minimum",
        "maximum",
    }
)
_FORMATS = {
    "STRING": {"enum", "date-time"},
    "INTEGER": {"int32", "int64"},
    "NUMBER": {"float", "double"},
}
_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
#: A schema nested deeper than this is cut (protects against pathological inputs).
_MAX_DEPTH = 40


def to_gemini_schema(schema: dict[str, Any], *, order_properties: bool = False) -> dict[str, Any]:
    """Rewrite one JSON Schema document; ``order_properties`` adds ``propertyOrdering``.

    Gemini answers structured output with keys in alphabetical order unless told otherwise, so
    response schemas ask for the order the client declared.
    """
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    return _Converter(defs, order_properties).node(schema, frozenset(), 0)


class _Converter:
    __slots__ = ("defs", "order")

    def __init__(self, defs: dict[str, Any], order: bool) -> None:
        self.defs = defs
        self.order = order

    def node(self, raw: Any, seen: frozenset[str], depth: int) -> dict[str, Any]:
        if not isinstance(raw, dict) or depth > _MAX_DEPTH:
            return {"type": "OBJECT"}
        src = dict(raw)
        ref = src.pop("$ref", None)
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            target = self.defs.get(name)
            if name in seen or not isinstance(target, dict):
                return {"type": "OBJECT", **_description(src)}
            # Siblings of $ref (description, nullable) refine the referenced schema.
            merged = {**target, **src}
            return self.node(merged, seen | {name}, depth + 1)
        for sub in src.pop("allOf", None) or []:
            if isinstance(sub, dict):
                src = _merge(src, self._resolve(sub))
        if "oneOf" in src and "anyOf" not in src:
            src["anyOf"] = src.pop("oneOf")
        out: dict[str, Any] = {}
        nullable = bool(src.get("nullable"))
        types = src.get("type")
        type_list = [types] if isinstance(types, str) else list(types or [])
        if "null" in type_list:
            nullable = True
            type_list = [t for t in type_list if t != "null"]
        any_of = src.get("anyOf")
        if isinstance(any_of, list):
            branches = [b for b in any_of if isinstance(b, dict)]
            if any(b.get("type") == "null" for b in branches):
                nullable = True
                branches = [b for b in branches if b.get("type") != "null"]
            if len(branches) == 1 and not type_list:
                inner = self.node(branches[0], seen, depth + 1)
                rest = {k: v for k, v in src.items() if k in ("description", "title")}
                out = {**inner, **_clean_scalars(rest)}
                if nullable:
                    out["nullable"] = True
                return out
            if branches:
                out["anyOf"] = [self.node(b, seen, depth + 1) for b in branches]
        if len(type_list) > 1:
            out["anyOf"] = [
                self.node({**src, "type": t, "anyOf": None}, seen, depth + 1)
                for t in type_list
                if t in _TYPES
            ]
            type_list = []
        gtype = type_list[0].upper() if type_list and type_list[0] in _TYPES else None
        if gtype is None and "anyOf" not in out:
            gtype = _infer_type(src)
        if gtype is not None:
            out["type"] = gtype
        out.update(_clean_scalars(src))
        if "const" in src:
            out["enum"] = [src["const"]]
        if isinstance(out.get("enum"), list) and None in out["enum"]:
            # A null member is what ``nullable`` says; Gemini enums hold strings only.
            out["enum"] = [v for v in out["enum"] if v is not None]
            nullable = True
        _fix_enum(out)
        fmt = src.get("format")
        if isinstance(fmt, str) and gtype is not None and fmt in _FORMATS.get(gtype, ()):
            out["format"] = fmt
        if nullable:
            out["nullable"] = True
        else:
            out.pop("nullable", None)
        props = src.get("properties")
        if isinstance(props, dict) and props:
            out["properties"] = {str(k): self.node(v, seen, depth + 1) for k, v in props.items()}
            required = [r for r in src.get("required") or [] if r in props]
            if required:
                out["required"] = required
            if self.order and len(props) > 1:
                out["propertyOrdering"] = list(out["properties"])
        items = src.get("items")
        if isinstance(items, list):  # tuple validation: Gemini has one item schema
            items = items[0] if items else None
        if isinstance(items, dict):
            out["items"] = self.node(items, seen, depth + 1)
        elif gtype == "ARRAY":
            prefix = src.get("prefixItems")
            if isinstance(prefix, list) and prefix and isinstance(prefix[0], dict):
                out["items"] = self.node(prefix[0], seen, depth + 1)
        return out

    def _resolve(self, sub: dict[str, Any]) -> dict[str, Any]:
        ref = sub.get("$ref")
        if isinstance(ref, str):
            target = self.defs.get(ref.rsplit("/", 1)[-1])
            if isinstance(target, dict):
                return {**target, **{k: v for k, v in sub.items() if k != "$ref"}}
        return sub


def _clean_scalars(src: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in src.items() if k in _KEPT and v is not None}


def _description(src: dict[str, Any]) -> dict[str, Any]:
    desc = src.get("description")
    return {"description": desc} if isinstance(desc, str) else {}


def _infer_type(src: dict[str, Any]) -> str | None:
    if isinstance(src.get("properties"), dict):
        return "OBJECT"
    if "items" in src or "prefixItems" in src:
        return "ARRAY"
    values = src.get("enum") or ([src["const"]] if "const" in src else [])
    if values and all(isinstance(v, str) for v in values):
        return "STRING"
    return None


def _fix_enum(out: dict[str, Any]) -> None:
    values = out.get("enum")
    if values is None:
        return
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        if out.get("type") in (None, "STRING"):
            out["type"] = "STRING"
            return
    del out["enum"]
    if isinstance(values, list) and values:
        note = "Allowed values: " + ", ".join(str(v) for v in values)
        desc = out.get("description")
        out["description"] = f"{desc} ({note})" if desc else note


def _merge(parent: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    """Merge an ``allOf`` branch into its parent: the parent's own keys win, properties and
    ``required`` are unioned in declaration order."""
    out = {**branch, **parent}
    props = {**(parent.get("properties") or {}), **(branch.get("properties") or {})}
    if props:
        out["properties"] = props
    req = [*(parent.get("required") or []), *(branch.get("required") or [])]
    if req:
        out["required"] = list(dict.fromkeys(req))
    return out
