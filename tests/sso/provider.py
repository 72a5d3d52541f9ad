"""The real OpenID provider the SSO tests sign in against, and a browser-less sign-in.

``OidcProvider`` runs ``tests/sso/oidc_provider.mjs`` (panva's certified ``oidc-provider`` from
npm, installed into ``.tools/oidc-provider`` by ``WITH_TESTS=1 scripts/install.sh``) on a
loopback port with one confidential client. ``sign_in`` walks a sign-in the way a browser does
(cookies kept, redirects followed, the provider's login form posted) and returns where the
gateway finally sent the browser: the dashboard's ``/sso`` page with a ticket or an error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.fakes.base import free_port

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / ".tools/oidc-provider/node_modules/oidc-provider/lib/index.js"
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
NOT_INSTALLED = (
    "the SSO tests need the oidc-provider npm package in .tools/oidc-provider "
    "(WITH_TESTS=1 scripts/install.sh installs it)"
)
CLIENT_ID = "switchboard-gateway"
CLIENT_SECRET = "sso-client-secret-Zq9T"


def node_binary() -> str:
    """Node 22 from .tools when install.sh put one there (oidc-provider supports LTS 22+)."""
    tools = ROOT / ".tools/node/node_modules/.bin/node"
    if tools.exists():
        return str(tools)
    found = shutil.which("node")
    if found is None:
        pytest.skip("the SSO tests need Node.js")
    return found


def require_installed() -> None:
    if not MODULE.exists():
        pytest.skip(NOT_INSTALLED)


@dataclass
class OidcProvider:
    redirect_uris: list[str]
    users: dict[str, dict[str, Any]]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def users_file(self) -> Path:
        return self.workdir / "oidc-users.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "oidc-provider.log"

    def set_users(self, users: dict[str, dict[str, Any]]) -> None:
        """Claims as of the next sign-in (the provider reads the file at each one)."""
        self.users = users
        tmp = self.users_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(users))
        tmp.replace(self.users_file)

    def start(self, timeout: float = 30.0) -> OidcProvider:
        require_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.set_users(self.users)
        client = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": self.redirect_uris,
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
        }
        config = {
            "port": self.port,
            "issuer": self.issuer,
            "module": str(MODULE),
            "users_file": str(self.users_file),
            "clients": [client],
        }
        env = dict(os.environ, SB_OIDC_CONFIG=json.dumps(config), NODE_ENV="test")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [node_binary(), str(SCRIPT)], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc provider exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                r = httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"oidc provider did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()
        self.proc = None

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(self.issuer + "/__test/stats", timeout=5).json())

    def rotate(self) -> str:
        """A new signing key, published first and used from now on; its kid."""
        return str(httpx.post(self.issuer + "/__test/rotate", timeout=30).json()["kid"])


@dataclass
class Landing:
    """Where the gateway sent the browser at the end of a sign-in."""

    url: str

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}

    @property
    def ticket(self) -> str | None:
        return self.query.get("ticket")

    @property
    def error(self) -> str | None:
        return self.query.get("error")


async def follow(
    browser: httpx.AsyncClient, response: httpx.Response, stop: str, *, login: str | None = None
) -> Landing:
    """Follow redirects like a browser, post the provider's login form as ``login`` when it
    shows, until a redirect leads to ``stop`` (the dashboard)."""
    for _ in range(20):
        if response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if target.startswith(stop):
                return Landing(target)
            response = await browser.get(target)
            continue
        if response.status_code == 200 and 'id="login"' in response.text and login is not None:
            action = response.text.split('action="', 1)[1].split('"', 1)[0]
            response = await browser.post(urljoin(str(response.url), action), data={"login": login})
            login = None  # once: a second form means the login was refused
            continue
        raise AssertionError(
            f"sign-in stopped at {response.url}: {response.status_code} {response.text[:500]}"
        )
    raise AssertionError("too many redirects")


async def sign_in(gateway_url: str, dashboard_url: str, login: str) -> Landing:
    """A whole sign-in in a fresh cookie jar (a new browser)."""
    async with httpx.AsyncClient(timeout=30) as browser:
        start = await browser.get(gateway_url + "/auth/oidc/login")
        return await follow(browser, start, dashboard_url, login=login)
