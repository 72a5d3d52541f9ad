"""The GraphQL app is built on its first request (``backend.graphql.lazy``), not at start-up.

strawberry, graphql-core and the schema were ~16 MB of an idle gateway's RSS (issue 19's idle
target). A fresh interpreter runs the app's start-up and checks none of them is imported, then
sends concurrent GraphQL requests (HTTP and the IDE asset route) through the app: all are
answered as before, by one app built once.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from tests.e2e.harness import ROOT

SCRIPT = """
import asyncio, sys
import httpx
from backend.app import create_app
from backend.config import Settings
import backend.graphql.lazy as lazy

HEAVY = ("strawberry", "graphql", "backend.graphql.app", "backend.graphql.schema")

async def main() -> None:
    builds = []
    real_build = lazy.LazyGraphQL._build

    async def counted(self):
        builds.append(self)
        return await real_build(self)

    lazy.LazyGraphQL._build = counted
    app = create_app(Settings.from_env())
    async with app.router.lifespan_context(app):
        loaded = [m for m in HEAVY if m in sys.modules]
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


def test_graphql_is_imported_on_the_first_request_and_built_once(tmp_path: Path) -> None:
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
