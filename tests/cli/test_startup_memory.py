"""What the gateway's start-up leaves out of memory (issue 19: idle RSS <= 120 MB).

A fresh interpreter runs the app's start-up (``create_app`` and its lifespan, as ``serve``'s
worker does) and checks that none of these is imported:

- the GraphQL app (strawberry, graphql-core, the schema: ~16 MB), built on its first request by
  ``backend.graphql.lazy``; the test then sends concurrent GraphQL requests (HTTP and the IDE
  asset route) through the app: all are answered as before, by one app built once;
- httpx's command-line client (rich, pygments: ~3 MB) and uvicorn's ``--reload`` file
  watcher (watchfiles), which ``backend/__init__.py`` keeps from being imported;
- cryptography's native library (~8 MB) and PyJWT: HKDF is the standard library's now, AES-GCM
  and PyJWT are imported by the first stored credential or sign-in (none is stored here);
- redis-py and aiocache: without ``REDIS_URL`` only the opt-in response cache needs them, and
  it makes its backend on first use.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from tests.e2e.harness import ROOT

SCRIPT = """
import asyncio, sys
from backend.app import create_app  # first, as in serve: before httpx and uvicorn
from backend.config import Settings
import backend.graphql.lazy as lazy
import httpx

HEAVY = ("strawberry", "graphql", "backend.graphql.app", "backend.graphql.schema")
UNUSED = ("rich", "pygments", "watchfiles")  # click: uvicorn imports it too
#: cryptography's native library: loaded by the first stored credential or SSO sign-in.
CRYPTO = ("cryptography.hazmat.bindings._rust", "jwt")
#: redis-py (and aiocache, which imports it): only with REDIS_URL or a user's response cache.
REDIS = ("redis", "aiocache")

async def main() -> None:
    builds = []
    real_build = lazy.LazyGraphQL._build

    async def counted(self):
        builds.append(self)
        return await real_build(self)

    lazy.LazyGraphQL._build = counted
    app = create_app(Settings.from_env())
    async with app.router.lifespan_context(app):
        import uvicorn.main  # what serve imports before the app
        loaded = [m for m in (*HEAVY, *UNUSED, *CRYPTO, *REDIS) if m in sys.modules]
        assert not loaded, f"imported at start-up: {loaded}"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            asked = [client.post("/graphql", json={"query": "{ __typename }"}) for _ in range(5)]
            answers = await asyncio.gather(*asked, client.get("/graphql/assets/nope.js"))
        for resp in answers[:-1]:
            assert resp.status_code == 200, resp.text
            assert resp.json() == {"data": {"__typename": "Query"}}, resp.text
        assert answers[-1].status_code == 404, answers[-1].text
        assert len(builds) == 1, f"built {len(builds)} times"
        assert "strawberry" in sys.modules
    print("LAZY-OK")

asyncio.run(main())
"""


def test_start_up_imports_no_graphql_nor_unused_extras(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gw.sqlite3'}",
        "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
        "SWITCHBOARD_SECRET_KEY": uuid.uuid4().hex,
        "SWITCHBOARD_DLP_SCAN_PROCESSES": "0",
    }
    migrate = [sys.executable, "-m", "backend.cli", "migrate"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0 and "LAZY-OK" in out.stdout, out.stdout + out.stderr[-3000:]
