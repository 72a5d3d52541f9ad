"""Streams are delivered as the upstream produces them: what arrived is sent before the next read.

The gateway sends the frames of one upstream read together (``proxy/streaming.py``). Here the
fake upstream sends the first chunks, then stalls: the client must already hold the first text
while the upstream is silent, in both inbound protocols and across translation.
"""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from tests.e2e.conftest import Stack
from tests.fakes.base import Reply

PAUSE_S = 2.0
#: Far below the pause: the first text must not wait for the rest of the answer.
FIRST_TEXT_BUDGET_S = 1.0
CLAUDE = "anthropic/claude-sonnet-4-5"
GPT = "openai/gpt-4o-mini"


def slow_reply() -> Reply:
    # OpenAI frames: role, then one per piece; Anthropic frames: message_start, block start,
    # ping, then one per piece. Pausing at frame 5 leaves text before it in both.
    return Reply(text="abcdefghij", chunks=10, pause_after=5, pause_s=PAUSE_S)


def openai_stream(stack: Stack, model: str) -> tuple[float, float, str]:
    client = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )
    started = time.monotonic()
    first: float | None = None
    text = ""
    for chunk in client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta:
            first = first if first is not None else time.monotonic() - started
            text += delta
    assert first is not None
    return first, time.monotonic() - started, text


def anthropic_stream(stack: Stack, model: str) -> tuple[float, float, str]:
    client = anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
    )
    started = time.monotonic()
    first: float | None = None
    text = ""
    with client.messages.stream(
        model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for piece in stream.text_stream:
            if piece:
                first = first if first is not None else time.monotonic() - started
                text += piece
    assert first is not None
    return first, time.monotonic() - started, text


@pytest.mark.parametrize(
    ("inbound", "model"),
    [("openai", GPT), ("anthropic", CLAUDE), ("anthropic", GPT), ("openai", CLAUDE)],
)
async def test_first_text_arrives_while_the_upstream_is_still_working(
    stack: Stack, inbound: str, model: str
) -> None:
    stack.reset()
    upstream = stack.anthropic if model == CLAUDE else stack.openai
    upstream.replies.append(slow_reply())
    run = openai_stream if inbound == "openai" else anthropic_stream
    first, total, text = run(stack, model)
    assert text == "abcdefghij"
    assert total >= PAUSE_S  # the upstream really stalled
    assert first < FIRST_TEXT_BUDGET_S, f"first text after {first:.2f}s: the stream was held back"
