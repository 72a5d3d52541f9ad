"""What happens when the routed model fails, through the real gateway and the official SDKs:
every fallback trigger, connection refused, a 400 that must not fall back, streams that fail
before or after their first byte, bounded retries, the circuit breaker, and billing of only the
answering attempt. Where a request goes in the first place is ``test_routing.py``; the shared
stack and calls are ``routing_support.py``.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import anthropic
import openai
import pytest

from tests.e2e.harness import orm, request_rows, wait_for_rows
from tests.e2e.routing_support import (
    CIRCUIT_COOLDOWN,
    SDKS,
    TRIGGER_CASES,
    TRIGGERS,
    RoutingStack,
    ask,
    case_model,
    models_called,
    request_id_of,
    status_of,
)
from tests.e2e.routing_support import rstack as rstack
from tests.fakes.base import Reply

# -- fallback triggers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("trigger", "sdk", "stream"), TRIGGER_CASES)
async def test_fallback_trigger_moves_to_the_next_model(
    rstack: RoutingStack, trigger: str, sdk: str, stream: bool
) -> None:
    rstack.reset()
    make_replies, primary_attempts = TRIGGERS[trigger]
    name = case_model(trigger, sdk, stream)
    rstack.openai.replies.extend([*make_replies(), Reply(text="from the fallback")])
    answer = ask(rstack, sdk, f"openai/{name}", stream=stream)
    assert answer.text == "from the fallback"
    assert models_called(rstack.openai) == [name] * primary_attempts + [f"{name}-next"]
    assert answer.model == f"openai/{name}-next"
    assert answer.headers["x-switchboard-attempts"] == str(primary_attempts + 1)
    row, superseded = await request_rows(rstack, answer.request_id, primary_attempts + 1)
    assert row.status == 200 and row.streamed is stream
    assert (row.requested_model, row.actual_model) == (f"openai/{name}", f"openai/{name}-next")
    assert row.attempts == primary_attempts + 1
    assert [r.actual_model for r in superseded] == [f"openai/{name}"] * primary_attempts
    for r in superseded:
        assert r.status >= 429 and r.error_type in (
            "upstream",
            "timeout",
            "unavailable",
            "rate_limit",
        )
        assert r.cost_usd is None and r.input_tokens == r.output_tokens == 0


@pytest.mark.parametrize("sdk", SDKS)
async def test_connection_refused_moves_to_the_next_model(rstack: RoutingStack, sdk: str) -> None:
    rstack.reset()
    rstack.openai.replies.append(Reply(text="from the fallback"))
    answer = ask(rstack, sdk, f"dead/m-{sdk}", stream=sdk == "anthropic")
    assert answer.text == "from the fallback"
    assert answer.model == f"openai/gpt-conn-{sdk}-next"
    assert models_called(rstack.openai) == [f"gpt-conn-{sdk}-next"]
    row, superseded = await request_rows(rstack, answer.request_id, 2)
    assert row.status == 200 and row.actual_model == f"openai/gpt-conn-{sdk}-next"
    assert superseded and all(
        r.actual_model == f"dead/m-{sdk}" and r.status == 503 and r.error_type == "unavailable"
        for r in superseded
    )


@pytest.mark.parametrize("sdk", SDKS)
async def test_bad_request_from_upstream_does_not_fall_back(rstack: RoutingStack, sdk: str) -> None:
    rstack.reset()
    name = case_model("400", sdk, False)
    rstack.openai.replies.append(Reply(status=400, error_message="bad parameter"))
    with pytest.raises((openai.BadRequestError, anthropic.BadRequestError)) as info:
        ask(rstack, sdk, f"openai/{name}")
    assert "bad parameter" in str(info.value)
    assert models_called(rstack.openai) == [name]  # no retry, no fallback
    rid = request_id_of(info.value)
    row, superseded = await request_rows(rstack, rid, 1)
    assert row.status == 400 and row.actual_model == f"openai/{name}" and row.attempts == 1
    await asyncio.sleep(0.3)  # a superseded row would have been flushed with the request's own
    _, superseded = await request_rows(rstack, rid, 1)
    assert not superseded


# -- streams --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
async def test_stream_that_sent_bytes_does_not_fall_back(rstack: RoutingStack, sdk: str) -> None:
    rstack.reset()
    rstack.openai.replies.append(
        Reply(text="the first part and then nothing", chunks=10, drop_after=3)
    )
    got: list[str] = []
    if sdk == "openai":
        oc = openai.OpenAI(
            base_url=rstack.gateway.openai_base_url, api_key=rstack.seeded.user_key, max_retries=0
        )
        with pytest.raises(openai.APIError) as oinfo:
            for chunk in oc.chat.completions.create(
                model=f"openai/gpt-drop-{sdk}",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            ):
                got.extend(c.delta.content or "" for c in chunk.choices)
        message = str(oinfo.value)
    else:
        ac = anthropic.Anthropic(
            base_url=rstack.gateway.url, api_key=rstack.seeded.user_key, max_retries=0
        )
        with pytest.raises(anthropic.APIError) as ainfo:
            with ac.messages.stream(
                model=f"openai/gpt-drop-{sdk}",
                max_tokens=50,
                messages=[{"role": "user", "content": "hi"}],
            ) as s:
                got.extend(s.text_stream)
        message = str(ainfo.value)
    assert "".join(got) and "the first part".startswith("".join(got)[:5])
    assert "upstream" in message.lower() or "truncated" in message.lower()
    # Neither a retry of the same model nor the fallback: bytes already reached the client.
    assert models_called(rstack.openai) == [f"gpt-drop-{sdk}"]
    assert rstack.anthropic.requests == []
    rows = await wait_for_rows(rstack.database_url, 1, requested_model=f"openai/gpt-drop-{sdk}")
    assert len(rows) == 1 and not rows[0].superseded
    assert rows[0].status >= 500 and rows[0].streamed and rows[0].attempts == 1


@pytest.mark.parametrize("sdk", SDKS)
async def test_stream_failing_before_its_first_byte_falls_back(
    rstack: RoutingStack, sdk: str
) -> None:
    rstack.reset()
    # 200 and headers, then the connection drops before the first event (on both attempts).
    # The fallback is on the same provider: its success also resets the provider's breaker,
    # which counts dropped connections.
    rstack.openai.replies.extend(
        [Reply(drop_after=0), Reply(drop_after=0), Reply(text="fallback streamed", chunks=3)]
    )
    answer = ask(rstack, sdk, f"openai/gpt-early-{sdk}", stream=True)
    assert answer.text == "fallback streamed"
    assert answer.model == f"openai/gpt-early-{sdk}-next"
    assert models_called(rstack.openai) == [f"gpt-early-{sdk}"] * 2 + [f"gpt-early-{sdk}-next"]
    row, superseded = await request_rows(rstack, answer.request_id, 3)
    assert row.status == 200 and row.streamed and row.attempts == 3
    assert [r.actual_model for r in superseded] == [f"openai/gpt-early-{sdk}"] * 2


# -- bounded retries ------------------------------------------------------------------------------


async def test_bounded_retries_counted_at_the_upstream(rstack: RoutingStack) -> None:
    rstack.reset()
    rstack.openai.replies.extend([Reply(status=500) for _ in range(10)])
    with pytest.raises(openai.APIStatusError) as info:
        ask(rstack, "openai", "openai/gpt-retry")
    assert status_of(info.value) == 502
    # One retry per model, then the next model, then the last error goes back: 2 x 2 calls.
    assert models_called(rstack.openai) == ["gpt-retry"] * 2 + ["gpt-retry-next"] * 2
    assert len(rstack.openai.replies) == 6
    rid = request_id_of(info.value)
    row, superseded = await request_rows(rstack, rid, 4)
    assert row.status == 502 and row.attempts == 4
    assert row.actual_model == "openai/gpt-retry-next"
    assert len(superseded) == 3


# -- circuit breaker ------------------------------------------------------------------------------


async def test_circuit_opens_skips_the_model_and_recovers_after_cooldown(
    rstack: RoutingStack,
) -> None:
    fake = rstack.strat
    fake.reset()
    # Two requests whose primary fails twice each: the 4th consecutive failure opens it.
    for _ in range(2):
        fake.replies.extend([Reply(status=500), Reply(status=500), Reply(text="b")])
        answer = ask(rstack, "openai", "strat/circuit-a")
        assert answer.model == "strat/circuit-b"
    assert models_called(fake) == ["circuit-a", "circuit-a", "circuit-b"] * 2
    opened = time.monotonic()

    # Open: skipped without being called.
    fake.reset()
    answer = ask(rstack, "anthropic", "strat/circuit-a")
    assert answer.model == "strat/circuit-b"
    assert models_called(fake) == ["circuit-b"]
    row, superseded = await request_rows(rstack, answer.request_id, 1)
    assert row.attempts == 1 and not superseded
    assert time.monotonic() - opened < CIRCUIT_COOLDOWN, "machine too slow for this test"

    # After the cooldown one trial goes through; its success closes the circuit again.
    await asyncio.sleep(CIRCUIT_COOLDOWN + 0.3 - (time.monotonic() - opened))
    fake.reset()
    answer = ask(rstack, "openai", "strat/circuit-a")
    assert answer.model == "strat/circuit-a"
    assert models_called(fake) == ["circuit-a"]
    answer = ask(rstack, "anthropic", "strat/circuit-a", stream=True)
    assert answer.model == "strat/circuit-a"
    assert models_called(fake) == ["circuit-a", "circuit-a"]


# -- billing --------------------------------------------------------------------------------------


async def test_fallback_bills_only_the_answering_attempt(rstack: RoutingStack) -> None:
    from backend.data.models.logs import SpendCounter, UsageRollup

    rstack.reset()
    rstack.openai.replies.extend(
        [
            Reply(status=500),
            Reply(status=500),
            Reply(text="paid", input_tokens=1000, output_tokens=500),
        ]
    )
    answer = ask(rstack, "anthropic", "openai/gpt-charge", key=rstack.capped_key)
    assert answer.text == "paid" and answer.model == "openai/gpt-charge-next"
    row, superseded = await request_rows(rstack, answer.request_id, 3)
    # 1000 x $100/M + 500 x $200/M; the primary's price would have been ten times that.
    expected = Decimal("0.2")
    assert Decimal(row.cost_usd) == expected
    assert (row.input_tokens, row.output_tokens) == (1000, 500)
    assert len(superseded) == 2
    assert all(r.cost_usd is None and r.status == 502 for r in superseded)

    deadline = time.monotonic() + 10
    spent: Decimal | None = None
    while time.monotonic() < deadline:
        async with orm(rstack.database_url):
            counters = await SpendCounter.filter(scope="user", scope_id=rstack.capped_user_id)
            rollups = await UsageRollup.filter(user_id=rstack.capped_user_id)
        if counters and rollups:
            spent = sum((Decimal(c.spent_usd) for c in counters), Decimal(0))
            if spent == expected:
                break
        await asyncio.sleep(0.1)
    assert spent == expected
    assert sum(r.requests for r in rollups) == 1
    assert sum((Decimal(r.cost_usd) for r in rollups), Decimal(0)) == expected
