"""Answer extras through the policies, with the official SDKs against the fakes:

- the response cache never replays a non-streamed answer as a degraded stream (an ``n=2`` answer
  with log probabilities: a streamed ask misses, its stream is cached apart and replayed whole;
  the non-streamed entry stays), and caches streamed answers with extras (Anthropic citations,
  server-tool blocks, ``pause_turn``, usage details) as the streams they were;
- Anthropic web searches (``usage.server_tool_use.web_search_requests``) are priced, $10 per
  1,000 on top of the tokens, in the log row and the cap's spend;
- DLP restores a placeholder split across a server tool's streamed input deltas and inside a
  ``citations_delta``;
- a Gemini-door request whose body fails to decode is logged with the model of its URL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import anthropic
import openai
import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from backend.ir.chat import Usage
from backend.pricing import PriceBook
from tests.e2e.conftest import Stack, StackSetup
from tests.e2e.gemini_support import gemini_client
from tests.e2e.harness import Seeded, orm, wait_for_rows
from tests.e2e.test_passthrough import (
    ANSWER_TEXT,
    SEARCH_RESULT,
    SEARCH_USE,
    WEB_SEARCH,
    anthropic_stream,
    document_request,
    two_choice_stream,
)
from tests.e2e.test_prompt_caching import LOGPROBS, n2_completion
from tests.fakes.base import Reply

CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"
EMAIL = "jane.doe@example.com"


async def _prepare(db: str, seeded: Seeded) -> None:
    from backend.data.models.settings import Setting, UserFeature
    from backend.data.models.tenancy import Organization

    # Alice (Acme) uses the response cache and has a weekly cap; Globex has DLP on.
    async with orm(db):
        await Setting.create(key="offered_features", value=["response_cache"])
        await UserFeature.create(user_id=seeded.user_id, feature="response_cache")
        await Organization.filter(id=seeded.other_org_id).update(dlp_enabled=True)


@pytest.fixture(scope="module")
def stack_setup() -> StackSetup:
    return StackSetup(seed={"weekly_cap": Decimal(100)}, prepare=_prepare)


@pytest.fixture
def stack(stack: Stack) -> Stack:
    stack.reset()
    return stack


class Seen:
    """The answers' headers an SDK client got (an httpx response hook)."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    def __call__(self, response: Any) -> None:
        self.headers.append(dict(response.headers))

    @property
    def last(self) -> dict[str, str]:
        return self.headers[-1]


def oai(stack: Stack, seen: Seen) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.seeded.user_key,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(event_hooks={"response": [seen]}, timeout=30),
    )


def ant(stack: Stack, seen: Seen, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=stack.gateway.url,
        api_key=key or stack.seeded.user_key,
        max_retries=0,
        http_client=anthropic.DefaultHttpxClient(event_hooks={"response": [seen]}, timeout=30),
    )


def calls(stack: Stack, provider: str, path: str) -> list[dict[str, Any]]:
    fake: Any = stack.fakes()[provider]
    return [r.json for r in fake.requests if path in r.path]


# -- the response cache ------------------------------------------------------------------------


