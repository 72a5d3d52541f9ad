"""decode_request: strict validation with the API's field paths, and what lands in the IR."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import Headers

from backend.ir.chat import (
    FilePart,
    ImagePart,
    Opaque,
    TextPart,
    Tool,
    ToolChoice,
    ToolResultPart,
)
from backend.ir.errors import InvalidRequest, UpstreamError
from backend.protocols.anthropic_messages import (
    decode_count_tokens_request,
    decode_request,
    decode_response,
)
from backend.protocols.anthropic_messages.vocab import CACHE_KEY

USER = {"role": "user", "content": "hi"}


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [USER]}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def block_body(*blocks: Any, role: str = "user") -> dict[str, Any]:
    return body(messages=[{"role": role, "content": list(blocks)}])


TEXT = {"type": "text", "text": "x"}

INVALID = [
    ([1, 2], None, "JSON object"),
    (body(model=...), "model", "model: Field required"),
    (body(model=""), "model", "model:"),
    (body(max_tokens=...), "max_tokens", "max_tokens: Field required"),
    (body(max_tokens=0), "max_tokens", "greater than or equal to 1"),
    (body(max_tokens="64"), "max_tokens", "valid integer"),
    (body(max_tokens=True), "max_tokens", "valid integer"),
    (body(messages=...), "messages", "Field required"),
    (body(messages=[]), "messages", "at least one message is required"),
    (body(messages="hi"), "messages", "Input should be a valid list"),
    (
        body(messages=[{"role": "system", "content": "x"}]),
        "messages",
        "at least one 'user' or 'assistant' message",
    ),
    (
        body(messages=[USER, {"role": "system", "content": [{"type": "image"}]}]),
        "messages.1.content.0",
        "only hold text blocks",
    ),
    (body(messages=[USER, {"role": "system", "content": 3}]), "messages.1.content", "valid"),
    (
        body(messages=[USER, {"role": "tool", "content": "x"}]),
        "messages.1.role",
        "messages.1.role: Input should be 'user' or 'assistant'",
    ),
    (body(messages=["hi"]), "messages.0", "Input should be a valid dictionary"),
    (body(messages=[{"role": "user", "content": 3}]), "messages.0.content", "string or a list"),
    (block_body({"text": "x"}), "messages.0.content.0", "'type'"),
    (block_body({"type": "text"}), "messages.0.content.0.text", "Field required"),
    (block_body({"type": "text", "text": 5}), "messages.0.content.0.text", "valid string"),
    (
        block_body({"type": "image", "source": {"type": "files", "file_id": "f"}}),
        "messages.0.content.0.source.type",
        "'base64' or 'url'",
    ),
    (
        block_body({"type": "image", "source": {"type": "base64", "data": "AA=="}}),
        "messages.0.content.0.source.media_type",
        "Field required",
    ),
    (block_body({"type": "image"}), "messages.0.content.0.source", "Field required"),
    (
        block_body({"type": "tool_use", "id": "t", "name": "f", "input": {}}),
        "messages.0.content.0.type",
        "assistant messages",
    ),
    (
        block_body({"type": "tool_use", "id": "t", "name": "f", "input": "{}"}, role="assistant"),
        "messages.0.content.0.input",
        "valid dictionary",
    ),
    (
        block_body({"type": "tool_result", "tool_use_id": "t"}, role="assistant"),
        "messages.0.content.0.type",
        "user messages",
    ),
    (
        block_body({"type": "tool_result", "tool_use_id": "t", "content": [{"text": "x"}]}),
        "messages.0.content.0.content.0",
        "'type'",
    ),
    (
        block_body({"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}),
        "messages.0.content.0.is_error",
        "boolean",
    ),
    (block_body({"type": "tool_result"}), "messages.0.content.0.tool_use_id", "Field required"),
    (
        block_body({"type": "thinking", "thinking": "x", "signature": "s"}),
        "messages.0.content.0.type",
        "assistant messages",
    ),
    (
        block_body({**TEXT, "cache_control": {"type": "forever"}}),
        "messages.0.content.0.cache_control",
        "'ephemeral'",
    ),
    (body(system=5), "system", "string or a list"),
    (body(system=[{"type": "image"}]), "system.0", "text blocks"),
    (body(temperature=1.5), "temperature", "less than or equal to 1"),
    (body(temperature="hot"), "temperature", "valid number"),
    (body(top_p=-0.1), "top_p", "greater than or equal to 0"),
    (body(top_k=-1), "top_k", "greater than or equal to 0"),
    (body(stop_sequences="END"), "stop_sequences", "valid list"),
    (body(stop_sequences=["a", 1]), "stop_sequences.1", "valid string"),
    (body(stream="yes"), "stream", "boolean"),
    (body(metadata=["x"]), "metadata", "valid dictionary"),
    (body(metadata={"user_id": 7}), "metadata.user_id", "string"),
    (body(thinking={"budget_tokens": 1024}), "thinking", "'type'"),
    (body(tools={"name": "f"}), "tools", "valid list"),
    (body(tools=[{"type": 5, "name": "web"}]), "tools.0.type", "valid string"),
    (body(tools=[{"name": "f"}]), "tools.0.input_schema", "Field required"),
    (body(tools=[{"name": "", "input_schema": {}}]), "tools.0.name", "at least 1 character"),
    (body(tools=[{"name": "f", "input_schema": {}, "description": 1}]), "tools.0.description", ""),
    (body(tool_choice={"type": "required"}), "tool_choice", "Input tag 'required'"),
    (body(tool_choice={"type": "tool"}), "tool_choice.name", "Field required"),
    (
        body(tool_choice={"type": "auto", "disable_parallel_tool_use": "yes"}),
        "tool_choice.disable_parallel_tool_use",
        "boolean",
    ),
]


@pytest.mark.parametrize(("payload", "param", "fragment"), INVALID)
def test_invalid_requests_name_the_field(payload: Any, param: str | None, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_request(payload)
    assert info.value.param == param
    assert info.value.status == 400
    assert fragment in info.value.message
    if param:
        assert info.value.message.startswith(f"{param}:")


def test_invalid_json_bytes() -> None:
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        decode_request(b"{nope")


def test_bytes_body_and_minimal_request() -> None:
    req = decode_request(
        b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
    )
    assert req.model == "m" and req.max_tokens == 5 and req.stream is False
    assert req.messages[0].parts == [TextPart("hi")]
    assert req.system == [] and req.tools == [] and req.extra == {}


def test_count_tokens_request_needs_no_max_tokens_but_validates_the_rest() -> None:
    req = decode_count_tokens_request(body(max_tokens=...))
    assert req.max_tokens is None
    with pytest.raises(InvalidRequest):
        decode_count_tokens_request(body(max_tokens=..., messages=[]))
    with pytest.raises(InvalidRequest):
        decode_count_tokens_request(body(max_tokens=-1))


def test_every_unmodelled_field_is_kept_for_the_passthrough() -> None:
    req = decode_request(
        body(
            frobnicate=True,
            top_k=5,
            service_tier="standard_only",
            container="container_1",
            mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "x"}],
            inference_geo="eu",
            speed="fast",
            nothing=None,
        )
    )
    assert req.protocol == "anthropic"
    assert req.extra == {
        "frobnicate": True,
        "top_k": 5,
        "service_tier": "standard_only",
        "container": "container_1",
        "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}],
        "inference_geo": "eu",
        "speed": "fast",
    }


def test_unmodelled_blocks_tools_and_keys_become_extras() -> None:
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."},
        "citations": {"enabled": True},
        "cache_control": {"type": "ephemeral"},
    }
    file_image = {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
    file_document = {"type": "document", "source": {"type": "file", "file_id": "file_2"}}
    search = {"type": "search_result", "source": "s", "title": "t", "content": [TEXT]}
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    cited = {"type": "text", "text": "Blue.", "citations": [{"type": "char_location"}]}
    req = decode_request(
        body(
            messages=[
                {"role": "user", "content": [document, file_image, TEXT, file_document]},
                {"role": "assistant", "content": [cited]},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t", "content": [search, TEXT]}
                    ],
                },
            ],
            tools=[web, {"name": "f", "input_schema": {"type": "object"}, "strict": True}],
        )
    )
    first = req.messages[0].parts
    # A text document is the IR's file (its citations ask stays Anthropic's, its cache mark
    # is a mark); Files API images and documents stay Anthropic's own blocks.
    assert first[0] == FilePart(
        text="The sky is blue.", media_type="text/plain", extra={"citations": {"enabled": True}}
    )
    assert first[1:] == [
        Opaque("anthropic", file_image),
        TextPart("x"),
        Opaque("anthropic", file_document),
    ]
    assert {"path": ["messages", 0, 0], "cache_control": {"type": "ephemeral"}} in req.extra[
        CACHE_KEY
    ]
    assert req.messages[1].parts == [TextPart("Blue.", extra={"citations": cited["citations"]})]
    result = req.messages[2].parts[0]
    assert isinstance(result, ToolResultPart)
    assert result.content == [Opaque("anthropic", search), TextPart("x")]
    assert req.tools[0] == Opaque("anthropic", web)
    assert isinstance(req.tools[1], Tool) and req.tools[1].extra == {"strict": True}


def test_output_config_format_is_also_a_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "schema": schema}
    req = decode_request(body(output_config={"effort": "low", "format": fmt}))
    assert req.extra["output_config"]["format"] == fmt
    assert req.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


def test_forward_headers_from_starlette_headers() -> None:
    headers = Headers(
        raw=[
            (b"anthropic-version", b"2023-06-01"),
            (b"anthropic-beta", b"prompt-caching-2024-07-31,fine-grained-tool-streaming"),
            (b"authorization", b"Bearer sk-ant-secret"),
            (b"x-api-key", b"sk-ant-secret"),
        ]
    )
    req = decode_request(body(), headers)
    assert req.forward_headers == {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "prompt-caching-2024-07-31,fine-grained-tool-streaming",
    }


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ToolChoice("auto"), None),
        ({"type": "any"}, ToolChoice("required"), None),
        ({"type": "none"}, ToolChoice("none"), None),
        ({"type": "tool", "name": "f"}, ToolChoice("tool", "f"), None),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("required"), False),
        ({"type": "auto", "disable_parallel_tool_use": False}, ToolChoice("auto"), True),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: ToolChoice, parallel: bool | None) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    req = decode_request(body(tools=tools, tool_choice=choice))
    assert req.tool_choice == expected
    assert req.parallel_tool_calls is parallel


def test_tool_result_content_forms() -> None:
    req = decode_request(
        block_body(
            {"type": "tool_result", "tool_use_id": "a"},
            {"type": "tool_result", "tool_use_id": "b", "content": ""},
            {"type": "tool_result", "tool_use_id": "c", "content": "42"},
            {
                "type": "tool_result",
                "tool_use_id": "d",
                "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                ],
            },
        )
    )
    a, b, c, d = req.messages[0].parts
    assert a == ToolResultPart("a", []) and b == ToolResultPart("b", [])
    assert c == ToolResultPart("c", [TextPart("42")])
    assert d == ToolResultPart("d", [TextPart("see"), ImagePart(url="https://x/y.png")])


def test_cache_control_markers_are_kept_by_ir_position() -> None:
    req = decode_request(
        body(
            system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "a"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [
                                {
                                    "type": "text",
                                    "text": "r",
                                    "cache_control": {"type": "ephemeral"},
                                }
                            ],
                        },
                    ],
                }
            ],
            tools=[
                {
                    "name": "f",
                    "input_schema": {},
                    "cache_control": {"type": "ephemeral", "ttl": "1h"},
                }
            ],
        )
    )
    assert sorted(req.extra[CACHE_KEY], key=lambda m: str(m["path"])) == [
        {"path": ["messages", 0, 1, 0], "cache_control": {"type": "ephemeral"}},
        {"path": ["system", 0], "cache_control": {"type": "ephemeral"}},
        {"path": ["tools", 0], "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]


def test_metadata_user_id_becomes_the_ir_user() -> None:
    req = decode_request(body(metadata={"user_id": "u-1"}))
    assert req.user == "u-1" and req.metadata == {"user_id": "u-1"}


def test_empty_system_string_is_no_system() -> None:
    assert decode_request(body(system="")).system == []


# -- decode_response: malformed upstream answers -----------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", b'{"type":"message"}', b'{"content":"text"}', b'{"content":[1]}'],
)
def test_malformed_upstream_response_is_an_upstream_error(payload: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        decode_response(payload)
    assert info.value.status == 502 and info.value.retryable


def test_response_keeps_server_tool_blocks_citations_and_pause_turn() -> None:
    use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    citations = [{"type": "web_search_result_location", "url": "https://a", "cited_text": "c"}]
    resp = decode_response(
        {
            "id": "msg_1",
            "model": "m",
            "content": [
                use,
                result,
                {"type": "text", "text": ""},
                {"type": "text", "text": "found it", "citations": citations},
            ],
            "stop_reason": "pause_turn",
            "container": {"id": "c_1"},
            "usage": {
                "input_tokens": 1,
                "output_tokens": 2,
                "server_tool_use": {"web_search_requests": 1},
            },
        }
    )
    assert resp.protocol == "anthropic"
    assert resp.content == [
        Opaque("anthropic", use),
        Opaque("anthropic", result),
        TextPart("found it", extra={"citations": citations}),
    ]
    assert resp.finish_reason == "stop"
    assert resp.usage.web_search_requests == 1  # billed per search (pricing.book)
    assert resp.extra == {
        "container": {"id": "c_1"},
        "usage": {"server_tool_use": {"web_search_requests": 1}},
        "stop_reason": "pause_turn",
    }


def test_system_messages_fold_into_system_in_order() -> None:
    """Claude Code sends a ``role: "system"`` message on models it does not recognise."""
    req = decode_request(
        body(
            system="Top.",
            messages=[
                USER,
                {"role": "system", "content": "Env: linux."},
                {"role": "assistant", "content": "ok"},
                {"role": "system", "content": [TEXT, {"type": "text", "text": "y"}]},
                {"role": "user", "content": "go"},
            ],
        )
    )
    assert [p.text for p in req.system] == ["Top.", "Env: linux.", "x", "y"]
    assert [(m.role, m.text()) for m in req.messages] == [
        ("user", "hi"),
        ("assistant", "ok"),
        ("user", "go"),
    ]


def test_cache_marks_follow_folded_system_messages() -> None:
    """Marks on a system message's blocks land on its system parts; later messages' marks keep
    pointing at the right IR message although the system message left ``messages``."""
    ephemeral = {"type": "ephemeral"}
    req = decode_request(
        body(
            system=[{"type": "text", "text": "Top."}],
            messages=[
                USER,
                {"role": "system", "content": [{**TEXT, "cache_control": ephemeral}]},
                {"role": "user", "content": [{**TEXT, "cache_control": ephemeral}]},
            ],
        )
    )
    assert [p.text for p in req.system] == ["Top.", "x"]
    assert [m["path"] for m in req.extra[CACHE_KEY]] == [["system", 1], ["messages", 1, 0]]


def test_a_bad_cache_mark_names_the_wire_position() -> None:
    bad = {**TEXT, "cache_control": {"type": "forever"}}
    with pytest.raises(InvalidRequest) as info:
        decode_request(
            body(messages=[{"role": "system", "content": "s"}, {"role": "user", "content": [bad]}])
        )
    assert info.value.param == "messages.1.content.0.cache_control"


def test_count_tokens_folds_system_messages_too() -> None:
    req = decode_count_tokens_request(
        {"model": "m", "messages": [USER, {"role": "system", "content": "Env."}]}
    )
    assert [p.text for p in req.system] == ["Env."]
    assert len(req.messages) == 1
