"""An embeddings request cancelled while the provider works gives its reservation back at once.

Before, only a settle or an error released it: a cancelled request (the client gone on a server
that cancels, the server stopping) kept holding the caller's cap until the reservation's TTL
(30 minutes). The app is the real one (``create_app``, lifespan served by uvicorn); the request
to cancel goes through ``httpx.ASGITransport``, which runs the endpoint in the caller's task, so
cancelling that task cancels the endpoint exactly as a server would.

Prices: ``text-embedding-3-small`` input at $6000 per million tokens; the input is 400
characters (100 tokens at the gateway's estimate), so one reservation is $0.60 and a $1.00
weekly cap holds one at a time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from backend.app import create_app
from backend.config import Settings
from backend.data.models.keys import ApiKey
from backend.data.models.routing import ModelPrice
from backend.data.models.tenancy import Organization, User
from backend.security.api_keys import generate_key
from tests.dbutil import create_database, drop_database, migrate_fresh, redis_url
from tests.e2e.harness import orm
from tests.fakes.base import Reply
from tests.fakes.openai_fake import OpenAIFake
from tests.security.authz_world import serve

MODEL = "openai/text-embedding-3-small"
BODY = {"model": MODEL, "input": "x" * 400}
DEADLINE_S = 30.0


@dataclass
class Gw:
    app: Starlette
    fake: OpenAIFake
    key: str


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    url = await create_database(tmp_path)
    await migrate_fresh(url)
    secret, prefix, digest = generate_key()
    async with orm(url):
        await ModelPrice.create(model=MODEL, input_per_mtok=6000, output_per_mtok=0)
        org = await Organization.create(name="Emb", slug=f"emb-{uuid.uuid4().hex[:6]}")
        user = await User.create(
            name="E", email="e@emb.test", organization=org, weekly_cap_usd=Decimal("1.00")
        )
        await ApiKey.create(prefix=prefix, key_hash=digest, name="e", user=user)
    fake = OpenAIFake().start()
    settings = Settings(
        database_url=url,
        redis_url=redis_url(),
        redis_prefix=f"sbemb-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp_path / "data",
        secret_key=f"emb-{uuid.uuid4().hex}",
        provider_env={"OPENAI_API_KEY": "sk-upstream", "OPENAI_BASE_URL": fake.sdk_base_url},
    )
    app = create_app(settings)
    try:
        async with serve(app):
            yield Gw(app, fake, secret)
    finally:
        fake.stop()
        await drop_database(url)


async def _embed(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(
        "/v1/embeddings", json=BODY, headers={"authorization": f"Bearer {key}"}
    )


async def _until_requested(fake: OpenAIFake) -> bool:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if fake.requests:
            return True
        await asyncio.sleep(0.02)
    return bool(fake.requests)


async def test_a_cancelled_embedding_releases_its_reservation(gw: Gw) -> None:
    transport = httpx.ASGITransport(app=gw.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=60) as client:
        gw.fake.replies.append(Reply(delay=DEADLINE_S))  # the provider takes its time
        pending = asyncio.create_task(_embed(client, gw.key))
        assert await _until_requested(gw.fake), "the embedding never reached the provider"
        # Its $0.60 is reserved: a second one does not fit under the $1.00 cap meanwhile.
        held = await _embed(client, gw.key)
        assert held.status_code == 429, held.text
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        # Cancelled: the reservation is gone, and the very next request fits (and is served).
        # With Redis the release may still be on its way when this reserve is made: the budget
        # sends this one after it, never ahead of it (backend/budget/redis_sender.py).
        after = await _embed(client, gw.key)
        assert after.status_code == 200, after.text
        assert after.json()["data"]
