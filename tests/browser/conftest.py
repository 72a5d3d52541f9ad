"""Fixtures: the real gateway + dashboard once per module, and a signed-in Chromium page.

Module scope, not session: Playwright's sync API keeps its own event loop current in this thread
while it is open, which would break the pytest-asyncio tests collected after this package.

Skipped, with the reason, when /usr/bin/chromium is absent (``WITH_BROWSER=1
scripts/install.sh`` installs Debian's chromium). Playwright drives that system browser; it never
downloads one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.browser.stack import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    DashboardBuild,
    DashboardProc,
    Stack,
    bootstrap_admin,
    gateway_env,
    sign_in,
)
from tests.dbutil import create_database, drop_database
from tests.e2e.harness import GatewayProc
from tests.fakes.openai_fake import OpenAIFake

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

NO_BROWSER = (
    "browser tests need /usr/bin/chromium (apt-get install -y chromium, or "
    "WITH_BROWSER=1 scripts/install.sh)"
)

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    # Off the test loop: pytest-asyncio owns the session loop of this thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def dashboard_build() -> DashboardBuild:
    return DashboardBuild()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, dashboard_build: DashboardBuild
) -> Iterator[Stack]:
    if not CHROMIUM.exists():
        pytest.skip(NO_BROWSER)
    tmp = tmp_path_factory.mktemp("browser")
    database_url = run_async(create_database(tmp))
    fake = OpenAIFake()
    fake.start()
    env = gateway_env(tmp / "data", database_url, fake.sdk_base_url)
    admin_key = bootstrap_admin(env)
    gateway = GatewayProc(env=env, log_path=tmp / "gateway.log").start()
    dashboard = DashboardProc(
        gateway_url=gateway.url,
        log_path=tmp / "dashboard.log",
        port=dashboard_build.port,
        prebuilt=dashboard_build.built,
    )
    try:
        dashboard.start()
        dashboard_build.built = True
        yield Stack(gateway, dashboard, fake, admin_key)
    finally:
        dashboard.stop()
        gateway.stop()
        fake.stop()
        run_async(drop_database(database_url))
        for name in ("gateway.log", "dashboard.log"):
            if (tmp / name).exists():
                SHOTS.mkdir(exist_ok=True)
                shutil.copy(tmp / name, SHOTS / name)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def admin(browser: Browser, stack: Stack) -> Iterator[Page]:
    """One signed-in admin tab for the whole module (the session lives in sessionStorage)."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, stack.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    try:
        yield page
    finally:
        context.close()
