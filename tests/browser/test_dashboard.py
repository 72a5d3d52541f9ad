"""The dashboard in a real browser, against the real gateway and dashboard processes.

Tests run in file order and build on each other (an organization, then a user in it, then a key
of that user...), sharing one signed-in admin tab and a ``World`` of what was created.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.stack import Stack, shot, sign_in

PAGES = {
    "home": ("/", "Home"),
    "users": ("/users", "Users"),
    "organizations": ("/organizations", "Organizations"),
    "apps": ("/apps", "Apps"),
    "model-router": ("/router", "Model Router"),
    "agent-configurations": ("/agents", "Agent Configurations"),
    "available-models": ("/models", "Available Models"),
    "gateway-logs": ("/logs", "Gateway Logs"),
    "per-user-usage": ("/usage", "Per-User Usage"),
    "dlp": ("/dlp", "DLP"),
    "gateway-settings": ("/settings", "Gateway Settings"),
    "user-activity-export": ("/export", "User Activity Export"),
    "error-reports": ("/errors", "Error Reports"),
    "my-account": ("/me", "My Account"),
}
RAW_TRACE = re.compile(r"Traceback \(most recent call last\)|File \".*\", line \d+")
MEMBER_PASSWORD = "member-password-42"


@dataclass
class World:
    tag: str
    org_name: str = ""
    member_name: str = ""
    member_email: str = ""
    app_name: str = ""
    member_key: str = ""


@pytest.fixture(scope="module")
def world() -> World:
    return World(tag=uuid.uuid4().hex[:6])


def open_page(page: Page, stack: Stack, route: str, title: str) -> None:
    """Navigates and waits until the page's data has loaded (no "Loading…" left)."""
    page.goto(f"{stack.url}{route}")
    expect(page.locator("#page-title")).to_have_text(title, timeout=30_000)
    page.wait_for_function("!document.querySelector('.sb-loading')", timeout=20_000)


def no_errors_shown(page: Page) -> None:
    body = page.inner_text("body")
    assert not RAW_TRACE.search(body), body[:2000]
    errors = [e.text_content() or "" for e in page.locator(".sb-error").all()]
    assert errors == [], f"{page.url}: {errors}"


def row(page: Page, text: str):  # type: ignore[no-untyped-def]
    return page.locator("tr", has_text=text)


