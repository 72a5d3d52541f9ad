"""Shared by the policy e2e modules of the non-chat doors (``test_responses_policies.py``,
``test_gemini_door_policies.py``): one stack with the DLP scopes of ``dlp_support`` (Alice's
organization redacts every built-in kind and a custom rule) plus fallback chains, a priced model
and a capped user, all seeded before the gateway starts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.dlp_support import DlpStack, _seed_dlp
from tests.e2e.harness import GatewayProc, fake_upstreams, orm, prepare_database
from tests.fakes.base import FakeUpstream

#: The capped user's weekly cap. The capped model costs $0.01 per output token, input free:
#: ``max_output_tokens=10`` reserves and costs $0.10, so three requests fit.
CAP = Decimal("0.30")


class PolicyStack(DlpStack):
    capped_key: str = ""


async def seed_policies(
    db: str, org_id: int, chains: Iterable[tuple[str, str]], capped: str
) -> str:
    """Fallback ``chains`` (primary, fallback), the ``capped`` model's price and a user with a
    weekly cap of ``CAP``; returns that user's key."""
    from backend.data.models.keys import ApiKey
    from backend.data.models.routing import FallbackChain, ModelPrice
    from backend.data.models.tenancy import User
    from backend.security.api_keys import generate_key

    async with orm(db):
        for primary, fallback in chains:
            await FallbackChain.create(primary_model=primary, chain=[fallback])
        await ModelPrice.create(
            model=capped, input_per_mtok=Decimal(0), output_per_mtok=Decimal(10_000)
        )
        carol = await User.create(
            name="Carol",
            email=f"carol-{uuid.uuid4().hex[:6]}@acme.test",
            organization_id=org_id,
            weekly_cap_usd=CAP,
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="capped", user=carol)
    return secret


@asynccontextmanager
async def policy_stack(
    tmp: Path,
    chains: Iterable[tuple[str, str]],
    capped: str,
    env: dict[str, str] | None = None,
) -> AsyncIterator[PolicyStack]:
    """The module's stack: seeded as above, four fakes, the gateway (with ``env`` added)."""
    db = await create_database(tmp)
    await prepare_database(db)
    scopes, org_slug, seeded = await _seed_dlp(db)
    capped_key = await seed_policies(db, seeded.org_id, chains, capped)
    try:
        with fake_upstreams() as fakes:
            gw_env = gateway_env(db, tmp, fakes) | (env or {})
            gw = GatewayProc(gw_env, tmp / "gateway.log").start()
            try:
                s = PolicyStack(gw, db, seeded, tmp=tmp, scopes=scopes, org_slug=org_slug, **fakes)
                s.capped_key = capped_key
                yield s
            finally:
                gw.stop()
    finally:
        await drop_database(db)


def last_call(fake: FakeUpstream, path: str) -> Any:
    calls = [r for r in fake.requests if path in r.path]
    assert calls, f"no call to {path}"
    return calls[-1]
