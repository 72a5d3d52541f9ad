"""A clean stop loses nothing: N requests leave exactly N log rows, in-flight requests finish."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, Seeded, log_rows, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[str, Seeded, dict[str, object]]]:
    db = await create_database(tmp_path)
    await prepare_database(db)
    seeded = await seed_basic(db)
    fakes: dict[str, object] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    try:
        yield db, seeded, fakes
    finally:
        for fake in fakes.values():
            fake.stop()  # type: ignore[attr-defined]
        await drop_database(db)


async def test_clean_stop_after_n_requests_leaves_n_rows(
    parts: tuple[str, Seeded, dict[str, object]], tmp_path: Path
) -> None:
    db, seeded, fakes = parts
    # A flush interval far longer than the test: every row is written by the shutdown flush.
    env = gateway_env(db, tmp_path, fakes) | {"SWITCHBOARD_LOG_FLUSH_INTERVAL": "3600"}
    gw = GatewayProc(env, tmp_path / "gw.log").start()
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key=seeded.user_key, max_retries=0)
    n = 0
    for i in range(30):
        if i % 3 == 0:
            list(
                client.chat.completions.create(
                    model="openai/gpt-4o-mini",
                    messages=[{"role": "user", "content": f"hi {i}"}],
                    stream=True,
                )
            )
        elif i % 3 == 1:
            client.chat.completions.create(
                model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}]
            )
        else:
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(
                    model="unknown-model-zzz", messages=[{"role": "user", "content": "x"}]
                )
        n += 1
    assert await log_rows(db) == []  # nothing written yet
    # Generous: on a loaded CI machine a clean stop (drain, flush, close) can take a while.
    assert gw.stop(timeout=90) == 0
    rows = await log_rows(db)
    assert len(rows) == n
    assert sum(1 for r in rows if r.status == 404) == 10


async def test_sigterm_finishes_in_flight_requests(
    parts: tuple[str, Seeded, dict[str, object]], tmp_path: Path
) -> None:
    db, seeded, fakes = parts
    gw = GatewayProc(gateway_env(db, tmp_path, fakes), tmp_path / "gw.log").start()
    fake: OpenAIFake = fakes["openai"]  # type: ignore[assignment]
    fake.replies.append(Reply(text="slow but complete", delay=1.5))
    result: dict[str, object] = {}

    def slow_call() -> None:
        r = httpx.post(
            f"{gw.openai_base_url}/chat/completions",
            headers={"authorization": f"Bearer {seeded.user_key}"},
            json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            timeout=30,
        )
        result["status"] = r.status_code
        result["body"] = r.json()

    t = threading.Thread(target=slow_call)
    t.start()
    await asyncio.sleep(0.5)  # the request is now waiting on the upstream
    # Generous: on a loaded CI machine a clean stop (drain, flush, close) can take a while.
    assert gw.stop(timeout=90) == 0
    t.join(10)
    assert result["status"] == 200
    assert result["body"]["choices"][0]["message"]["content"] == "slow but complete"  # type: ignore[index]
    rows = await log_rows(db)
    assert len(rows) == 1 and rows[0].status == 200