def test_wrong_password_is_refused_in_plain_words(browser: Browser, stack: Stack) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{stack.url}/login")
    page.fill("#email", "admin@switchboard.test")
    page.fill("#password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator(".sb-error")).to_contain_text("Wrong email or password")
    assert page.locator("#whoami").count() == 0
    context.close()


def test_admin_lands_on_home_with_charts(admin: Page, stack: Stack) -> None:
    open_page(admin, stack, "/", "Home")
    for heading in (
        "Live · last 60 min",
        "Cost Trends",
        "Provider Load & Routing",
        "Top Spending Users",
    ):
        expect(admin.get_by_text(heading, exact=True)).to_be_visible()
    no_errors_shown(admin)


def test_create_organization(admin: Page, stack: Stack, world: World) -> None:
    world.org_name = f"Org {world.tag}"
    open_page(admin, stack, "/organizations", "Organizations")
    admin.locator("summary", has_text="Create Organization").click()
    admin.fill("#org-name", world.org_name)
    admin.fill("#org-slug", f"org-{world.tag}")
    admin.fill("#org-cap", "not money")
    admin.click("#create-org")
    # Bad input is explained next to the form, in words.
    expect(admin.locator(".sb-error")).to_contain_text("API spend cap must be an amount")
    admin.fill("#org-cap", "500")
    admin.check("#org-rollover")
    admin.click("#create-org")
    org = row(admin, world.org_name)
    expect(org).to_contain_text(f"org-{world.tag}")
    expect(org).to_contain_text("$500.00")
    no_errors_shown(admin)
    # The same slug again: the gateway's refusal is shown next to the form.
    admin.fill("#org-name", "Duplicate")
    admin.click("#create-org")
    expect(admin.locator(".sb-error")).to_be_visible()
    assert "Traceback" not in admin.locator(".sb-error").inner_text()


def test_create_user(admin: Page, stack: Stack, world: World) -> None:
    world.member_name = f"Mia {world.tag}"
    world.member_email = f"mia-{world.tag}@example.com"
    open_page(admin, stack, "/users", "Users")
    admin.locator("summary", has_text="Create User").click()
    admin.fill("#user-name", world.member_name)
    admin.fill("#user-email", world.member_email)
    admin.fill("#user-password", MEMBER_PASSWORD)
    admin.select_option("#user-role", "member")
    admin.fill("#user-cap", "25")
    admin.select_option("#user-org", label=world.org_name)
    admin.click("#create-user")
    user = row(admin, world.member_email)
    expect(user).to_contain_text(world.member_name)
    expect(user).to_contain_text("member")
    expect(user).to_contain_text("$25.00")
    expect(user).to_contain_text(world.org_name)
    expect(user).to_contain_text("active")
    user.get_by_role("button", name="Suspend").click()
    # Destructive: asked first; Cancel changes nothing.
    expect(admin.get_by_role("alertdialog")).to_contain_text(f"Suspend {world.member_name}?")
    admin.click("#confirm-no")
    expect(user).to_contain_text("active")
    user.get_by_role("button", name="Suspend").click()
    admin.click("#confirm-yes")
    expect(user).to_contain_text("suspended")
    user.get_by_role("button", name="Activate").click()
    expect(user.get_by_role("button", name="Suspend")).to_be_visible()
    no_errors_shown(admin)


def test_create_app(admin: Page, stack: Stack, world: World) -> None:
    world.app_name = f"Bot {world.tag}"
    open_page(admin, stack, "/apps", "Apps")
    admin.locator("summary", has_text="Create App").click()
    admin.fill("#app-name", world.app_name)
    admin.fill("#app-contact", "bots@example.com")
    admin.select_option("#app-org", label=world.org_name)
    admin.click("#create-app")
    app = row(admin, world.app_name)
    expect(app).to_contain_text("bots@example.com")
    expect(app).to_contain_text("active")
    app.get_by_role("button", name="Issue app key").click()
    expect(admin.locator("#new-secret")).to_have_text(re.compile(r"\S{20,}"))
    admin.click("#secret-done")
    expect(admin.locator("#new-secret")).to_have_count(0)
    no_errors_shown(admin)


def test_issued_key_request_appears_live_in_gateway_logs(
    admin: Page, stack: Stack, world: World
) -> None:
    open_page(admin, stack, "/users", "Users")
    row(admin, world.member_email).get_by_role("button", name="Issue key").click()
    secret = admin.locator("#new-secret")
    expect(secret).to_have_text(re.compile(r"\S{20,}"))
    world.member_key = secret.inner_text().strip()
    admin.click("#secret-done")

    open_page(admin, stack, "/logs", "Gateway Logs")
    expect(admin.locator("#live-status")).to_have_text("● live", timeout=15_000)
    admin.evaluate("window.__noReload = true")
    client = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=world.member_key, max_retries=0
    )
    answer = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content
    started = time.monotonic()
    fresh = admin.locator("tr.sb-log-row", has_text=world.member_name)
    expect(fresh).to_have_count(1, timeout=10_000)
    assert admin.evaluate("window.__noReload") is True, "the page was reloaded"
    expect(fresh).to_contain_text("gpt-4o-mini")
    expect(fresh).to_contain_text("/v1/chat/completions")
    print(f"log row appeared {time.monotonic() - started:.2f}s after the answer")
    shot(admin, "gateway-logs-live")


