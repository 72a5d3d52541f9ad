"""Small helpers shared by the Gemini door's decoders: field names, paths and Google's wording.

Google's REST API parses requests as proto JSON, which accepts a field under its lowerCamel name
and its snake_case name alike (``systemInstruction`` and ``system_instruction``); ``fields``
gives every known message one spelling (camel) so the decoders only look up one. Client data
inside a message (function ``args``, a ``response`` object, schema property names) is never
renamed.
"""

from __future__ import annotations

from typing import Any

from backend.ir.errors import InvalidRequest

#: ``ChatRequest.protocol`` / ``Opaque.protocol`` of this wire format.
PROTOCOL = "gemini"
#: ``extra`` key (of a part or message) holding Gemini wire keys that mean nothing to another
#: provider: a Gemini encoder writes them like any key, other providers never refuse them.
SOFT = "_soft"
#: Bookkeeping the door leaves in ``extra`` for a Gemini upstream (never sent as fields):
CALL_ID = "_call_id"  # a part's call id is the client's own: it goes back with the call/response
RESPONSE_JSON = "_response_json"  # a tool result's text is the JSON of its response object
JSON_SCHEMA = "_json_schema"  # a tool's parameters came as parametersJsonSchema
#: ``ChatRequest.extra`` keys of ``generationConfig`` fields: ``"generationConfig.topK"``.
GEN_PREFIX = "generationConfig."


def wire_keys(extra: dict[str, Any] | None, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The Gemini keys an ``extra`` holds (soft ones included), bookkeeping left out."""
    if not extra:
        return {}
    out = {k: v for k, v in extra.items() if not k.startswith("_") and k not in skip}
    soft = extra.get(SOFT)
    if isinstance(soft, dict):
        out.update((k, v) for k, v in soft.items() if k not in skip)
    return out


def split_soft(keys: dict[str, Any], soft_names: frozenset[str]) -> dict[str, Any] | None:
    """``keys`` as an ``extra``: the soft ones moved under ``SOFT``; None when empty."""
    if not keys:
        return None
    out = {k: v for k, v in keys.items() if k not in soft_names}
    soft = {k: v for k, v in keys.items() if k in soft_names}
    if soft:
        out[SOFT] = soft
    return out


def camel(name: str) -> str:
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def fields(obj: Any, path: str) -> dict[str, Any]:
    """``obj``'s keys in camelCase (a JSON object is required); a key given twice is a 400."""
    if not isinstance(obj, dict):
        raise invalid(path, "expected a JSON object")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = camel(str(key))
        if name in out:
            raise invalid(path, f'field "{name}" is given twice (as {key!r} too)')
        out[name] = value
    return out


def invalid(path: str, problem: str) -> InvalidRequest:
    """A 400 in the words Google uses for a bad value: ``Invalid value at 'path'``."""
    where = f" at '{path}'" if path else ""
    return InvalidRequest(f"Invalid value{where}: {problem}.", param=path or None)


def missing(path: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"* {path}: {what} is not specified", param=path)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
