"""Stored responses across two gateway instances sharing PostgreSQL and Redis (issue 15 item 1).

A response written by instance A is continued, read and listed on instance B right away (the
client's next turn lands on the other instance behind a load balancer); a delete on B is seen by
A at once (A had it cached). Runs only on PostgreSQL with Redis, like tests/e2e/test_scaleout.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from tests.dbutil import create_database, drop_database, redis_url
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, Seeded, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake, AnthropicReply
from tests.fakes.base import ToolCall
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
pytestmark = pytest.mark.skipif(
    not (ON_POSTGRES and redis_url()),
    reason="two gateway instances need a shared PostgreSQL (DATABASE_URL=postgres://...) and "
    "Redis (REDIS_URL)",
)
MODEL = "anthropic/claude-sonnet-4-5"
START_TIMEOUT_S = 120.0


@dataclass
class Two:
    a: GatewayProc
    b: GatewayProc
    seeded: Seeded
    anthropic: AnthropicFake

    def sdk(self, gw: GatewayProc, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=gw.openai_base_url,
            api_key=key or self.seeded.user_key,
            max_retries=0,
            timeout=60,
        )


@pytest.fixture(scope="module")
async def two(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Two]:
    tmp = tmp_path_factory.mktemp("stored-scaleout")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    env = gateway_env(db, tmp, fakes)  # one Redis prefix and secret key for both
    a = GatewayProc(dict(env), tmp / "gateway-a.log")
    b = GatewayProc(dict(env), tmp / "gateway-b.log")
    try:
        await asyncio.gather(*(asyncio.to_thread(gw.start, START_TIMEOUT_S) for gw in (a, b)))
        yield Two(a, b, seeded, fakes["anthropic"])
    finally:
        await asyncio.gather(asyncio.to_thread(a.stop), asyncio.to_thread(b.stop))
        for fake in fakes.values():
            fake.stop()
        await drop_database(db)


async def test_a_conversation_moves_between_instances(two: Two) -> None:
    a, b = two.sdk(two.a), two.sdk(two.b)
    tool: Any = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    two.anthropic.replies.extend(
        [
            AnthropicReply(
                text=None,
                tool_calls=[ToolCall("lookup", {"q": "x"}, id="toolu_s1")],
                finish="tool_calls",
            ),
            AnthropicReply(text="Found it."),
            AnthropicReply(text="Bye."),
        ]
    )
    first = a.responses.create(model=MODEL, input="Look x up", tools=[tool])
    [call] = [o for o in first.output if o.type == "function_call"]
    # The very next request lands on B: it must find A's response at once.
    second = b.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "x=42"}],
        tools=[tool],
    )
    assert second.output_text == "Found it."
    third = a.responses.create(model=MODEL, previous_response_id=second.id, input="Thanks")
    assert third.output_text == "Bye."
    roles = [m["role"] for m in two.anthropic.requests[-1].json["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]

    assert b.responses.retrieve(third.id).output_text == "Bye."
    listed = list(b.responses.input_items.list(third.id, order="asc", limit=2))
    assert [i.type for i in listed] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    # Another organization's key gets nothing on either instance.
    for gw in (two.a, two.b):
        with pytest.raises(openai.NotFoundError):
            two.sdk(gw, two.seeded.other_key).responses.retrieve(third.id)

    # A has third cached (it wrote it); a delete on B is 404 on B at once and reaches A
    # through the bus (pub/sub: milliseconds, so A is given up to a second).
    assert a.responses.retrieve(third.id).id == third.id
    b.responses.delete(third.id)
    with pytest.raises(openai.NotFoundError):
        b.responses.retrieve(third.id)
    deadline = time.monotonic() + 1.0
    while True:
        try:
            a.responses.retrieve(third.id)
        except openai.NotFoundError:
            break
        assert time.monotonic() < deadline, "instance A still serves a deleted response"
        await asyncio.sleep(0.02)
    with pytest.raises(openai.NotFoundError):
        a.responses.create(model=MODEL, previous_response_id=third.id, input="again")
