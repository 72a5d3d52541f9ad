"""Seed a fresh gateway database for the benchmark, by direct Tortoise writes (run from the repo).

``python benchmarks/benchkit/seed.py DATABASE_URL`` migrates, then creates three organizations,
each with one member and one API key:

- ``bench-plain``: no alias, no cap, no DLP (the cheapest path: auth and logging);
- ``bench-caps``: organization aliases ``bench-mini`` -> ``openai/gpt-4o-mini`` and
  ``bench-stream`` -> ``ssefake/gpt-4o-mini``, and a weekly cap on the member (large enough never
  to refuse): the issue's "full pipeline" (auth, alias, caps, logging);
- ``bench-full``: the same plus DLP on.

It also sets a price for the streaming fake's model (a custom provider has no catalogue price,
and a cap only reserves on priced models). Logging needs no seeding: every request is logged.
Prints one JSON line with ``plain_key``, ``caps_key``, ``full_key``, ``alias``, ``stream_alias``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

ALIAS = "bench-mini"
STREAM_ALIAS = "bench-stream"
WEEKLY_CAP = Decimal("1000000")
SSE_MODEL = "ssefake/gpt-4o-mini"


async def seed(database_url: str) -> dict[str, str]:
    from backend.data.db import close_db, init_db, migrate
    from backend.data.models.keys import ApiKey
    from backend.data.models.routing import ModelAlias, ModelPrice
    from backend.data.models.tenancy import Organization, User
    from backend.security.api_keys import generate_key

    await migrate(database_url)
    await init_db(database_url)
    keys: dict[str, str] = {"alias": ALIAS, "stream_alias": STREAM_ALIAS}
    try:
        await ModelPrice.create(
            model=SSE_MODEL, input_per_mtok=Decimal("0.15"), output_per_mtok=Decimal("0.60")
        )
        for label, dlp, capped in (
            ("plain", False, False),
            ("caps", False, True),
            ("full", True, True),
        ):
            org = await Organization.create(
                name=f"Bench {label}", slug=f"bench-{label}", dlp_enabled=dlp
            )
            user = await User.create(
                name=label.title(),
                email=f"{label}@bench.test",
                organization=org,
                weekly_cap_usd=WEEKLY_CAP if capped else None,
            )
            if capped:
                for alias, target in ((ALIAS, "openai/gpt-4o-mini"), (STREAM_ALIAS, SSE_MODEL)):
                    await ModelAlias.create(
                        requested_model=alias, target_model=target, organization=org
                    )
            secret, prefix, digest = generate_key()
            await ApiKey.create(prefix=prefix, key_hash=digest, name="bench", user=user)
            keys[f"{label}_key"] = secret
    finally:
        await close_db()
    return keys


if __name__ == "__main__":
    print(json.dumps(asyncio.run(seed(sys.argv[1]))))