def test_model_alias_and_agent_import(admin: Page, stack: Stack, world: World) -> None:
    open_page(admin, stack, "/router", "Model Router")
    admin.fill("#alias-requested", f"team-model-{world.tag}")
    admin.fill("#alias-target", "openai/gpt-4o-mini")
    admin.select_option("#alias-scope", label=world.org_name)
    admin.click("#create-alias")
    alias = row(admin, f"team-model-{world.tag}")
    expect(alias).to_contain_text("openai/gpt-4o-mini")
    expect(alias).to_contain_text(world.org_name)
    no_errors_shown(admin)

    open_page(admin, stack, "/agents", "Agent Configurations")
    admin.fill("#agents-yaml", "agents: [not, a, mapping]")
    admin.click("#import-agents")
    expect(admin.locator(".sb-error")).to_contain_text("mapping")
    admin.fill(
        "#agents-yaml",
        f"agents:\n  - agent_id: coder-{world.tag}\n    name: Coder\n    role: writes code\n"
        "    models:\n      normal: openai/gpt-4o-mini\n      heavy: openai/gpt-4o\n",
    )
    admin.click("#import-agents")
    expect(admin.locator(".sb-ok")).to_contain_text("1 created")
    agent = row(admin, f"coder-{world.tag}")
    expect(agent).to_contain_text("openai/gpt-4o")
    agent.get_by_role("button", name="Edit").click()
    admin.fill("#edit-agent-max", "openai/gpt-4o")
    admin.click("#save-agent")
    expect(agent).to_contain_text("openai/gpt-4o-mini")
    expect(agent.locator("td").nth(5)).to_have_text("openai/gpt-4o")
    no_errors_shown(admin)


def test_switch_routing_strategy(admin: Page, stack: Stack) -> None:
    open_page(admin, stack, "/settings", "Gateway Settings")
    admin.select_option("#strategy-select", "cheapest")
    admin.click("#save-strategy")
    expect(admin.locator("#current-strategy")).to_have_text("cheapest")
    expect(admin.locator(".sb-ok")).to_contain_text("cheapest")
    open_page(admin, stack, "/settings", "Gateway Settings")  # persisted, not just shown
    expect(admin.locator("#current-strategy")).to_have_text("cheapest")
    expect(admin.locator("#strategy-select")).to_have_value("cheapest")


def test_fallback_chain(admin: Page, stack: Stack, world: World) -> None:
    primary = f"openai/primary-{world.tag}"
    open_page(admin, stack, "/settings", "Gateway Settings")
    admin.fill("#chain-primary", primary)
    admin.fill("#chain-models", primary)
    admin.click("#save-chain")
    expect(admin.locator(".sb-error")).to_contain_text("own fallback")
    admin.fill("#chain-models", "anthropic/claude-sonnet-4, openai/gpt-4o-mini")
    admin.click("#save-chain")
    # Anthropic is not configured yet: the catalog does not know the name, so saving needs a
    # confirmation (a typo would break the chain).
    expect(admin.locator("#chain-unknown")).to_contain_text("anthropic/claude-sonnet-4")
    expect(row(admin, primary)).to_have_count(0)
    admin.click("#chain-save-anyway")
    chain = row(admin, primary)
    expect(chain).to_contain_text("anthropic/claude-sonnet-4 → openai/gpt-4o-mini")
    chain.get_by_role("button", name="Delete").click()
    admin.click("#confirm-yes")
    expect(row(admin, primary)).to_have_count(0)


def test_credential_shows_only_last_four(admin: Page, stack: Stack) -> None:
    secret = f"sk-ant-browser-{uuid.uuid4().hex}WXYZ"
    open_page(admin, stack, "/settings", "Gateway Settings")
    admin.select_option("#cred-provider", "anthropic")
    admin.select_option("#cred-kind", "anthropic")
    admin.fill("#cred-key", secret)
    admin.click("#save-credential")
    cred = admin.locator("#credentials-table tr", has_text="anthropic")
    expect(cred).to_contain_text("••••WXYZ")
    expect(admin.locator("#cred-key")).to_have_value("")
    open_page(admin, stack, "/settings", "Gateway Settings")
    expect(admin.locator("#credentials-table")).to_contain_text("••••WXYZ")
    assert secret not in admin.content()
    assert secret[:-4] not in admin.inner_text("body")


