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

``--tenants`` adds the tenant-scale population of issue 19 with bulk SQL (one ``executemany``
per table, a few seconds): 1,000 more organizations with 100 members and one key each (100,000
keys), an alias per organization (1,000, named like the benchmark's alias, so the lookup meets
its namesakes) and 500 agent configurations. The three benchmark keys stay the ones measured.
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


TENANT_ORGS = 1_000
MEMBERS_PER_ORG = 100
AGENTS = 500


async def seed_tenants() -> None:
    """The tenant-scale population, written with one executemany per table.

    Through Tortoise's own insert statement with primary keys (``insert_query_all``) and the
    model's column conversions and Python-side defaults, no model instance per row, so it works
    on SQLite and PostgreSQL alike.
    """
    import datetime as dt
    import hashlib

    from tortoise import connections

    from backend.data.models.keys import ApiKey
    from backend.data.models.routing import AgentConfig, ModelAlias
    from backend.data.models.tenancy import Organization, User

    conn = connections.get("default")
    now = dt.datetime.now(dt.UTC)
    first = 1_000_000  # ids far above the benchmark's own rows
    orgs, users, keys, aliases = [], [], [], []
    for i in range(TENANT_ORGS):
        org_id = first + i
        orgs.append({"id": org_id, "name": f"Tenant {i}", "slug": f"tenant-{i}", "created_at": now})
        aliases.append(
            {
                "id": org_id,
                "requested_model": ALIAS,
                "target_model": "openai/gpt-4o-mini",
                "organization_id": org_id,
                "created_at": now,
            }
        )
        for j in range(MEMBERS_PER_ORG):
            uid = first + i * MEMBERS_PER_ORG + j
            users.append(
                {
                    "id": uid,
                    "name": f"Member {j}",
                    "email": f"m{j}@tenant-{i}.test",
                    "organization_id": org_id,
                    "created_at": now,
                }
            )
            secret = f"sk-sb-t{uid}-{'x' * 24}"
            keys.append(
                {
                    "id": uid,
                    "prefix": f"sk-sb-t{uid}",
                    "key_hash": hashlib.sha256(secret.encode()).hexdigest(),
                    "user_id": uid,
                    "created_at": now,
                }
            )
    agents = [
        {
            "id": first + i,
            "agent_id": f"agent-{i}",
            "name": f"Agent {i}",
            "normal_model": "openai/gpt-4o-mini",
            "updated_at": now,
        }
        for i in range(AGENTS)
    ]
    for model, rows in (
        (Organization, orgs),
        (User, users),
        (ApiKey, keys),
        (ModelAlias, aliases),
        (AgentConfig, agents),
    ):
        executor = conn.executor_class(model=model, db=conn)
        fields = model._meta.fields_map
        columns = executor.regular_columns_all
        values = []
        for row in rows:
            for name in columns:
                if name not in row:
                    default = fields[name].default
                    row[name] = default() if callable(default) else default
            values.append([fields[n].to_db_value(row[n], model) for n in columns])
        await conn.execute_many(executor.insert_query_all, values)


async def seed(database_url: str, tenants: bool = False) -> dict[str, str]:
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
        if tenants:
            await seed_tenants()
    finally:
        await close_db()
    return keys


if __name__ == "__main__":
    print(json.dumps(asyncio.run(seed(sys.argv[1], tenants="--tenants" in sys.argv[2:]))))
