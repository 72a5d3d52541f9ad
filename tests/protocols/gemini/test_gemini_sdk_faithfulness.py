"""The official google-genai SDK against our goldens and our fake: proof that both are faithful.

- Golden answers served raw to the SDK parse to the same text, calls and usage our decoder finds.
- The SDK, given the same conversation, sends the same request body our encoder builds.
- The SDK talks to ``GeminiFake`` (``/v1``, which google-genai 3.x uses) without noticing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from backend.ir.chat import (
    ChatRequest,
    Message,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.ir.stream import TextDelta
from backend.protocols.gemini import decode_response, encode_request
from backend.protocols.gemini.toolids import make_tool_call_id
from tests.fakes.base import Reply, ToolCall
from tests.fakes.gemini_fake import GeminiFake
from tests.protocols.gemini.test_gemini_golden import decode_stream

genai = pytest.importorskip("google.genai")
types = pytest.importorskip("google.genai.types")

GOLDEN = Path(__file__).parent / "golden"
MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def fake() -> Iterator[GeminiFake]:
    with GeminiFake() as f:
        yield f  # type: ignore[misc]


@pytest.fixture
def client(fake: GeminiFake) -> Any:
    fake.reset()
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake.base_url))


@pytest.mark.parametrize(
    "golden",
    [
        "response_text.json",
        "response_tool_calls.json",
        "response_thought_and_cache.json",
        "response_max_tokens_no_parts.json",
        "response_safety.json",
    ],
)
def test_sdk_reads_golden_answers_like_our_decoder(
    fake: GeminiFake, client: Any, golden: str
) -> None:
    raw = (GOLDEN / golden).read_bytes()
    fake.replies.append(Reply(raw=raw))
    sdk = client.models.generate_content(model=MODEL, contents="hi")
    ours = decode_response(orjson.loads(raw))
    sdk_text = "".join(
        p.text for p in (sdk.candidates[0].content.parts or []) if p.text and not p.thought
    )
    assert sdk_text == "".join(p.text for p in ours.content if isinstance(p, TextPart))
    sdk_calls = [(c.name, c.args) for c in sdk.function_calls or []]
    our_calls = [
        (p.name, orjson.loads(p.arguments)) for p in ours.content if isinstance(p, ToolCallPart)
    ]
    assert sdk_calls == our_calls
    meta = sdk.usage_metadata
    assert ours.usage.input_tokens == meta.prompt_token_count
    assert ours.usage.output_tokens == (meta.candidates_token_count or 0) + (
        meta.thoughts_token_count or 0
    )
    assert ours.usage.cached_tokens == (meta.cached_content_token_count or 0)


@pytest.mark.parametrize("golden", ["stream_text.sse", "stream_tool_calls.sse"])
def test_sdk_reads_golden_streams_like_our_decoder(
    fake: GeminiFake, client: Any, golden: str
) -> None:
    raw = (GOLDEN / golden).read_bytes()
    fake.replies.append(Reply(raw=raw, raw_content_type="text/event-stream"))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert fake.requests[-1].query == "alt=sse"
    sdk_text = "".join(p.text or "" for c in chunks for p in c.candidates[0].content.parts or [])
    ours = decode_stream(raw)
    assert sdk_text == "".join(e.text for e in ours if isinstance(e, TextDelta))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_sdk_request_body_equals_our_encoding(fake: GeminiFake, client: Any) -> None:
    signature = "c2lnLWJ5dGVz"  # base64 of b"sig-bytes", as the SDK serializes bytes
    call_id = make_tool_call_id("r1", 0, "get_weather", signature)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    ir = ChatRequest(
        model=MODEL,
        system=[TextPart("Be brief.")],
        messages=[
            Message("user", [TextPart("Weather in Paris?")]),
            Message("assistant", [ToolCallPart(call_id, "get_weather", '{"city": "Paris"}')]),
            Message("user", [ToolResultPart(call_id, [TextPart("18C")])]),
        ],
        tools=[Tool("get_weather", "Get weather", schema)],
        tool_choice=ToolChoice("tool", "get_weather"),
        max_tokens=100,
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        response_format={"type": "json_object"},
    )
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        max_output_tokens=100,
        temperature=0.2,
        top_p=0.9,
        stop_sequences=["END"],
        response_mime_type="application/json",
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="get_weather",
                        description="Get weather",
                        parameters={
                            "type": "OBJECT",
                            "properties": {"city": {"type": "STRING"}},
                            "required": ["city"],
                        },
                    )
                ]
            )
        ],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode="ANY", allowed_function_names=["get_weather"]
            )
        ),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    contents = [
        types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
        types.Content(
            role="model",
            parts=[
                types.Part(
                    function_call=types.FunctionCall(name="get_weather", args={"city": "Paris"}),
                    thought_signature=b"sig-bytes",
                )
            ],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="get_weather", response={"output": "18C"}
                    )
                )
            ],
        ),
    ]
    client.models.generate_content(model=MODEL, contents=contents, config=config)
    sent = fake.requests[-1].json
    sent["systemInstruction"].pop("role", None)  # the SDK labels it "user"; Gemini ignores it
    assert sent == encode_request(ir, MODEL, stream=False)


def test_sdk_against_fake_end_to_end(fake: GeminiFake, client: Any) -> None:
    fake.replies.append(Reply(text="hello there", input_tokens=7, output_tokens=3))
    resp = client.models.generate_content(model=MODEL, contents="hi")
    assert resp.text == "hello there"
    assert resp.usage_metadata.candidates_token_count == 3
    assert fake.requests[-1].path == f"/v1/models/{MODEL}:generateContent"
    assert fake.requests[-1].headers["x-goog-api-key"] == "test-key"

    fake.replies.append(Reply(text="abcdef", chunks=3))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert [c.text for c in chunks] == ["ab", "cd", "ef"]
    assert chunks[0].usage_metadata.candidates_token_count is None  # partial usage
    assert chunks[-1].usage_metadata.candidates_token_count == 5

    fake.replies.append(
        Reply(
            text=None, tool_calls=[ToolCall("get_weather", {"city": "Oslo"})], finish="tool_calls"
        )
    )
    resp = client.models.generate_content(model=MODEL, contents="hi")
    assert [(c.name, c.args, c.id) for c in resp.function_calls] == [
        ("get_weather", {"city": "Oslo"}, None)
    ]
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP

    fake.replies.append(Reply(input_tokens=42))
    assert client.models.count_tokens(model=MODEL, contents="hi").total_tokens == 42
    emb = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["a", "b"],
        config=types.EmbedContentConfig(output_dimensionality=4),
    )
    assert [len(e.values) for e in emb.embeddings] == [4, 4]
    assert [m.name for m in client.models.list()] == [f"models/{m}" for m in fake.models]


def test_sdk_sees_googles_error_shapes(fake: GeminiFake) -> None:
    from google.genai import errors

    bad = genai.Client(api_key="bad", http_options=types.HttpOptions(base_url=fake.base_url))
    with pytest.raises(errors.ClientError) as info:
        bad.models.generate_content(model=MODEL, contents="hi")
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert "API_KEY_INVALID" in str(info.value.details)

    ok = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url))
    fake.replies.append(Reply(status=503, error_message="The model is overloaded."))
    with pytest.raises(errors.ServerError) as server:
        ok.models.generate_content(model=MODEL, contents="hi")
    assert server.value.code == 503 and server.value.status == "UNAVAILABLE"
