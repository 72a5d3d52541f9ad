"""Strict type checks for decoding client JSON, raising ``InvalidRequest`` in OpenAI's wording.

OpenAI answers a malformed body with a 400 naming the offending parameter
(``Invalid type for 'messages[0].content': expected ...``); clients and SDKs surface that text,
so the gateway uses the same shape.
"""

from __future__ import annotations

from typing import Any, NoReturn

from backend.ir.errors import InvalidRequest

#: JSON integers past 64 bits: no provider takes them and orjson cannot write them upstream.
_INT_LIMIT = 2**63


def fail(message: str, param: str | None) -> NoReturn:
    raise InvalidRequest(message, param=param)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def bad_type(param: str, expected: str, value: Any) -> NoReturn:
    fail(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param,
    )


def need(obj: dict[str, Any], key: str, param: str) -> Any:
    if key not in obj or obj[key] is None:
        fail(f"Missing required parameter: '{param}'.", param)
    return obj[key]


def as_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        bad_type(param, "an object", value)
    return value


def as_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        bad_type(param, "an array", value)
    return value


def as_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        bad_type(param, "a string", value)
    return value


def opt_str(obj: dict[str, Any], key: str, param: str | None = None) -> str | None:
    value = obj.get(key)
    return None if value is None else as_str(value, param or key)


def opt_bool(obj: dict[str, Any], key: str, param: str | None = None) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        bad_type(param or key, "a boolean", value)
    return value


def opt_int(obj: dict[str, Any], key: str, *, minimum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # JSON has one number type; 100.0 is a fine integer.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            bad_type(key, "an integer", value)
    if minimum is not None and value < minimum:
        fail(f"Invalid '{key}': integer below minimum value {minimum}, got {value}.", key)
    if not -_INT_LIMIT <= value < _INT_LIMIT:
        fail(f"Invalid '{key}': integer too large.", key)
    return value


def opt_number(
    obj: dict[str, Any], key: str, *, low: float | None = None, high: float | None = None
) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        bad_type(key, "a number", value)
    if (low is not None and value < low) or (high is not None and value > high):
        fail(f"Invalid '{key}': {value} is out of range [{low}, {high}].", key)
    return value
