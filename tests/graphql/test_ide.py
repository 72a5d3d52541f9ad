"""GraphiQL is served from the gateway's own files (issue 16 item 5): the page served by a real
gateway names no other host, every file it loads comes from the gateway byte for byte (the npm
packages scripts/install.sh put in .tools/graphiql), and nothing else of that folder is served.
The browser side (the explorer renders with the internet blocked) is in
tests/e2e/test_newcomer.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.graphql.ide import ASSETS, CONTENT_SECURITY_POLICY, GraphiQLAssets, default_assets_dir
from tests.e2e.harness import GatewayProc

INSTALLED = default_assets_dir()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    assert not GraphiQLAssets().missing(), (
        f"GraphiQL's files are not in {INSTALLED}: run `bash scripts/install.sh`"
    )
    tmp = tmp_path_factory.mktemp("ide")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'gw.sqlite3'}",
        "SWITCHBOARD_DATA_DIR": str(tmp / "data"),
        "SWITCHBOARD_SECRET_KEY": uuid.uuid4().hex,
    }
    proc = GatewayProc(env=env, log_path=tmp / "gateway.log").start()
    try:
        yield proc
    finally:
        proc.stop()


def _references(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


def test_page_loads_only_the_gateways_own_files(gateway: GatewayProc) -> None:
    resp = httpx.get(f"{gateway.url}/graphql", headers={"accept": "text/html"}, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    # Nothing in the page points at another host (strawberry's own page used unpkg.com).
    assert "//" not in "".join(ref for ref in _references(resp.text) if not ref.startswith("data:"))
    assert not re.search(r"https?://", resp.text)
    loaded = [ref for ref in _references(resp.text) if ref.startswith("graphql/assets/")]
    assert sorted(ref.rpartition("/")[2] for ref in loaded) == sorted(ASSETS)
    for ref in loaded:
        name = ref.rpartition("/")[2]
        asset = httpx.get(f"{gateway.url}/{ref}", timeout=10)
        assert asset.status_code == 200, ref
        assert asset.content == (INSTALLED / ASSETS[name]).read_bytes()
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        assert asset.headers["content-type"].startswith(kind)


@pytest.mark.parametrize(
    "path",
    [
        "graphql/assets/package.json",
        "graphql/assets/graphiql.min.js",
        "graphql/assets/..%2F.installed",
        "graphql/assets/%2E%2E%2Freact%2Fpackage.json",
        "graphql/assets/",
    ],
)
def test_nothing_else_of_the_folder_is_served(gateway: GatewayProc, path: str) -> None:
    resp = httpx.get(f"{gateway.url}/{path}", timeout=10)
    assert resp.status_code == 404
    assert b"function" not in resp.content


def test_graphql_itself_still_answers_on_the_same_path(gateway: GatewayProc) -> None:
    resp = httpx.post(f"{gateway.url}/graphql", json={"query": "{ __typename }"}, timeout=10)
    assert resp.json() == {"data": {"__typename": "Query"}}


def test_without_the_files_the_page_says_how_to_install_them(tmp_path: Path) -> None:
    assets = GraphiQLAssets(tmp_path / "node_modules")
    assert sorted(assets.missing()) == sorted(ASSETS.values())
    resp = assets.page()
    assert resp.status_code == 503
    body = bytes(resp.body).decode()
    assert "scripts/install.sh" in body and "POST /graphql" in body
    assert str(tmp_path) not in body  # no server paths to anonymous callers