async def test_a_streamed_ask_is_never_a_lossy_replay_and_its_stream_is_cached(
    stack: Stack,
) -> None:
    stack.openai.replies.append(Reply(raw=n2_completion(["A", "B"], LOGPROBS)))
    stack.openai.replies.append(two_choice_stream(["B", "C"]))
    seen = Seen()
    client = oai(stack, seen)
    ask: Any = [{"role": "user", "content": f"Two answers to {uuid.uuid4().hex}"}]

    first = client.chat.completions.create(model=GPT, messages=ask, n=2, logprobs=True)
    assert [c.message.content for c in first.choices] == ["A", "B"]

    def streamed() -> Any:
        with client.chat.completions.stream(model=GPT, messages=ask, n=2, logprobs=True) as stream:
            return stream.get_final_completion()

    # The cached answer has a second choice and log probabilities a replay would drop: a miss.
    live = streamed()
    assert len(calls(stack, "openai", "/chat/completions")) == 2
    assert "x-switchboard-cache" not in seen.last
    # The second streamed ask replays the recorded stream: every choice, logprobs, fingerprint.
    again = streamed()
    assert len(calls(stack, "openai", "/chat/completions")) == 2
    assert seen.last.get("x-switchboard-cache") == "hit"
    for completion in (live, again):
        assert [c.message.content for c in completion.choices] == ["A", "BC"]
        tokens = [[t.token for t in (c.logprobs.content or [])] for c in completion.choices]  # type: ignore[union-attr]
        assert tokens == [["A"], ["B", "C"]]
        assert completion.system_fingerprint == "fp_pt"
    # The non-streamed entry was kept, not overwritten by the stream.
    repeat = client.chat.completions.create(model=GPT, messages=ask, n=2, logprobs=True)
    assert seen.last.get("x-switchboard-cache") == "hit"
    assert [c.message.content for c in repeat.choices] == ["A", "B"]
    lp = repeat.choices[0].logprobs
    assert lp is not None and [t.token for t in lp.content or []] == ["A"]
    (row,) = await wait_for_rows(stack.database_url, 1, request_id=seen.headers[-2]["x-request-id"])
    assert row.cache_hit and row.streamed and Decimal(row.cost_usd) == 0


async def test_anthropic_streams_with_citations_and_server_tools_are_cached_whole(
    stack: Stack,
) -> None:
    stack.anthropic.replies.append(anthropic_stream())
    seen = Seen()
    request = document_request()
    request["messages"][-1]["content"] = f"And at night? {uuid.uuid4().hex}"
    finals = []
    for _ in range(2):
        with ant(stack, seen).messages.stream(model=CLAUDE, **request) as stream:  # type: ignore[arg-type]
            kinds = {e.type for e in stream}
            finals.append(stream.get_final_message())
        assert "citation" in kinds and "input_json" in kinds
    assert len(calls(stack, "anthropic", "/v1/messages")) == 1
    assert seen.last.get("x-switchboard-cache") == "hit"
    for final in finals:
        assert [b.model_dump(exclude_none=True) for b in final.content] == [
            SEARCH_USE,
            SEARCH_RESULT,
            ANSWER_TEXT,
        ]
        assert final.stop_reason == "pause_turn"
        assert final.usage.server_tool_use is not None
        assert final.usage.server_tool_use.web_search_requests == 1
        assert final.usage.service_tier == "standard"


# -- web search fees ---------------------------------------------------------------------------


def searched_answer(searches: int) -> Reply:
    body = {
        "id": f"msg_{uuid.uuid4().hex[:8]}",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [SEARCH_USE, SEARCH_RESULT, ANSWER_TEXT],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "output_tokens": 20,
            "server_tool_use": {"web_search_requests": searches},
        },
    }
    return Reply(raw=orjson.dumps(body))


async def test_web_searches_are_priced_in_the_row_and_the_cap(stack: Stack) -> None:
    from backend.data.models.logs import RequestLog, SpendCounter

    seen = Seen()
    stack.anthropic.replies.append(searched_answer(3))
    ant(stack, seen).messages.create(
        model=CLAUDE,
        max_tokens=100,
        tools=[WEB_SEARCH],  # type: ignore[list-item]
        messages=[{"role": "user", "content": f"Search {uuid.uuid4().hex}"}],
    )
    stack.anthropic.replies.append(anthropic_stream())  # one search, 120 in / 40 out
    with ant(stack, seen).messages.stream(model=CLAUDE, **document_request()) as stream:  # type: ignore[arg-type]
        stream.get_final_message()
    book = PriceBook()
    tokens_only = [
        book.cost(CLAUDE, Usage(input_tokens=100, output_tokens=20)),
        book.cost(CLAUDE, Usage(input_tokens=120, output_tokens=40)),
    ]
    for headers, tokens, searches in zip(seen.headers, tokens_only, (3, 1), strict=True):
        (row,) = await wait_for_rows(stack.database_url, 1, request_id=headers["x-request-id"])
        assert tokens is not None
        assert Decimal(row.cost_usd) == tokens + Decimal(10) * searches / 1000
    # The cap is settled at the rows' costs (searches included) once the counters caught up.
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
    assert spent == logged >= Decimal("0.04")


