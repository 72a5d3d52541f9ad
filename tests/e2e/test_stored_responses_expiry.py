"""Stored responses expire (issue 15 item 1): after ``SWITCHBOARD_RESPONSES_TTL`` a response is
a 404 for retrieve and for ``previous_response_id``, and the sweeper deletes its row.

A gateway of its own with a 6-second TTL and a sweep every 0.2 s (the setting is per process).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.harness import orm

TTL_S = 6.0


@pytest.fixture(scope="module")
def gateway_overrides() -> dict[str, str]:
    return {
        "SWITCHBOARD_RESPONSES_TTL": str(TTL_S),
        "SWITCHBOARD_RESPONSES_SWEEP_INTERVAL": "0.2",
    }


async def row_ids(stack: Stack) -> set[str]:
    from backend.data.models.responses import StoredResponse

    async with orm(stack.database_url):
        return set(await StoredResponse.all().values_list("id", flat=True))


async def until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_an_expired_response_is_gone(stack: Stack) -> None:
    sdk = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )
    kept = sdk.responses.create(model="anthropic/claude-sonnet-4-5", input="short-lived")
    assert sdk.responses.retrieve(kept.id).id == kept.id
    assert await until(lambda: _has(stack, kept.id), TTL_S / 2), "the row was never written"

    assert await until(lambda: _gone(stack, kept.id), TTL_S + 10), "the sweeper left the row"
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(kept.id)
    with pytest.raises(openai.NotFoundError) as cont:
        sdk.responses.create(
            model="anthropic/claude-sonnet-4-5", previous_response_id=kept.id, input="more"
        )
    assert cont.value.code == "previous_response_not_found"


async def _has(stack: Stack, rid: str) -> bool:
    return rid in await row_ids(stack)


async def _gone(stack: Stack, rid: str) -> bool:
    return rid not in await row_ids(stack)