def test_offer_a_feature_users_may_opt_into(admin: Page, stack: Stack) -> None:
    open_page(admin, stack, "/settings", "Gateway Settings")
    admin.check("#feature-response_cache")
    admin.click("#save-features")
    expect(admin.locator(".sb-ok", has_text="opt in to")).to_contain_text("response_cache")
    no_errors_shown(admin)


def test_download_activity_csv(admin: Page, stack: Stack, world: World) -> None:
    open_page(admin, stack, "/export", "User Activity Export")
    admin.select_option("#export-user", label=f"{world.member_name} <{world.member_email}>")
    with admin.expect_download() as download_info:
        admin.click("#export-download")
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    text = open(download.path(), encoding="utf-8").read()
    header, *lines = text.strip().splitlines()
    assert "," in header
    assert lines, "the member's request is in the export"
    assert "gpt-4o-mini" in text
    # The per-user table offers the same export.
    open_page(admin, stack, "/users", "Users")
    row(admin, world.member_email).get_by_role("button", name="Usage").click()
    dialog = admin.get_by_role("dialog")
    expect(dialog).to_contain_text("Last 30 days")
    expect(dialog.locator(".rt-Card", has_text="Requests")).to_contain_text("1")
    admin.keyboard.press("Escape")
    open_page(admin, stack, "/usage", "Per-User Usage")
    expect(row(admin, world.member_email)).to_contain_text("1")
    with admin.expect_download() as again:
        row(admin, world.member_email).get_by_role("button", name="Export CSV").click()
    assert again.value.suggested_filename.endswith(".csv")


def test_member_sees_own_view_and_cannot_open_admin_pages(
    browser: Browser, stack: Stack, world: World
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, stack.url, world.member_email, MEMBER_PASSWORD)
    expect(page.locator("#page-title")).to_have_text("My Account")
    page.wait_for_function("!document.querySelector('.sb-loading')")
    expect(page.locator("#my-keys-table")).to_contain_text(world.member_key[:8])
    # Admin links are not offered...
    assert page.get_by_role("link", name="Users").count() == 0
    # ...and typing the address does not show the page.
    # (Gateway Logs and Keys are open to members: the API shows them their own.)
    for route in ("/users", "/settings"):
        page.goto(f"{stack.url}{route}")
        expect(page.locator("#page-title")).to_have_text("My Account")
        assert page.locator("#users-table").count() == 0
        assert page.locator("#credentials-table").count() == 0
        expect(page.locator("#notice")).to_contain_text("for administrators")
    # A member's own key: created here, shown once, revocable.
    page.fill("#my-key-name", "laptop")
    page.click("#create-my-key")
    expect(page.locator("#new-secret")).to_have_text(re.compile(r"\S{20,}"))
    page.click("#secret-done")
    laptop = page.locator("#my-keys-table tr", has_text="laptop")
    laptop.get_by_role("button", name="Revoke").click()
    page.click("#confirm-yes")
    expect(laptop).to_contain_text("revoked")
    # ...and their own feature opt-ins, among what the gateway offers.
    feature = page.locator("tr", has_text="response_cache")
    feature.get_by_role("button", name="Opt in").click()
    expect(feature).to_contain_text("on")
    expect(feature.get_by_role("button", name="Opt out")).to_be_visible()
    no_errors_shown(page)
    shot(page, "member-my-account")
    context.close()


def test_every_page_screenshot_without_errors(admin: Page, stack: Stack) -> None:
    for name, (route, title) in PAGES.items():
        open_page(admin, stack, route, title)
        admin.wait_for_timeout(300)  # let charts finish their entry animation
        shot(admin, name)
        no_errors_shown(admin)


def test_logout_ends_the_session(browser: Browser, stack: Stack) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, stack.url, "admin@switchboard.test", "correct-horse-battery")
    page.click("#logout")
    expect(page.locator("#login-submit")).to_be_visible()
    page.goto(f"{stack.url}/users")
    expect(page.locator("#login-submit")).to_be_visible()
    shot(page, "login")
    context.close()