# -- DLP inside server-tool input deltas and citations ------------------------------------------


def split_placeholder_stream() -> Reply:
    """A web search whose query names ``[EMAIL_1]`` split across two input deltas, and a text
    block citing a source that quotes it."""

    def frame(event: dict[str, Any]) -> bytes:
        return f"event: {event['type']}\ndata: ".encode() + orjson.dumps(event) + b"\n\n"

    citation = {
        "type": "web_search_result_location",
        "url": "https://example.com/people",
        "title": "People",
        "encrypted_index": "Eo8BCioIAhgBIiQy",
        "cited_text": "Contact [EMAIL_1] for details.",
    }
    message = {
        "id": "msg_split",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 50, "output_tokens": 1},
    }

    def delta(index: int, body: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": index, "delta": body}

    events = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {**SEARCH_USE, "input": {}}},
        delta(0, {"type": "input_json_delta", "partial_json": '{"query": "who is [EMA'}),
        delta(0, {"type": "input_json_delta", "partial_json": 'IL_1]"}'}),
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": SEARCH_RESULT},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "text", "text": "", "citations": []},
        },
        delta(2, {"type": "citations_delta", "citation": citation}),
        delta(2, {"type": "text_delta", "text": "Write to [EMAIL"}),
        delta(2, {"type": "text_delta", "text": "_1]."}),
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 30, "server_tool_use": {"web_search_requests": 1}},
        },
        {"type": "message_stop"},
    ]
    return Reply(raw=b"".join(frame(e) for e in events), raw_content_type="text/event-stream")


async def test_dlp_restores_placeholders_split_across_server_tool_input_deltas(
    stack: Stack,
) -> None:
    stack.anthropic.replies.append(split_placeholder_stream())
    seen = Seen()
    with ant(stack, seen, key=stack.seeded.other_key).messages.stream(
        model=CLAUDE,
        max_tokens=200,
        tools=[WEB_SEARCH],  # type: ignore[list-item]
        messages=[{"role": "user", "content": f"Who is {EMAIL}?"}],
    ) as stream:
        pieces = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    [upstream] = calls(stack, "anthropic", "/v1/messages")
    assert EMAIL not in orjson.dumps(upstream).decode()
    assert upstream["messages"][0]["content"] == "Who is [EMAIL_1]?"
    # The streamed pieces join to the query with the value, valid JSON all along.
    assert orjson.loads("".join(pieces)) == {"query": f"who is {EMAIL}"}
    search, _, text = final.content
    assert search.type == "server_tool_use" and search.input == {"query": f"who is {EMAIL}"}
    assert text.type == "text" and text.text == f"Write to {EMAIL}."
    [cited] = text.citations or []
    assert cited.cited_text == f"Contact {EMAIL} for details."
    assert cited.encrypted_index == "Eo8BCioIAhgBIiQy"  # type: ignore[union-attr]


# -- the Gemini door's log of an undecodable body -----------------------------------------------


async def test_a_gemini_body_that_fails_to_decode_is_logged_with_its_model(stack: Stack) -> None:
    model = f"openai/gpt-4o-mini-{uuid.uuid4().hex[:8]}"
    client = gemini_client(stack)  # kept: a client nobody holds is closed mid-call
    with pytest.raises(genai_errors.ClientError) as info:
        client.models.generate_content(
            model=model, contents=[types.Content(role="user", parts=[])]
        )
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    (row,) = await wait_for_rows(stack.database_url, 1, requested_model=model)
    assert row.status == 400 and row.endpoint == "/v1beta/models/{model}:generateContent"
    assert row.error_message and "contents[0].parts" in row.error_message
    assert all(not fake.requests for fake in stack.fakes().values())  # type: ignore[attr-defined]
