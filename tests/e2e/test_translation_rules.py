"""Issue 14 items 4 and 5 through the real gateway with the official SDKs: per-model parameter
rules and "never a silent drop". Each test checks what the fake upstream received (or that it
received nothing) and what the SDK client got.

The README's "What translates to what" table lists these behaviours.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pytest

from tests.e2e.conftest import Stack, StackSetup
from tests.e2e.harness import Seeded, orm, wait_for_rows
from tests.fakes.base import Reply

GEMINI = "gemini/gemini-2.5-flash"
OLLAMA = "ollama/llama3.2"
CLAUDE = "anthropic/claude-sonnet-4-5"
#: A fallback chain whose primary cannot return two choices and whose fallback can.
CHAIN = ("gemini/gemini-chain-primary", ["ollama/llama3.2", "openai/gpt-chain-next"])
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def _prepare(db: str, seeded: Seeded) -> None:
    from backend.data.models.routing import FallbackChain

    async with orm(db):
        await FallbackChain.create(primary_model=CHAIN[0], chain=CHAIN[1])


@pytest.fixture(scope="module")
def stack_setup() -> StackSetup:
    return StackSetup(prepare=_prepare)


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """The module's stack (``conftest``), with the fakes' scripts and records reset."""
    stack.reset()
    return stack


def oai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )


def ant(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )


HI = [{"role": "user", "content": "hi"}]


def chat_requests(stack: Stack) -> dict[str, list[Any]]:
    """What each fake received on its chat endpoint (model listing and probes left out)."""
    paths = {
        "openai": "/v1/chat/completions",
        "anthropic": "/v1/messages",
        "gemini": "generateContent",
        "ollama": "/api/chat",
    }
    out: dict[str, list[Any]] = {}
    for name, fake in stack.fakes().items():
        out[name] = [r.json for r in fake.requests if paths[name] in r.path]  # type: ignore[attr-defined]
    return out


def openai_refusal(exc: openai.BadRequestError) -> dict[str, Any]:
    assert exc.status_code == 400
    body = exc.response.json()
    assert set(body) == {"error"}
    return dict(body["error"])


def anthropic_refusal(exc: anthropic.BadRequestError) -> str:
    assert exc.status_code == 400
    body = exc.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


# -- item 4: per-model parameter rules -----------------------------------------------------------


async def test_anthropic_max_tokens_reaches_o3_mini_as_max_completion_tokens(stack: Stack) -> None:
    stack.openai.replies.append(Reply(text="reasoned"))
    msg = ant(stack).messages.create(
        model="openai/o3-mini",
        max_tokens=300,
        messages=HI,  # type: ignore[arg-type]
        # The 2.x SDK has no sampling arguments; clients send them in the body all the same.
        extra_body={"temperature": 1},
    )
    assert [b.text for b in msg.content if b.type == "text"] == ["reasoned"]
    [sent] = chat_requests(stack)["openai"]
    assert sent["model"] == "o3-mini" and sent["max_completion_tokens"] == 300
    # max_tokens is a 400 on the real API; temperature 1 is the model's own default.
    assert "max_tokens" not in sent and "temperature" not in sent


async def test_sampling_on_a_reasoning_model_is_a_400_naming_parameter_and_model(
    stack: Stack,
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(stack).chat.completions.create(model="openai/o3-mini", messages=HI, temperature=0.2)  # type: ignore[arg-type]
    err = openai_refusal(info.value)
    assert err["param"] == "temperature" and err["code"] == "unsupported_value"
    assert "'temperature'" in err["message"] and "o3-mini" in err["message"]
    with pytest.raises(anthropic.BadRequestError) as ainfo:
        ant(stack).messages.create(
            model="openai/o4-mini",
            max_tokens=50,
            messages=HI,  # type: ignore[arg-type]
            extra_body={"top_p": 0.5},
        )
    message = anthropic_refusal(ainfo.value)
    assert "'top_p'" in message and "o4-mini" in message and "openai" in message
    assert chat_requests(stack)["openai"] == []
    rows = await wait_for_rows(stack.database_url, 2, status=400, actual_model="openai/o4-mini")
    assert rows and rows[0].provider == "openai"


async def test_seed_and_sampling_reach_gemini_and_ollama(stack: Stack) -> None:
    client = oai(stack)
    for model in (GEMINI, OLLAMA):
        resp = client.chat.completions.create(
            model=model,
            messages=HI,  # type: ignore[arg-type]
            seed=7,
            frequency_penalty=0.5,
            presence_penalty=0.25,
            max_tokens=40,
        )
        assert resp.choices[0].message.content == "ok"
    sent = chat_requests(stack)
    gen = sent["gemini"][0]["generationConfig"]
    assert gen == {
        "seed": 7,
        "frequencyPenalty": 0.5,
        "presencePenalty": 0.25,
        "maxOutputTokens": 40,
    }
    options = sent["ollama"][0]["options"]
    assert options == {
        "seed": 7,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.25,
        "num_predict": 40,
    }


async def test_anthropic_top_k_reaches_gemini_and_ollama(stack: Stack) -> None:
    for model in (GEMINI, OLLAMA):
        ant(stack).messages.create(
            model=model,
            max_tokens=20,
            messages=HI,  # type: ignore[arg-type]
            extra_body={"top_k": 5},
        )
    sent = chat_requests(stack)
    assert sent["gemini"][0]["generationConfig"]["topK"] == 5
    assert sent["ollama"][0]["options"]["top_k"] == 5


# -- item 5: never a silent drop -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, None),
        ({"seed": 3}, "seed"),
    ],
)
async def test_what_a_provider_cannot_honour_is_a_400_naming_field_and_provider(
    stack: Stack, kwargs: dict[str, Any], param: str | None
) -> None:
    providers = {"anthropic": CLAUDE}
    if param != "seed":  # Gemini and Ollama translate a seed
        providers |= {"gemini": GEMINI, "ollama": OLLAMA}
    for provider, model in providers.items():
        with pytest.raises(openai.BadRequestError) as info:
            oai(stack).chat.completions.create(model=model, messages=HI, **kwargs)  # type: ignore[call-overload]
        err = openai_refusal(info.value)
        expected = param or err["param"]
        assert expected in ("audio", "modalities") or param is not None
        assert err["param"] == expected and f"'{expected}'" in err["message"]
        assert provider in err["message"], err
    assert all(not sent for sent in chat_requests(stack).values())


async def test_n_and_logprobs_come_back_from_an_openai_upstream(stack: Stack) -> None:
    logprobs = {
        "content": [{"token": "A", "logprob": -0.25, "bytes": [65], "top_logprobs": []}],
        "refusal": None,
    }
    completion = {
        "id": "chatcmpl-n2",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": logprobs if i == 0 else {"content": [], "refusal": None},
                "finish_reason": "stop",
            }
            for i, text in enumerate(["A", "B"])
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }
    stack.openai.replies.append(Reply(raw=orjson.dumps(completion)))
    resp = oai(stack).chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=HI,  # type: ignore[arg-type]
        n=2,
        logprobs=True,
    )
    assert [c.message.content for c in resp.choices] == ["A", "B"]
    assert [c.index for c in resp.choices] == [0, 1]
    first = resp.choices[0].logprobs
    assert first is not None and first.content is not None
    assert [(t.token, t.logprob) for t in first.content] == [("A", -0.25)]
    [sent] = chat_requests(stack)["openai"]
    assert sent["n"] == 2 and sent["logprobs"] is True
    # Streamed, they pass through as well: tests/e2e/test_passthrough.py.


async def test_forced_tool_choice_to_ollama_is_refused_in_each_callers_protocol(
    stack: Stack,
) -> None:
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        with pytest.raises(openai.BadRequestError) as info:
            oai(stack).chat.completions.create(
                model=OLLAMA,
                messages=HI,  # type: ignore[arg-type]
                tools=[TOOL],  # type: ignore[list-item]
                tool_choice=choice,  # type: ignore[arg-type]
            )
        err = openai_refusal(info.value)
        assert err["param"] == "tool_choice" and "ollama" in err["message"]
    with pytest.raises(anthropic.BadRequestError) as ainfo:
        ant(stack).messages.create(
            model=OLLAMA,
            max_tokens=20,
            messages=HI,  # type: ignore[arg-type]
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
            tool_choice={"type": "any"},
        )
    message = anthropic_refusal(ainfo.value)
    assert "'tool_choice'" in message and "ollama" in message
    assert chat_requests(stack)["ollama"] == []


async def test_image_urls_to_ollama_are_refused_and_data_urls_are_inline_images(
    stack: Stack,
) -> None:
    def look(url: str) -> list[dict[str, Any]]:
        return [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ]

    with pytest.raises(openai.BadRequestError) as info:
        oai(stack).chat.completions.create(
            model=OLLAMA,
            messages=look("https://example.com/cat.png"),  # type: ignore[arg-type]
        )
    err = openai_refusal(info.value)
    assert err["param"] == "messages" and "image URLs" in err["message"]
    assert chat_requests(stack)["ollama"] == []
    resp = oai(stack).chat.completions.create(
        model=OLLAMA,
        messages=look("data:image/png;base64,iVBORw0KGgo="),  # type: ignore[arg-type]
    )
    assert resp.choices[0].message.content == "ok"
    [sent] = chat_requests(stack)["ollama"]
    assert sent["messages"] == [
        {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]}
    ]
    assert b"[image" not in orjson.dumps(sent)


async def test_fallback_skips_candidates_that_cannot_honour_the_request(stack: Stack) -> None:
    stack.openai.replies.append(Reply(text="from the one that can"))
    resp = oai(stack).chat.completions.create(
        model=CHAIN[0],
        messages=HI,  # type: ignore[arg-type]
        n=2,
    )
    assert resp.choices[0].message.content == "from the one that can"
    sent = chat_requests(stack)
    # Neither Gemini nor Ollama was sent a request that would have lost the second choice.
    assert sent["gemini"] == [] and sent["ollama"] == []
    assert [r["n"] for r in sent["openai"]] == [2]
    rows = await wait_for_rows(stack.database_url, 1, actual_model="openai/gpt-chain-next")
    assert rows[0].status == 200
