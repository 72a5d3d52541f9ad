"""Hypothesis strategies for proxy request bodies: valid, almost valid, and hostile.

Three layers, each drawn by ``request_bytes(protocol)``:

1. a *valid* body of the protocol (OpenAI chat completions or Anthropic messages), with text,
   images, tool definitions, tool calls and results, sampling parameters, streaming on or off;
2. *almost valid*: the valid body with one to three mutations at random places (a value of the
   wrong type, a deleted or unknown field, a huge string, a deeply nested value, a huge or
   negative number, a string with NUL/control/non-BMP characters);
3. *hostile bytes*: the serialized body cut short, with invalid UTF-8 spliced in, with NaN /
   Infinity / 1e999 literals, nested thousands of levels deep, not an object, or empty.

Everything a strategy draws is plain data, so a failing example prints as a reproducible body.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
from hypothesis import strategies as st

OPENAI = "openai"
ANTHROPIC = "anthropic"

#: Mostly models the fakes serve (so the whole pipeline runs), sometimes unknown or odd names.
MODELS = st.one_of(
    st.sampled_from(
        ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"]
    ),
    st.sampled_from(
        ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"]
    ),
    st.sampled_from(
        [
            "no-such-model",
            "openai/",
            "/",
            "gemini/../../v1/models?x=1#",
            "openai/gpt-4o-mini\u0000x",
            "openai/gpt-\u00e9\u6a21\u578b",
            "agent:nobody:heavy",
        ]
    ),
)

PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()

# -- text ------------------------------------------------------------------------------------------
_ODD_CHARS = st.sampled_from(
    ["\u0000", "\u0001", "\u001b", "\u007f", "\u2028", "\ufeff", "\U0001f600", "\ud7ff", '"', "\\"]
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.lists(st.one_of(_ODD_CHARS, st.text(max_size=3)), max_size=8).map("".join),
    st.sampled_from(
        ["[EMAIL_1]", "alice@example.com", "4111 1111 1111 1111", "sk-live-0123456789abcdef"]
    ),
)
NONEMPTY_TEXT = TEXT.filter(lambda s: s.strip() != "")
NAME = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)

# -- hostile values ------------------------------------------------------------------------------
HUGE_NUMBERS = st.sampled_from(
    [
        2**63,
        2**64 + 1,
        -(2**63) - 1,
        10**30,
        -1,
        0,
        1e308,
        -1e308,
        5e-324,
        0.5,
        99999999999999999999999,
    ]
)


def huge_string() -> st.SearchStrategy[str]:
    # Built by repetition: drawing megabytes character by character would be far too slow.
    return st.tuples(
        st.sampled_from(["x", "é", "\U0001f600", "a\u0000", "<s>"]), st.integers(1, 300_000)
    ).map(lambda t: t[0] * t[1])


def nested(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


# orjson serializes at most 255 levels and parses at most 1024; 600 reaches the codecs.
DEEP = st.integers(1, 600).map(nested)
WRONG_TYPES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(NAME, st.integers(), max_size=3),
)
HOSTILE_VALUE: st.SearchStrategy[Any] = st.one_of(
    WRONG_TYPES, HUGE_NUMBERS, huge_string(), DEEP, st.just(""), st.just([]), st.just({})
)


# -- valid OpenAI bodies ---------------------------------------------------------------------------
def _openai_tool() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda name, desc, props: {
            "type": "function",
            "function": {
                "name": name,
                "description": desc,
                "parameters": {
                    "type": "object",
                    "properties": {p: {"type": t} for p, t in props.items()},
                    "required": list(props)[:1],
                },
            },
        },
        NAME,
        TEXT,
        st.dictionaries(
            NAME, st.sampled_from(["string", "integer", "number", "boolean"]), max_size=3
        ),
    )


_OPENAI_PART = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, TEXT),
    st.just({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1PX}"}}),
    st.just({"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}}),
)


def _openai_messages() -> st.SearchStrategy[list[dict[str, Any]]]:
    user = st.builds(
        lambda c: {"role": "user", "content": c},
        st.one_of(TEXT, st.lists(_OPENAI_PART, min_size=1, max_size=3)),
    )
    system = st.builds(
        lambda r, c: {"role": r, "content": c}, st.sampled_from(["system", "developer"]), TEXT
    )
    tool_round = st.builds(
        lambda name, args, result: [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": name, "arguments": _dumps(args).decode()},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": result},
        ],
        NAME,
        st.dictionaries(NAME, st.one_of(st.integers(), TEXT), max_size=3),
        TEXT,
    )
    assistant = st.builds(lambda c: {"role": "assistant", "content": c}, TEXT)
    return st.builds(
        lambda sys, history, last: sys + [m for turn in history for m in turn] + [last],
        st.lists(system, max_size=1),
        st.lists(st.one_of(tool_round, st.tuples(user, assistant).map(list)), max_size=2),
        user,
    )


def openai_body() -> st.SearchStrategy[dict[str, Any]]:
    optional = st.fixed_dictionaries(
        {},
        optional={
            "max_tokens": st.integers(1, 4096),
            "max_completion_tokens": st.integers(1, 4096),
            "temperature": st.floats(0, 2),
            "top_p": st.floats(0, 1),
            "stream": st.booleans(),
            "stream_options": st.just({"include_usage": True}),
            "stop": st.one_of(TEXT, st.lists(NONEMPTY_TEXT, max_size=3)),
            "user": TEXT,
            "seed": st.integers(0, 2**31),
            "n": st.just(1),
            "tools": st.lists(_openai_tool(), min_size=1, max_size=2),
            "tool_choice": st.sampled_from(["auto", "none", "required"]),
            "parallel_tool_calls": st.booleans(),
            "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
            "metadata": st.dictionaries(NAME, TEXT, max_size=2),
        },
    )
    return st.builds(
        lambda model, msgs, opt: {"model": model, "messages": msgs, **opt},
        MODELS,
        _openai_messages(),
        optional,
    )


# -- valid Anthropic bodies ------------------------------------------------------------------------
_ANTHROPIC_BLOCK = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, NONEMPTY_TEXT),
    st.just(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX}}
    ),
)


def _anthropic_messages() -> st.SearchStrategy[list[dict[str, Any]]]:
    user = st.builds(
        lambda c: {"role": "user", "content": c},
        st.one_of(NONEMPTY_TEXT, st.lists(_ANTHROPIC_BLOCK, min_size=1, max_size=3)),
    )
    tool_round = st.builds(
        lambda name, args, result: [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": args}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": result}],
            },
        ],
        NAME,
        st.dictionaries(NAME, st.one_of(st.integers(), TEXT), max_size=3),
        NONEMPTY_TEXT,
    )
    plain = st.tuples(
        user, st.builds(lambda t: {"role": "assistant", "content": t}, NONEMPTY_TEXT)
    ).map(list)
    return st.builds(
        lambda history, last: [m for turn in history for m in turn] + [last],
        st.lists(st.one_of(tool_round, plain), max_size=2),
        user,
    )


def anthropic_body() -> st.SearchStrategy[dict[str, Any]]:
    tool = st.builds(
        lambda name, desc, props: {
            "name": name,
            "description": desc,
            "input_schema": {
                "type": "object",
                "properties": {p: {"type": "string"} for p in props},
            },
        },
        NAME,
        TEXT,
        st.lists(NAME, max_size=3, unique=True),
    )
    optional = st.fixed_dictionaries(
        {},
        optional={
            "system": st.one_of(
                NONEMPTY_TEXT,
                st.lists(
                    st.builds(lambda t: {"type": "text", "text": t}, NONEMPTY_TEXT),
                    min_size=1,
                    max_size=2,
                ),
            ),
            "temperature": st.floats(0, 1),
            "top_p": st.floats(0, 1),
            "top_k": st.integers(1, 100),
            "stream": st.booleans(),
            "stop_sequences": st.lists(NONEMPTY_TEXT, max_size=3),
            "metadata": st.builds(lambda u: {"user_id": u}, NAME),
            "tools": st.lists(tool, min_size=1, max_size=2),
            "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}]),
        },
    )
    return st.builds(
        lambda model, n, msgs, opt: {"model": model, "max_tokens": n, "messages": msgs, **opt},
        MODELS,
        st.integers(1, 4096),
        _anthropic_messages(),
        optional,
    )


# -- almost valid: mutations at random paths -------------------------------------------------------
def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _apply(body: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    if not path:
        return value if op == "replace" else body
    parent: Any = body
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "replace":
        parent[last] = value
    elif op == "delete":
        del parent[last]
    elif op == "unknown" and isinstance(parent, dict):
        parent[f"x_unknown_{len(parent)}"] = value
    return body


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    # A copy: ``st.just`` values are shared between examples and must not be mutated.
    body = copy.deepcopy(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(body)
        path = draw(st.sampled_from(paths[1:] or paths))
        op = draw(st.sampled_from(["replace", "replace", "delete", "unknown"]))
        body = _apply(body, path, op, draw(HOSTILE_VALUE))
        if not isinstance(body, dict):
            break
    return body


# -- hostile bytes ---------------------------------------------------------------------------------
def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        # Integers beyond 64 bits (and other oddities) have no orjson form; the stdlib writes them.
        import json

        return json.dumps(value).encode("utf-8", "surrogatepass")


@st.composite
def corrupted(draw: st.DrawFn, raw: bytes) -> bytes:
    kind = draw(
        st.sampled_from(
            ["truncate", "invalid_utf8", "nan", "deep", "not_object", "empty", "splice", "bom"]
        )
    )
    if kind == "truncate":
        return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    if kind == "invalid_utf8":
        junk = draw(
            st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"])
        )
        pos = draw(st.integers(0, len(raw)))
        # Inside a string value if there is one, else anywhere.
        quote = raw.find(b'":"', pos)
        at = quote + 3 if quote >= 0 else pos
        return raw[:at] + junk + raw[at:]
    if kind == "nan":
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"]))
        return raw[:-1] + b',"temperature":' + literal + b"}" if raw.endswith(b"}") else literal
    if kind == "deep":
        depth = draw(st.integers(500, 200_000))
        return raw[:-1] + b',"metadata":' + b"[" * depth + b"]" * depth + b"}"
    if kind == "not_object":
        return draw(st.sampled_from([b"[]", b"null", b"42", b'"model"', b"true", b"[{}]"]))
    if kind == "empty":
        return draw(st.sampled_from([b"", b" ", b"\n\t "]))
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw
    pos = draw(st.integers(0, len(raw)))
    return raw[:pos] + draw(st.binary(min_size=1, max_size=8)) + raw[pos:]


@st.composite
def request_bytes(draw: st.DrawFn, protocol: str) -> tuple[str, bytes]:
    """``(layer, body bytes)`` with layer in ``valid | mutated | hostile``."""
    base = openai_body() if protocol == OPENAI else anthropic_body()
    layer = draw(st.sampled_from(["valid", "mutated", "mutated", "hostile"]))
    if layer == "valid":
        return layer, _dumps(draw(base))
    if layer == "mutated":
        return layer, _dumps(draw(mutated(base)))
    return layer, draw(corrupted(_dumps(draw(base))))
