"""Prompt caching and the answer extras through the real gateway, with the official SDKs.

- Issue 14 item 6: ``cache_control`` on OpenAI content parts reaches Anthropic on the
  corresponding blocks and is a no-op for OpenAI, Gemini and Ollama (what each fake received);
  an Anthropic answer's cache reads and writes are priced at their own rates in the log row and
  in the cap's spend.
- ``ChatResponse.extra`` (an OpenAI ``n > 1`` answer's further choices and its logprobs) survives
  the response cache (a hit returns both choices and the logprobs) and DLP restore (the second
  choice's text comes back with the original values).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import openai
import orjson
import pytest

from tests.e2e.conftest import Stack, StackSetup
from tests.e2e.harness import Seeded, orm, wait_for_rows
from tests.fakes.anthropic_fake import AnthropicReply
from tests.fakes.base import Reply

CLAUDE = "anthropic/claude-sonnet-4-5"
EPHEMERAL = {"type": "ephemeral"}
WEEKLY_CAP = Decimal(100)
EMAIL = "jane.doe@example.com"


async def _prepare(db: str, seeded: Seeded) -> None:
    from backend.data.models.settings import Setting, UserFeature
    from backend.data.models.tenancy import Organization

    # Alice (Acme) has a weekly cap and uses the response cache; Globex has DLP on.
    async with orm(db):
        await Setting.create(key="offered_features", value=["response_cache"])
        await UserFeature.create(user_id=seeded.user_id, feature="response_cache")
        await Organization.filter(id=seeded.other_org_id).update(dlp_enabled=True)


@pytest.fixture(scope="module")
def stack_setup() -> StackSetup:
    return StackSetup(seed={"weekly_cap": WEEKLY_CAP}, prepare=_prepare)


@pytest.fixture
def stack(stack: Stack) -> Stack:
    """The module's stack (``conftest``), with the fakes' scripts and records reset."""
    stack.reset()
    return stack


def oai(stack: Stack, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=key or stack.seeded.user_key,
        max_retries=0,
    )


def chat_requests(fake: Any) -> list[Any]:
    paths = ("/v1/chat/completions", "/v1/messages", "generateContent", "/api/chat")
    return [r.json for r in fake.requests if any(p in r.path for p in paths)]


def text(value: str, cc: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "text", "text": value, **({"cache_control": cc} if cc else {})}


def marked_conversation() -> list[Any]:
    """System, user and tool parts marked the way other gateways accept."""
    return [
        {"role": "system", "content": [text("You are a careful assistant. " * 50, EPHEMERAL)]},
        {"role": "user", "content": [text("Read the manual."), text("MANUAL " * 200, EPHEMERAL)]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [text("RESULT " * 100, EPHEMERAL)]},
    ]


TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


# -- item 6: cache_control from OpenAI-format clients ---------------------------------------------


async def test_cache_control_on_openai_parts_reaches_anthropic_blocks(stack: Stack) -> None:
    stack.anthropic.replies.append(
        AnthropicReply(text="done", input_tokens=2000, cached_tokens=1200, cache_write_tokens=600)
    )
    resp = oai(stack).chat.completions.create(
        model=CLAUDE,
        messages=marked_conversation(),  # type: ignore[arg-type]
        tools=[TOOL],  # type: ignore[list-item]
    )
    assert resp.choices[0].message.content == "done"
    assert resp.usage is not None and resp.usage.prompt_tokens == 2000
    details = resp.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == 1200
    [sent] = chat_requests(stack.anthropic)
    assert sent["system"] == [
        {"type": "text", "text": "You are a careful assistant. " * 50, "cache_control": EPHEMERAL}
    ]
    user, assistant, results = sent["messages"]
    assert user["content"] == [
        {"type": "text", "text": "Read the manual."},
        {"type": "text", "text": "MANUAL " * 200, "cache_control": EPHEMERAL},
    ]
    assert assistant["content"][0]["type"] == "tool_use"
    assert results["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "call_1",
            "content": [{"type": "text", "text": "RESULT " * 100, "cache_control": EPHEMERAL}],
        }
    ]


@pytest.mark.parametrize(
    ("model", "fake"),
    [
        ("openai/gpt-4o-mini", "openai"),
        ("gemini/gemini-2.5-flash", "gemini"),
        ("ollama/llama3.2", "ollama"),
    ],
)
async def test_cache_control_is_a_no_op_where_caching_is_not_explicit(
    stack: Stack, model: str, fake: str
) -> None:
    """OpenAI caches by itself, Gemini implicitly, Ollama not at all: the request they get is
    the one the unmarked conversation gives, and the client gets its answer."""
    unmarked = orjson.loads(
        orjson.dumps(marked_conversation()).replace(b',"cache_control":{"type":"ephemeral"}', b"")
    )
    upstream = stack.fakes()[fake]
    for messages in (marked_conversation(), unmarked):
        # The app key: no response cache, so each ask reaches the provider.
        resp = oai(stack, stack.seeded.app_key).chat.completions.create(
            model=model,
            messages=messages,
            tools=[TOOL],  # type: ignore[list-item]
        )
        assert resp.choices[0].message.content
    marked_body, unmarked_body = chat_requests(upstream)
    assert "cache_control" not in orjson.dumps(marked_body).decode()
    assert marked_body == unmarked_body


async def test_cache_reads_and_writes_are_priced_at_their_own_rates(stack: Stack) -> None:
    from backend.data.models.logs import SpendCounter
    from backend.pricing import PriceBook

    fresh, read, write, out = 1000, 30000, 4000, 500
    stack.anthropic.replies.append(
        AnthropicReply(
            text="cached",
            input_tokens=fresh + read + write,
            cached_tokens=read,
            cache_write_tokens=write,
            output_tokens=out,
        )
    )
    raw = oai(stack).chat.completions.with_raw_response.create(
        model=CLAUDE,
        messages=[{"role": "user", "content": [text(uuid.uuid4().hex, EPHEMERAL)]}],
    )
    assert raw.parse().choices[0].message.content == "cached"
    rates = PriceBook().price(CLAUDE)
    assert rates is not None
    assert rates.cached_per_mtok is not None and rates.cache_write_per_mtok is not None
    # Three different rates, so a cost that priced any of them as plain input would differ.
    assert len({rates.input_per_mtok, rates.cached_per_mtok, rates.cache_write_per_mtok}) == 3
    want = (
        fresh * rates.input_per_mtok
        + read * rates.cached_per_mtok
        + write * rates.cache_write_per_mtok
        + out * rates.output_per_mtok
    ) / Decimal(1_000_000)
    (row,) = await wait_for_rows(stack.database_url, 1, request_id=raw.headers["x-request-id"])
    assert (row.input_tokens, row.cached_tokens, row.output_tokens) == (
        fresh + read + write,
        read,
        out,
    )
    assert Decimal(row.cost_usd) == want
    # The cap is settled at the rows' costs: its spend is the sum of Alice's rows (this one
    # included), once the counter has caught up with the batched writes.
    from backend.data.models.logs import RequestLog

    deadline = time.monotonic() + 20
    spent, logged = Decimal(-1), Decimal(0)
    while time.monotonic() < deadline:
        async with orm(stack.database_url):
            counters = await SpendCounter.filter(scope="user", scope_id=stack.seeded.user_id)
            rows = await RequestLog.filter(user_id=stack.seeded.user_id, app_id=None)
        spent = sum((Decimal(c.spent_usd) for c in counters), Decimal(0))
        logged = sum((Decimal(r.cost_usd) for r in rows if r.cost_usd is not None), Decimal(0))
        if spent == logged:
            break
        await asyncio.sleep(0.1)
    assert spent == logged >= want > 0


# -- ChatResponse.extra through the response cache and DLP restore ---------------------------------


def n2_completion(texts: list[str], logprobs: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": t, "refusal": None},
                    "logprobs": logprobs if i == 0 else None,
                    "finish_reason": "stop",
                }
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        }
    )


LOGPROBS = {
    "content": [{"token": "A", "logprob": -0.25, "bytes": [65], "top_logprobs": []}],
    "refusal": None,
}


async def test_a_cache_hit_returns_every_choice_and_the_logprobs(stack: Stack) -> None:
    stack.openai.replies.append(Reply(raw=n2_completion(["A", "B"], LOGPROBS)))
    ask = [{"role": "user", "content": f"Two answers to {uuid.uuid4().hex}"}]
    answers = []
    ids = []
    for _ in range(2):
        raw = oai(stack).chat.completions.with_raw_response.create(
            model="openai/gpt-4o-mini",
            messages=ask,  # type: ignore[arg-type]
            n=2,
            logprobs=True,
        )
        answers.append(raw.parse())
        ids.append(raw.headers["x-request-id"])
    assert len(chat_requests(stack.openai)) == 1  # the second came from the cache
    (hit,) = await wait_for_rows(stack.database_url, 1, request_id=ids[1])
    assert hit.cache_hit
    for resp in answers:
        assert [c.message.content for c in resp.choices] == ["A", "B"]
        assert [c.index for c in resp.choices] == [0, 1]
        first = resp.choices[0].logprobs
        assert first is not None and first.content is not None
        assert [(t.token, t.logprob) for t in first.content] == [("A", -0.25)]


async def test_dlp_restores_the_values_in_every_choice(stack: Stack) -> None:
    """Globex has DLP on: the provider sees a placeholder, both choices name the value."""
    # The placeholder the gateway will send is only known from what the provider received, so
    # the fake echoes it: a first request learns it, the scripted n=2 answer then uses it.
    oai(stack, stack.seeded.other_key).chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": f"Write to {EMAIL}."}],
    )
    [probe] = chat_requests(stack.openai)
    sent_text = probe["messages"][0]["content"]
    assert EMAIL not in orjson.dumps(probe).decode()
    placeholder = sent_text.removeprefix("Write to ").removesuffix(".")
    assert placeholder.startswith("[") and placeholder.endswith("]")
    stack.openai.replies.append(
        Reply(raw=n2_completion([f"Mail {placeholder}.", f"Also {placeholder}!"], LOGPROBS))
    )
    resp = oai(stack, stack.seeded.other_key).chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": f"Write to {EMAIL}."}],
        n=2,
    )
    assert [c.message.content for c in resp.choices] == [f"Mail {EMAIL}.", f"Also {EMAIL}!"]
    assert EMAIL not in orjson.dumps(chat_requests(stack.openai)).decode()
