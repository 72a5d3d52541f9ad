"""encode_request (IR from any protocol -> Anthropic upstream), encode_response, errors, count."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from backend.ir.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PolicyBlocked,
    QuotaExceeded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from backend.protocols.anthropic_messages import (
    decode_error,
    decode_request,
    encode_count_tokens_request,
    encode_error,
    encode_request,
    encode_response,
    estimate_tokens,
)
from backend.protocols.anthropic_messages.vocab import CACHE_KEY
from backend.providers.base import UnsupportedOperation

TOOL = Tool(
    "lookup", "Look a word up.", {"type": "object", "properties": {"q": {"type": "string"}}}
)


def user(*parts: Part | str) -> Message:
    return Message("user", [TextPart(p) if isinstance(p, str) else p for p in parts])


def assistant(*parts: Part | str) -> Message:
    return Message("assistant", [TextPart(p) if isinstance(p, str) else p for p in parts])


def system(text: str) -> Message:
    return Message("system", [TextPart(text)])


def enc(req: ChatRequest, stream: bool = False) -> dict[str, Any]:
    return encode_request(req, "claude-sonnet-4-5", stream=stream)


def test_minimal_request_defaults() -> None:
    out = enc(ChatRequest(model="alias", messages=[user("hi")]))
    assert out == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert enc(ChatRequest(model="a", messages=[user("hi")]), stream=True)["stream"] is True


def test_max_tokens_default_leaves_room_above_a_thinking_budget() -> None:
    thinking = {"type": "enabled", "budget_tokens": 8000}
    out = enc(ChatRequest(model="a", messages=[user("hi")], thinking=thinking))
    assert out["max_tokens"] > 8000 and out["thinking"] == thinking
    assert enc(ChatRequest(model="a", messages=[user("hi")], max_tokens=9))["max_tokens"] == 9


def test_system_messages_leading_lifted_later_kept_in_place_as_user_text() -> None:
    req = ChatRequest(
        model="a",
        system=[TextPart("Be kind.")],
        messages=[
            system("Answer in French."),
            user("hi"),
            assistant("bonjour"),
            system("Now answer in German."),
            user("and now?"),
        ],
    )
    out = enc(req)
    assert out["system"] == [
        {"type": "text", "text": "Be kind."},
        {"type": "text", "text": "Answer in French."},
    ]
    assert out["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "bonjour"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Now answer in German."},
                {"type": "text", "text": "and now?"},
            ],
        },
    ]


def test_openai_style_tool_turns_merge_and_put_tool_results_first() -> None:
    call_a = ToolCallPart("call_a", "lookup", '{"q":"cat"}')
    call_b = ToolCallPart("call_b", "lookup", "")
    req = ChatRequest(
        model="a",
        tools=[TOOL],
        messages=[
            user("define cat and dog"),
            assistant(call_a, call_b),
            user(ToolResultPart("call_a", [TextPart("a feline")])),
            system("Keep answers short."),
            user(ToolResultPart("call_b", [], is_error=True)),
        ],
    )
    out = enc(req)
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_a", "name": "lookup", "input": {"q": "cat"}},
            {"type": "tool_use", "id": "call_b", "name": "lookup", "input": {}},
        ],
    }
    assert out["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "a feline"},
            {"type": "tool_result", "tool_use_id": "call_b", "is_error": True},
            {"type": "text", "text": "Keep answers short."},
        ],
    }
    assert len(out["messages"]) == 3


def test_empty_text_is_never_sent_and_empty_messages_vanish() -> None:
    req = ChatRequest(
        model="a",
        messages=[user("one", ""), assistant(""), user("two"), assistant("", "ok")],
    )
    out = enc(req)
    assert out["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {"role": "assistant", "content": "ok"},
    ]
    assert 'text":""' not in orjson.dumps(out).decode()


def test_thinking_parts_signed_kept_unsigned_dropped() -> None:
    req = ChatRequest(
        model="a",
        messages=[
            user("q"),
            assistant(
                ThinkingPart("deep thought", signature="sig=="),
                ThinkingPart("openai reasoning summary"),
                ThinkingPart("echoed from a translated stream", signature=""),
                ThinkingPart(redacted_data="opaque"),
                "42",
            ),
        ],
    )
    assert enc(req)["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "deep thought", "signature": "sig=="},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "42"},
    ]


def test_images() -> None:
    req = ChatRequest(
        model="a",
        messages=[
            user(
                ImagePart(url="data:image/webp;base64,UklGRg=="),
                ImagePart(url="https://example.com/a.png", detail="high"),
                ImagePart(data="iVBORw0K", media_type="image/png"),
            )
        ],
    )
    assert [b["source"] for b in enc(req)["messages"][0]["content"]] == [
        {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="},
        {"type": "url", "url": "https://example.com/a.png"},
        {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
    ]


def test_tool_call_arguments_must_be_a_json_object() -> None:
    bad = ChatRequest(
        model="a", messages=[user("q"), assistant(ToolCallPart("c1", "f", '{"q": "unterminated'))]
    )
    with pytest.raises(InvalidRequest, match="c1"):
        enc(bad)
    listy = ChatRequest(model="a", messages=[user("q"), assistant(ToolCallPart("c2", "f", "[1]"))])
    with pytest.raises(InvalidRequest, match="JSON object"):
        enc(listy)


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("auto"), True, {"type": "auto"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ToolChoice("tool", "lookup"), None, {"type": "tool", "name": "lookup"}),
        (ToolChoice("none"), False, {"type": "none"}),
    ],
)
def test_tool_choice(
    choice: ToolChoice | None, parallel: bool | None, expected: dict[str, Any] | None
) -> None:
    req = ChatRequest(
        model="a",
        messages=[user("q")],
        tools=[TOOL],
        tool_choice=choice,
        parallel_tool_calls=parallel,
    )
    out = enc(req)
    assert out.get("tool_choice") == expected
    assert out["tools"] == [
        {"name": "lookup", "description": "Look a word up.", "input_schema": TOOL.parameters}
    ]


def test_tool_choice_without_tools_is_not_sent() -> None:
    req = ChatRequest(model="a", messages=[user("q")], tool_choice=ToolChoice("none"))
    assert "tool_choice" not in enc(req) and "tools" not in enc(req)


def test_anthropic_clients_structured_output_is_forwarded_not_duplicated() -> None:
    fmt = {"type": "json_schema", "schema": {"type": "object"}}
    req = decode_request(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "q"}],
            "output_config": {"format": fmt},
        }
    )
    out = enc(req)
    assert out["output_config"] == {"format": fmt} and "system" not in out


def test_tool_without_parameters_gets_an_object_schema() -> None:
    req = ChatRequest(model="a", messages=[user("q")], tools=[Tool("now", None, {})])
    assert enc(req)["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}
    ]


def test_temperature_is_capped_at_anthropics_maximum() -> None:
    assert enc(ChatRequest(model="a", messages=[user("q")], temperature=1.7))["temperature"] == 1
    assert enc(ChatRequest(model="a", messages=[user("q")], temperature=0))["temperature"] == 0


def test_sampling_stop_and_metadata() -> None:
    req = ChatRequest(
        model="a",
        messages=[user("q")],
        temperature=0.5,
        top_p=0.8,
        stop=["END"],
        metadata={"project": "x"},  # OpenAI-style metadata: Anthropic would refuse it
        user="end-user-9",
    )
    out = enc(req)
    assert (out["temperature"], out["top_p"], out["stop_sequences"]) == (0.5, 0.8, ["END"])
    assert out["metadata"] == {"user_id": "end-user-9"}


def test_extras_are_forwarded_only_for_an_anthropic_client() -> None:
    req = ChatRequest(model="a", messages=[user("q")], protocol="anthropic")
    req.extra = {"top_k": 3, "service_tier": "standard_only", "frobnicate": 1, CACHE_KEY: []}
    out = enc(req)
    assert out["top_k"] == 3 and out["service_tier"] == "standard_only"
    assert out["frobnicate"] == 1 and CACHE_KEY not in out
    # Another protocol's leftovers never reach Anthropic as fields (translations aside).
    req.protocol = "openai"
    req.extra = {"frequency_penalty": 0.5, "seed": 1, "_openai": {"x": 1}, "service_tier": "flex"}
    assert not set(req.extra) & set(enc(req))


def test_opaque_blocks_tools_and_block_keys_are_written_back_in_place() -> None:
    document = {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
    web = {"type": "web_search_20250305", "name": "web_search"}
    req = ChatRequest(
        model="a",
        messages=[
            Message("user", [TextPart("a"), Opaque("anthropic", document), TextPart("b")]),
            Message("assistant", [TextPart("c", extra={"citations": [{"type": "x"}]})]),
        ],
        tools=[
            Tool("f", None, {"type": "object"}, extra={"strict": True}),
            Opaque("anthropic", web),
        ],
        protocol="anthropic",
    )
    out = enc(req)
    assert out["messages"][0]["content"][1] == document
    assert out["messages"][1]["content"] == [
        {"type": "text", "text": "c", "citations": [{"type": "x"}]}
    ]
    assert out["tools"] == [
        {"name": "f", "input_schema": {"type": "object"}, "strict": True},
        web,
    ]
    # Another protocol's extras are skipped by the encoder (they were refused before it).
    req.protocol = "openai"
    req.messages[0].parts[1] = Opaque("openai", {"type": "file", "file": {}})
    req.tools[1] = Opaque("openai", {"type": "custom", "custom": {}})
    out = enc(req)
    assert [b["text"] for b in out["messages"][0]["content"]] == ["a", "b"]
    assert out["messages"][1]["content"] == "c"
    assert out["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]


def test_cache_markers_follow_their_ir_positions() -> None:
    req = ChatRequest(
        model="a",
        system=[TextPart("sys")],
        tools=[TOOL],
        messages=[user("a"), assistant("b"), user("c", ToolResultPart("t", [TextPart("r")]))],
    )
    ephemeral = {"type": "ephemeral"}
    req.extra[CACHE_KEY] = [
        {"path": ["system", 0], "cache_control": ephemeral},
        {"path": ["tools", 0], "cache_control": ephemeral},
        {"path": ["messages", 2, 1, 0], "cache_control": ephemeral},
    ]
    out = enc(req)
    assert out["system"] == [{"type": "text", "text": "sys", "cache_control": ephemeral}]
    assert out["tools"][0]["cache_control"] == ephemeral
    result = out["messages"][2]["content"][0]
    assert result["content"] == [{"type": "text", "text": "r", "cache_control": ephemeral}]


# -- responses ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("stop_sequence", "stop_sequence"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
    ],
)
def test_response_finish_mapping(finish: Any, stop_reason: str) -> None:
    resp = ChatResponse("msg_1", "gpt-x", [TextPart("hi")], finish, Usage(10, 2))
    assert encode_response(resp, "alias")["stop_reason"] == stop_reason


def test_response_from_another_provider() -> None:
    resp = ChatResponse(
        id="chatcmpl-1",
        model="gpt-4o",
        content=[
            TextPart(""),
            ThinkingPart("reasoning"),
            TextPart("Let me look."),
            ToolCallPart("call_1", "lookup", '{"q":"x"}'),
            ToolCallPart("call_2", "lookup", "{broken"),
        ],
        finish_reason="tool_calls",
        usage=Usage(input_tokens=100, output_tokens=20, cached_tokens=60),
    )
    out = encode_response(resp, "my-alias")
    assert out["model"] == "my-alias" and out["type"] == "message" and out["role"] == "assistant"
    assert out["content"] == [
        {"type": "thinking", "thinking": "reasoning", "signature": ""},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "x"}},
        {"type": "tool_use", "id": "call_2", "name": "lookup", "input": {}},
    ]
    # OpenAI counts cached tokens inside input; Anthropic does not.
    assert out["usage"] == {
        "input_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
        "output_tokens": 20,
    }


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("err", "status", "kind"),
    [
        (InvalidRequest("bad"), 400, "invalid_request_error"),
        (PolicyBlocked("dlp"), 400, "invalid_request_error"),
        (UnsupportedOperation("no"), 400, "invalid_request_error"),
        (PayloadTooLarge("big"), 413, "request_too_large"),
        (AuthenticationError("who"), 401, "authentication_error"),
        (PermissionDenied("no"), 403, "permission_error"),
        (NotFound("model"), 404, "not_found_error"),
        (RateLimited("slow down"), 429, "rate_limit_error"),
        (QuotaExceeded("weekly cap of $50.00 reached"), 429, "rate_limit_error"),
        (UpstreamError("boom"), 502, "api_error"),
        (UpstreamError("boom", status=500), 500, "api_error"),
        (UpstreamTimeout("slow"), 504, "timeout_error"),
        (UpstreamUnavailable("down"), 503, "overloaded_error"),
        (GatewayError("oops"), 500, "api_error"),
    ],
)
def test_encode_error(err: GatewayError, status: int, kind: str) -> None:
    got_status, got_body = encode_error(err)
    assert got_status == status
    assert got_body == {"type": "error", "error": {"type": kind, "message": err.message}}


def test_encode_error_carries_request_id() -> None:
    err = RateLimited("slow", detail={"request_id": "req_1"})
    assert encode_error(err)[1]["request_id"] == "req_1"


def _err_body(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


@pytest.mark.parametrize(
    ("status", "cls", "client_status", "retryable"),
    [
        (400, InvalidRequest, 400, False),
        (401, UpstreamError, 502, True),
        (403, UpstreamError, 502, True),
        (404, NotFound, 404, False),
        (413, PayloadTooLarge, 413, False),
        (429, RateLimited, 429, True),
        (500, UpstreamError, 502, True),
        (503, UpstreamUnavailable, 503, True),
        (504, UpstreamTimeout, 504, True),
        (529, UpstreamUnavailable, 503, True),
    ],
)
def test_decode_error(status: int, cls: type, client_status: int, retryable: bool) -> None:
    err = decode_error(status, _err_body("some_error", "details here"))
    assert type(err) is cls
    assert (err.status, err.retryable) == (client_status, retryable)
    assert err.message == "anthropic: details here"


def test_decode_error_with_non_json_body_and_provider_name() -> None:
    err = decode_error(502, b"<html>Bad Gateway</html>", provider="claude-eu")
    assert err.message == "claude-eu: <html>Bad Gateway</html>"
    assert decode_error(500, b"").message == "anthropic: HTTP 500"


# -- count_tokens ------------------------------------------------------------------------------
def test_count_tokens_body_has_only_countable_fields() -> None:
    req = ChatRequest(
        model="a",
        system=[TextPart("sys")],
        messages=[user("q")],
        tools=[TOOL],
        tool_choice=ToolChoice("auto"),
        max_tokens=10,
        temperature=0.1,
        stop=["x"],
        user="u",
        stream=True,
        thinking={"type": "enabled", "budget_tokens": 2000},
        protocol="anthropic",
    )
    req.extra = {"top_k": 1, "service_tier": "auto", "speed": "fast"}
    assert set(encode_count_tokens_request(req, "claude-x")) == {
        "model",
        "system",
        "messages",
        "tools",
        "tool_choice",
        "thinking",
        "speed",
    }


def test_estimate_tokens_is_about_four_chars_per_token() -> None:
    text = "word " * 400  # 2000 characters
    base = estimate_tokens(ChatRequest(model="a", messages=[user(text)]))
    assert 500 <= base <= 520
    with_image = ChatRequest(model="a", messages=[user(text, ImagePart(url="https://x/y.png"))])
    assert estimate_tokens(with_image) - base == 1600
    with_tool = ChatRequest(model="a", messages=[user(text)], tools=[TOOL])
    assert estimate_tokens(with_tool) > base
    assert estimate_tokens(ChatRequest(model="a", messages=[])) == 1
