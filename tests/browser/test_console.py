"""The operators' console in Chromium (issue 17 items 4-7): analytics equal to sums of the log
rows, every page at 1440 px and 390 px (screenshots, nothing wider than the screen), each role
shown only controls the gateway's authorization table lets it use, destructive actions asked
first, alias targets checked against the catalog, catalog search and price overrides, the audit
log, and health that agrees with the error counts.

One stack for the module (gateway + dashboard + fake OpenAI); traffic is made once with the
official OpenAI SDK by a member's key, an app key and another organization's member.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from backend.graphql import authz
from frontend_reflex import fmt, permissions
from frontend_reflex.components.layout import NAV
from tests.browser.stack import ADMIN_EMAIL, ADMIN_PASSWORD, SHOTS, Gql, Stack, sign_in
from tests.fakes.base import Reply

PASSWORD = "console-password-42"
NARROW, WIDE = 390, 1440
TYPO = "openai/gpt-9-does-not-exist"
# Elements sticking out of the viewport that are not inside something that scrolls sideways.
OVERFLOW_JS = """
() => {
  const vw = document.documentElement.clientWidth;
  const scrolls = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      const scroller = s.overflowX === 'auto' || s.overflowX === 'scroll';
      if (scroller && p.getBoundingClientRect().right <= vw + 1) return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || getComputedStyle(el).position === 'fixed') continue;
    if (r.right > vw + 1 && !scrolls(el)) {
      out.push(`${el.tagName}.${el.className} right=${Math.round(r.right)}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, vw, offenders: out.slice(0, 8)};
}
"""


@dataclass
class Cast:
    tag: str
    acme: int = 0
    globex: int = 0
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    app: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # who -> secret


LOGS = """
query($after: String) {
  gatewayLogs(first: 500, after: $after) {
    nodes { requestId status keyPrefix requestedModel actualModel costUsd inputTokens
            outputTokens superseded user { id } app { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def all_logs(api: Gql) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        conn = api(LOGS, {"after": after})["gatewayLogs"]
        rows += conn["nodes"]
        if not conn["pageInfo"]["hasNextPage"]:
            return rows
        after = conn["pageInfo"]["endCursor"]


@pytest.fixture(scope="module")
def api(stack: Stack) -> Gql:
    return Gql(stack.gateway.url, ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def cast(stack: Stack, api: Gql) -> Cast:
    c = Cast(tag=uuid.uuid4().hex[:6])
    org = "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }"
    c.acme = api(org, {"i": {"name": f"Acme {c.tag}", "slug": f"acme-{c.tag}"}})[
        "createOrganization"
    ]["id"]
    c.globex = api(org, {"i": {"name": f"Globex {c.tag}", "slug": f"globex-{c.tag}"}})[
        "createOrganization"
    ]["id"]
    user = "mutation($i: CreateUserInput!) { createUser(input: $i) { id name email } }"
    for who, role, org_id in (
        ("oa", "ORG_ADMIN", c.acme),
        ("mem", "MEMBER", c.acme),
        ("gx", "MEMBER", c.globex),
    ):
        i = {
            "name": f"{who.upper()} {c.tag}",
            "email": f"{who}-{c.tag}@example.com",
            "role": role,
            "organizationId": org_id,
            "password": PASSWORD,
        }
        c.people[who] = api(user, {"i": i})["createUser"]
    app = "mutation($i: CreateAppInput!) { createApp(input: $i) { id name } }"
    c.app = api(
        app, {"i": {"name": f"Bot {c.tag}", "slug": f"bot-{c.tag}", "organizationId": c.acme}}
    )["createApp"]
    key = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }"
    for who, owner in (
        ("mem", {"userId": c.people["mem"]["id"]}),
        ("gx", {"userId": c.people["gx"]["id"]}),
        ("app", {"appId": c.app["id"]}),
    ):
        c.keys[who] = api(key, {"i": {"name": f"{who}-key", **owner}})["createApiKey"]["secret"]
    # Aliases: one global (a super_admin's), one of Acme's (its org_admin may delete it).
    alias = "mutation($i: CreateModelAliasInput!) { createModelAlias(input: $i) { id } }"
    api(alias, {"i": {"requestedModel": f"global-{c.tag}", "targetModel": "openai/gpt-4o-mini"}})
    api(
        alias,
        {
            "i": {
                "requestedModel": f"acme-{c.tag}",
                "targetModel": "openai/gpt-4o-mini",
                "organizationId": c.acme,
            }
        },
    )
    traffic(stack, c)
    return c


def traffic(stack: Stack, c: Cast) -> None:
    """Requests with the official SDK: known and unknown prices, an app, failures elsewhere."""
    plan = [
        ("mem", "openai/gpt-4o-mini", 3, None),
        ("mem", "openai/my-finetune-unpriced", 1, None),
        ("app", "openai/gpt-4o-mini", 2, None),
        ("app", "openai/gpt-4o", 1, None),
        ("gx", "openai/gpt-4o-mini", 2, None),
        ("gx", "openai/gpt-4o-mini", 2, 500),
    ]
    made = 0
    for who, model, n, status in plan:
        client = openai.OpenAI(
            base_url=stack.gateway.openai_base_url, api_key=c.keys[who], max_retries=0
        )
        for _ in range(n):
            made += 1
            if status is not None:
                # The gateway retries a 5xx once on the same model: both attempts fail.
                for _ in range(2):
                    stack.openai.replies.append(
                        Reply(status=status, error_message="upstream broke")
                    )
                with pytest.raises(openai.APIStatusError):
                    client.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": "hi"}]
                    )
                continue
            stack.openai.replies.append(Reply(text="ok", input_tokens=1200, output_tokens=340))
            out = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
            assert out.choices[0].message.content == "ok"
    c.people["made"] = {"n": made}


def wait_for_logs(api: Gql, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        rows = [r for r in all_logs(api) if not r["superseded"]]
        if len(rows) >= n or time.monotonic() > deadline:
            assert len(rows) >= n, f"{len(rows)} log rows, expected {n}"
            return rows
        time.sleep(0.2)


def open_page(page: Page, url: str, title: str | None = None) -> None:
    page.goto(url)
    if title:
        expect(page.locator("#page-title")).to_have_text(title, timeout=30_000)
    else:
        page.wait_for_selector("#page-title", timeout=30_000)
    page.wait_for_function("!document.querySelector('.sb-loading')", timeout=20_000)


def person(browser: Browser, stack: Stack, email: str, width: int = WIDE) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, stack.url, email, PASSWORD)
    return page


# -- analytics = sums of the log rows -----------------------------------------------------------


def expected(rows: list[dict[str, Any]], key_of: Any) -> dict[str, tuple[str, str]]:
    """Per group: (requests, cost) as the table shows them, summed from the log rows."""
    n: dict[str, int] = defaultdict(int)
    cost: dict[str, Decimal] = defaultdict(Decimal)
    unknown: dict[str, int] = defaultdict(int)
    for r in rows:
        k = key_of(r)
        n[k] += 1
        if r["costUsd"] is not None:
            cost[k] += Decimal(r["costUsd"])
        elif r["inputTokens"] or r["outputTokens"] or 200 <= r["status"] < 300:
            unknown[k] += 1
    return {k: (fmt.number(n[k]), fmt.spend(cost[k], unknown[k])) for k in n}


def shown(page: Page) -> dict[str, tuple[str, str]]:
    """The analytics table: group key -> (requests, cost), read in one go (it re-renders)."""
    rows: list[list[str]] = page.evaluate(
        """() => [...document.querySelectorAll('tr.sb-analytics-row')].map(tr => [
              tr.querySelector('td [title]')?.getAttribute('title') || '',
              tr.querySelector('td.sb-col-requests')?.innerText.trim() || '',
              tr.querySelector('td.sb-col-cost')?.innerText.trim() || '',
           ])"""
    )
    return {key: (requests, cost) for key, requests, cost in rows}


def test_analytics_equals_the_sums_of_the_log_rows(
    admin: Page, stack: Stack, api: Gql, cast: Cast
) -> None:
    rows = wait_for_logs(api, cast.people["made"]["n"])
    dims = {
        "model": lambda r: r["actualModel"] or r["requestedModel"],
        "user": lambda r: str((r["user"] or {}).get("id") or 0),
        "app": lambda r: str((r["app"] or {}).get("id") or 0),
        "key": lambda r: r["keyPrefix"],
    }
    open_page(admin, f"{stack.url}/analytics", "Analytics")
    admin.select_option("#analytics-preset", "7d")
    for dim, key_of in dims.items():
        want = expected(rows, key_of)
        admin.select_option("#analytics-dimension", dim)
        # The table is re-read from the gateway: wait for it rather than for a spinner.
        deadline = time.monotonic() + 20
        while shown(admin) != want and time.monotonic() < deadline:
            admin.wait_for_timeout(200)
        assert shown(admin) == want, dim
    # The unpriced model reads "unknown", never $0; totals are the sums of every row.
    admin.select_option("#analytics-dimension", "model")
    expect(admin.locator("tr.sb-analytics-row", has_text="my-finetune-unpriced")).to_contain_text(
        "unknown (1 request)"
    )
    total = admin.locator("#analytics-total")
    expect(total.locator("td.sb-col-requests")).to_have_text(fmt.number(len(rows)))
    errors = sum(1 for r in rows if r["status"] >= 400)
    expect(total.locator("td.sb-col-errors")).to_have_text(str(errors))
    # The CSV holds the exact amounts: equal to the log rows' sums to the last decimal.
    with admin.expect_download() as download:
        admin.click("#analytics-csv")
    text = open(download.value.path(), encoding="utf-8").read()
    table = list(csv.DictReader(io.StringIO(text)))
    by_model: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        by_model[r["actualModel"] or r["requestedModel"]] += Decimal(r["costUsd"] or 0)
    assert {t["model"]: Decimal(t["cost_usd"]) for t in table if t["model"] != "TOTAL"} == by_model
    assert Decimal(table[-1]["cost_usd"]) == sum(by_model.values())
    # Apps appear wherever users do: per-user usage and the home page's top spenders.
    open_page(admin, f"{stack.url}/usage", "Per-User Usage")
    expect(admin.locator("#usage-apps-table")).to_contain_text(cast.app["name"])
    open_page(admin, f"{stack.url}/", "Home")
    expect(admin.locator("#top-apps-table")).to_contain_text(cast.app["name"])


def test_health_agrees_with_the_error_counts(admin: Page, stack: Stack, cast: Cast) -> None:
    open_page(admin, f"{stack.url}/", "Home")
    openai_row = admin.locator("tr", has=admin.locator("td", has_text="openai")).filter(
        has=admin.locator(".sb-health")
    )
    # 2 of 11 openai requests failed (18%): degraded, or down if a breaker opened; never the
    # "healthy" the breakers alone said before.
    expect(openai_row).to_contain_text("2")
    expect(openai_row.locator(".sb-health")).not_to_have_text("healthy")


def test_org_admin_sees_the_live_hour_of_their_organization(
    browser: Browser, stack: Stack, admin: Page, api: Gql, cast: Cast
) -> None:
    wait_for_logs(api, cast.people["made"]["n"])  # the flush that wrote them wrote the minutes
    # Acme's traffic: the member's 4 requests and the app's 3, none failed; Globex's member had 2
    # failures, which the super_admin's gateway-wide numbers count and Acme's org_admin's do not.
    page = person(browser, stack, cast.people["oa"]["email"])
    open_page(page, f"{stack.url}/", "Home")
    expect(page.get_by_role("heading", name="Live · last 60 min")).to_be_visible()
    expect(page.locator("#live-requests")).to_have_text(fmt.number(7))
    expect(page.locator("#live-errors")).to_have_text("0")
    page.context.close()
    open_page(admin, f"{stack.url}/", "Home")
    expect(admin.locator("#live-requests")).not_to_have_text(fmt.number(7))
    assert int(admin.inner_text("#live-errors").replace(",", "")) >= 2


# -- every page at 1440 and 390 px ---------------------------------------------------------------


def slug(label: str) -> str:
    return label.lower().replace(" ", "-").replace("/", "-")


def test_every_page_at_1440_and_390_px_and_none_wider_than_390(
    browser: Browser, stack: Stack, cast: Cast
) -> None:
    too_wide: dict[str, Any] = {}
    for width in (WIDE, NARROW):
        context = browser.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.goto(f"{stack.url}/login")
        page.wait_for_selector("#login-submit")
        page.screenshot(path=str(SHOTS / f"login-{width}.png"), full_page=True)
        sign_in(page, stack.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        for route, label, _icon, _who in NAV:
            open_page(page, f"{stack.url}{route}", label)
            page.wait_for_timeout(400)  # charts finish their entry animation
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{slug(label)}-{width}.png"), full_page=True)
            if width == NARROW:
                fit = page.evaluate(OVERFLOW_JS)
                if fit["scrollWidth"] > NARROW or fit["offenders"]:
                    too_wide[route] = fit
        if width == NARROW:
            # The navigation is a drawer on a phone: it opens and leads to a page.
            page.click("#nav-open")
            page.locator("#nav-drawer").get_by_role("link", name="Analytics").click()
            expect(page.locator("#page-title")).to_have_text("Analytics")
        context.close()
    assert too_wide == {}, json.dumps(too_wide, indent=1)


# -- controls by role, from the authorization table ----------------------------------------------


def test_the_ui_table_is_the_apis_table() -> None:
    assert permissions.TABLE_PATH.read_text() == authz.ui_table(), (
        "run: python -m backend.graphql.authz --write"
    )


def settle(page: Page) -> None:
    """Wait until the page's controls stop changing (its data arrives after the first paint)."""
    count = "document.querySelectorAll('tr, [data-op]').length"
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('.sb-loading')")
    last = -1
    for _ in range(40):
        now = page.evaluate(count)
        if now == last:
            return
        last = now
        page.wait_for_timeout(250)


def visible_ops(page: Page) -> list[tuple[str, str]]:
    settle(page)
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-op]')]
              .filter(e => e.tagName === 'OPTION' || e.getClientRects().length > 0)
              .map(e => [e.getAttribute('data-op'), e.getAttribute('data-global') || ''])"""
    )


def roles_for(op: str, global_row: bool) -> list[str]:
    rules = {r.path: r for r in authz.graphql_rules()}
    rule = rules[op]
    allowed = [role for role in ("super_admin", "org_admin", "member") if rule.allows(role)]
    if global_row and op in authz.GLOBAL_ROWS:
        allowed = [r for r in allowed if r in authz.GLOBAL_ROWS[op]]
    return allowed


def controls_seen(page: Page, stack: Stack, role: str) -> dict[str, set[tuple[str, str]]]:
    seen: dict[str, set[tuple[str, str]]] = {}
    links = {a.get_attribute("href") for a in page.locator("#sidebar a").all()}
    for route, label, _icon, _who in NAV:
        if route not in links:
            continue
        open_page(page, f"{stack.url}{route}", label)
        seen[route] = {(op, g) for op, g in visible_ops(page)}
        refused = [(op, g) for op, g in seen[route] if role not in roles_for(op, g in ("1", "yes"))]
        assert refused == [], f"{role} sees controls it may not use on {route}: {refused}"
    return seen


def test_each_role_sees_only_controls_the_authorization_table_allows(
    browser: Browser, stack: Stack, admin: Page, cast: Cast
) -> None:
    # The super_admin sees the controls the others must not (so the check below can fail).
    sup = controls_seen(admin, stack, "super_admin")
    assert ("Mutation.createOrganization", "") in sup["/organizations"]
    assert ("Mutation.deleteModelAlias", "yes") in sup["/router"]
    assert ("Mutation.importAgentConfigs", "") in sup["/agents"]
    for who, role in (("oa", "org_admin"), ("mem", "member")):
        page = person(browser, stack, cast.people[who]["email"])
        seen = controls_seen(page, stack, role)
        if role == "org_admin":
            # What it may do is still offered: its own organization's alias, users, apps.
            assert ("Mutation.deleteModelAlias", "") in seen["/router"]
            assert ("Mutation.updateUser", "") in seen["/users"]
            assert ("Mutation.setDlpProtection", "") in seen["/organizations"]
        else:
            assert set(seen) == {"/analytics", "/keys", "/logs", "/me"}
            assert ("Mutation.revokeApiKey", "") in seen["/me"]
        page.context.close()


# -- destructive actions, catalog check, catalog page, audit -------------------------------------


def test_alias_to_an_unknown_model_needs_a_confirmation_and_delete_asks(
    admin: Page, stack: Stack, cast: Cast
) -> None:
    open_page(admin, f"{stack.url}/router", "Model Router")
    admin.fill("#alias-requested", f"gpt-9-{cast.tag}")
    admin.fill("#alias-target", TYPO)
    admin.select_option("#alias-scope", "")
    admin.click("#create-alias")
    expect(admin.locator("#alias-unknown")).to_contain_text(TYPO)
    expect(admin.locator("tr", has_text=f"gpt-9-{cast.tag}")).to_have_count(0)
    admin.click("#alias-save-anyway")
    alias = admin.locator("tr", has_text=f"gpt-9-{cast.tag}")
    expect(alias).to_contain_text(TYPO)
    alias.get_by_role("button", name="Delete").click()
    expect(admin.get_by_role("alertdialog")).to_contain_text(f"Delete gpt-9-{cast.tag}?")
    admin.click("#confirm-no")
    expect(alias).to_have_count(1)
    alias.get_by_role("button", name="Delete").click()
    admin.click("#confirm-yes")
    expect(alias).to_have_count(0)


def test_catalog_search_filter_and_price_override(admin: Page, stack: Stack) -> None:
    open_page(admin, f"{stack.url}/models", "Available Models")
    admin.fill("#models-search", "gpt-4o-mini")
    rows = admin.locator("tr.sb-model-row")
    expect(rows.first).to_contain_text("gpt-4o-mini")
    assert all("gpt-4o-mini" in r.inner_text() for r in rows.all())
    admin.select_option("#models-provider", "openai")
    mini = admin.locator("tr.sb-model-row", has_text="openai/gpt-4o-mini").first
    mini.get_by_role("button", name="Set price").click()
    admin.fill("#price-input", "1.5")
    admin.fill("#price-output", "6")
    admin.click("#save-price")
    expect(mini).to_contain_text("price override")
    expect(mini).to_contain_text("$1.50")
    mini.get_by_role("button", name="Remove override").click()
    admin.click("#confirm-yes")
    expect(mini).not_to_contain_text("price override")


def test_audit_log_with_filters(admin: Page, stack: Stack, cast: Cast) -> None:
    open_page(admin, f"{stack.url}/audit", "Audit Log")
    admin.fill("#audit-action", "alias.")
    admin.click("#audit-filter")
    table = admin.locator("#audit-table")
    expect(table).not_to_contain_text("user.create")
    expect(table).to_contain_text("alias.create")
    expect(table).to_contain_text("alias.delete")
    expect(admin.locator(".sb-pager")).to_contain_text("of ")
    # The filter is in the address: the link opens the same view.
    admin.wait_for_function("location.search === '?action=alias.'")
    open_page(admin, f"{stack.url}/audit?action=alias.", "Audit Log")
    expect(admin.locator("#audit-action")).to_have_value("alias.")
    expect(table).to_contain_text("alias.create")
    expect(table).not_to_contain_text("user.create")
