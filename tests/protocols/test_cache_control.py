"""Prompt caching from OpenAI-format clients (issue 14 item 6): ``cache_control`` on OpenAI
content parts reaches Anthropic on the corresponding blocks, and is a no-op elsewhere."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from backend.ir.errors import InvalidRequest
from backend.protocols.anthropic_messages.encode import encode_request as to_anthropic
from backend.protocols.gemini.encode import encode_request as to_gemini
from backend.protocols.ollama.encode import encode_request as to_ollama
from backend.protocols.openai_chat import decode_request
from backend.protocols.openai_chat.encode import encode_request as to_openai

EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def _text(text: str, cc: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "text", "text": text, **({"cache_control": cc} if cc else {})}


BODY: dict[str, Any] = {
    "model": "anthropic/claude-sonnet-4-5",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [_text("Long manual", HOUR), _text("tail")]},
        {
            "role": "user",
            "content": [
                _text("", EPHEMERAL),  # empty: never sent, so its mark cannot move elsewhere
                _text("Big document", EPHEMERAL),
                _text("question"),
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                for i in (1, 2)
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "plain"},
        {
            "role": "tool",
            "tool_call_id": "c2",
            "content": [_text("first"), _text("long result", EPHEMERAL)],
        },
        {"role": "system", "content": [_text("Now be formal.", EPHEMERAL)]},
        {"role": "user", "content": [_text("go")]},
    ],
}


def test_marks_reach_the_corresponding_anthropic_blocks() -> None:
    body = to_anthropic(decode_request(BODY), "claude-sonnet-4-5", stream=False)
    assert body["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Long manual", "cache_control": HOUR},
        {"type": "text", "text": "tail"},
    ]
    user, assistant, results = body["messages"]
    assert user == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Big document", "cache_control": EPHEMERAL},
            {"type": "text", "text": "question"},
        ],
    }
    assert [b["type"] for b in assistant["content"]] == ["tool_use", "tool_use"]
    # Tool results first (as Anthropic requires), then the later system text and the user's.
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "plain"},
        {
            "type": "tool_result",
            "tool_use_id": "c2",
            "content": [
                {"type": "text", "text": "first"},
                {"type": "text", "text": "long result", "cache_control": EPHEMERAL},
            ],
        },
        {"type": "text", "text": "Now be formal.", "cache_control": EPHEMERAL},
        {"type": "text", "text": "go"},
    ]


def test_a_mark_on_an_image_part_reaches_the_image_block() -> None:
    image = {"url": "data:image/png;base64,aGk="}
    req = decode_request(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": image, "cache_control": EPHEMERAL},
                        _text("what is it?"),
                    ],
                }
            ],
        }
    )
    [message] = to_anthropic(req, "claude-sonnet-4-5", stream=False)["messages"]
    assert message["content"][0] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "aGk="},
        "cache_control": EPHEMERAL,
    }


def test_without_marks_nothing_is_added() -> None:
    req = decode_request({"model": "m", "messages": [{"role": "user", "content": [_text("hi")]}]})
    assert "cache_control" not in orjson.dumps(to_anthropic(req, "c", stream=False)).decode()


@pytest.mark.parametrize(
    "encode",
    [
        lambda r: to_openai(r, "gpt-4o-mini", stream=False),
        lambda r: to_gemini(r, "gemini-2.5-flash", stream=False),
        lambda r: to_ollama(r, "llama3.2", stream=False),
    ],
    ids=["openai", "gemini", "ollama"],
)
def test_elsewhere_a_documented_no_op(encode: Any) -> None:
    """OpenAI caches prompts by itself, Gemini implicitly, Ollama not at all: the request is
    the one the same conversation without marks would give."""
    plain = orjson.loads(orjson.dumps(BODY).replace(b',"cache_control":{"type":"ephemeral"}', b""))
    plain = orjson.loads(
        orjson.dumps(plain).replace(b',"cache_control":{"type":"ephemeral","ttl":"1h"}', b"")
    )
    assert "cache_control" not in orjson.dumps(plain).decode()
    assert encode(decode_request(BODY)) == encode(decode_request(plain))


@pytest.mark.parametrize(
    ("cc", "param"),
    [
        ({"type": "persistent"}, "messages[0].content[0].cache_control"),
        ("ephemeral", "messages[0].content[0].cache_control"),
        ({"type": "ephemeral", "ttl": "2d"}, "messages[0].content[0].cache_control.ttl"),
    ],
)
def test_a_malformed_mark_is_a_400_naming_it(cc: Any, param: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [_text("hi", cc)]}]}
    with pytest.raises(InvalidRequest) as info:
        decode_request(body)
    assert info.value.param == param
