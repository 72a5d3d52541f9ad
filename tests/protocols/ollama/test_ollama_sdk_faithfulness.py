"""The official ``ollama`` Python client against our goldens and our fake.

- Golden answers served raw parse in the client to what our decoder finds.
- The client, given the same conversation, sends the body our encoder builds.
- The client talks to ``OllamaFake`` (chat, stream, tools, embed, list, errors) without noticing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from backend.ir.chat import TextPart, ToolCallPart
from backend.ir.stream import TextDelta
from backend.protocols.ollama import decode_response, encode_request
from tests.fakes.base import Reply, ToolCall
from tests.fakes.ollama_fake import OllamaFake
from tests.protocols.ollama.ir_samples import tool_round_trip
from tests.protocols.ollama.test_ollama_golden import decode_stream

ollama = pytest.importorskip("ollama")

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def fake() -> Iterator[OllamaFake]:
    with OllamaFake() as f:
        yield f  # type: ignore[misc]


@pytest.fixture
def client(fake: OllamaFake) -> Any:
    fake.reset()
    return ollama.Client(host=fake.base_url)


@pytest.mark.parametrize(
    "golden",
    ["response_text.json", "response_tool_calls.json", "response_length.json"],
)
def test_client_reads_golden_answers_like_our_decoder(
    fake: OllamaFake, client: Any, golden: str
) -> None:
    raw = (GOLDEN / golden).read_bytes()
    fake.replies.append(Reply(raw=raw))
    sdk = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=False)
    ours = decode_response(orjson.loads(raw))
    assert sdk.message.content == "".join(p.text for p in ours.content if isinstance(p, TextPart))
    assert [
        (c.function.name, dict(c.function.arguments)) for c in sdk.message.tool_calls or []
    ] == [(p.name, orjson.loads(p.arguments)) for p in ours.content if isinstance(p, ToolCallPart)]
    assert (sdk.prompt_eval_count, sdk.eval_count) == (
        ours.usage.input_tokens,
        ours.usage.output_tokens,
    )
    assert sdk.done_reason == ("length" if ours.finish_reason == "length" else "stop")


@pytest.mark.parametrize("golden", ["stream_text.ndjson", "stream_tool_calls.ndjson"])
def test_client_reads_golden_streams_like_our_decoder(
    fake: OllamaFake, client: Any, golden: str
) -> None:
    raw = (GOLDEN / golden).read_bytes()
    fake.replies.append(Reply(raw=raw, raw_content_type="application/x-ndjson"))
    parts = list(client.chat(model="llama3.2", messages=[], stream=True))
    ours = decode_stream(raw)
    assert "".join(p.message.content or "" for p in parts) == "".join(
        e.text for e in ours if isinstance(e, TextDelta)
    )
    assert parts[-1].done is True and parts[-1].eval_count


def test_client_request_body_equals_our_encoding(fake: OllamaFake, client: Any) -> None:
    """The official client's body for the same conversation is what our encoder sends."""
    expected = encode_request(tool_round_trip(), "qwen3:8b", stream=False)
    client.chat(
        model="qwen3:8b",
        messages=expected["messages"],
        tools=expected["tools"],
        stream=False,
        options=expected["options"],
        format=expected["format"],
    )
    sent = fake.requests[-1].json
    assert sent["messages"] == expected["messages"]
    # The client's typed schema keeps only the keys Ollama reads; the server ignores the rest.
    for tool in expected["tools"]:
        tool["function"]["parameters"].pop("additionalProperties", None)
    assert sent["tools"] == expected["tools"]
    assert {k: sent[k] for k in ("model", "stream", "options", "format")} == {
        k: expected[k] for k in ("model", "stream", "options", "format")
    }


def test_client_against_fake_end_to_end(fake: OllamaFake, client: Any) -> None:
    resp = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert resp.message.content == "ok" and resp.done and resp.model == "llama3.2:latest"
    assert fake.requests[-1].json["stream"] is False

    fake.replies.append(Reply(text="abcdef", chunks=3))
    parts = list(client.chat(model="llama3.2", messages=[], stream=True))
    assert [p.message.content for p in parts] == ["ab", "cd", "ef", ""]
    assert [p.done for p in parts] == [False, False, False, True]

    fake.replies.append(Reply(text=None, tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]))
    resp = client.chat(model="qwen3:8b", messages=[])
    assert resp.message.tool_calls[0].function.arguments == {"city": "Oslo"}
    assert resp.done_reason == "stop"

    emb = client.embed(model="nomic-embed-text", input=["a", "b"], dimensions=4)
    assert [len(v) for v in emb.embeddings] == [4, 4]
    assert [m.model for m in client.list().models] == fake.models

    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama9", messages=[])
    assert info.value.status_code == 404 and "not found" in info.value.error
