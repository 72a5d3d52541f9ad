"""The operators' console in Chromium against the real gateway and dashboard (issue 17 items 1-3,
must-show 1): open a failed request from the log and see its attempts and the cap or provider
error; filter the log by organization + model + errors only + a date range and see exactly the
rows the API returns; revoke and rotate another user's key and see the official SDK refused.

One stack for the module (``conftest.stack``); the traffic is made once, with the OpenAI SDK, by
the ``world`` fixture: two organizations, their members, an app, a key with a tiny spend cap, and
a fallback chain whose every attempt fails at the fake provider.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, shot, sign_in
from tests.browser.test_dashboard import no_errors_shown, open_page
from tests.fakes.base import Reply

MODEL = "openai/gpt-4o-mini"
PASSWORD = "console-password-42"
WAIT_S = 30.0
LOG_IDS = """query($f: GatewayLogFilter) {
  gatewayLogs(filter: $f, first: 100, sort: NEWEST) { nodes { requestId } }
  gatewayLogCount(filter: $f) { count exact } }"""


@dataclass
class World:
    token: str
    tag: str
    orgs: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)


def gql(stack: Stack, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
    resp = httpx.post(
        f"{stack.gateway.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"} if token else {},
        timeout=30,
    )
    body = resp.json()
    assert not body.get("errors"), body["errors"]
    return dict(body["data"])


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def sdk(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.gateway.openai_base_url, api_key=key, max_retries=0)


def ask(stack: Stack, key: str, model: str = MODEL) -> Any:
    return sdk(stack, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=16
    )


def failed_request_id(stack: Stack, key: str, model: str, error: type[Exception]) -> str:
    with pytest.raises(error) as caught:
        ask(stack, key, model)
    return str(caught.value.response.headers["x-request-id"])  # type: ignore[attr-defined]


def _seed(stack: Stack, w: World) -> None:
    t = w.token
    for name in ("acme", "globex"):
        org = gql(
            stack,
            t,
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
            i={"name": f"{name.title()} {w.tag}", "slug": f"{name}-{w.tag}"},
        )
        w.orgs[name] = org["createOrganization"]["id"]
    for name, org in (("mia", "acme"), ("ben", "globex")):
        user = gql(
            stack,
            t,
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            i={
                "name": f"{name.title()} {w.tag}",
                "email": f"{name}-{w.tag}@example.com",
                "password": PASSWORD,
                "organizationId": w.orgs[org],
            },
        )
        w.users[name] = user["createUser"]["id"]
    app = gql(
        stack,
        t,
        "mutation($i: CreateAppInput!) { createApp(input: $i) { id } }",
        i={"name": f"Bot {w.tag}", "slug": f"bot-{w.tag}", "organizationId": w.orgs["acme"]},
    )["createApp"]["id"]
    owners = {"mia": {"userId": w.users["mia"]}, "capped": {"userId": w.users["mia"]}}
    owners |= {"ben": {"userId": w.users["ben"]}, "bot": {"appId": app}}
    for name, owner in owners.items():
        made = gql(
            stack,
            t,
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) "
            "{ secret apiKey { id prefix } } }",
            i={**owner, "name": f"{name}-{w.tag}"},
        )["createApiKey"]
        w.keys[name], w.prefixes[name] = made["secret"], made["apiKey"]["prefix"]
        if name == "capped":
            gql(
                stack,
                t,
                "mutation($id: Int!) { setLimits(target: KEY, id: $id, input: "
                '{spendCapUsd: "0.000001"}) { spendCapUsd } }',
                id=made["apiKey"]["id"],
            )
    gql(
        stack,
        t,
        "mutation($p: String!) { setFallbackChain(primaryModel: $p, chain: "
        '["openai/gpt-4o"]) { primaryModel } }',
        p=f"openai/primary-{w.tag}",
    )


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    login = gql(
        stack,
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        e=ADMIN_EMAIL,
        p=ADMIN_PASSWORD,
    )
    w = World(token=login["login"]["token"], tag=uuid.uuid4().hex[:6])
    _seed(stack, w)
    fake = stack.openai
    # Successes in both organizations.
    for key in ("mia", "mia", "ben", "bot"):
        ask(stack, w.keys[key])
    # Globex under DLP: an address its member sends is redacted, and the activity recorded.
    gql(
        stack,
        w.token,
        "mutation($id: Int!) { setDlpProtection(scope: ORG, targetId: $id, enabled: true) "
        "{ enabled } }",
        id=w.orgs["globex"],
    )
    dlp = sdk(stack, w.keys["ben"]).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": f"mail dlp-{w.tag}@example.com"}]
    )
    w.requests["dlp"] = dlp.headers["x-request-id"]
    # A spend-cap refusal (never reaches the provider)...
    w.requests["cap"] = failed_request_id(stack, w.keys["capped"], MODEL, openai.RateLimitError)
    # ...a provider's 429 after a fallback: the primary fails 500 twice, the chain's gpt-4o
    # answers 429 twice (the app's key, organization acme)...
    fake.replies.extend([Reply(status=500, error_message="primary boom")] * 2)
    fake.replies.extend([Reply(status=429, error_message="fallback slow down")] * 2)
    w.requests["provider"] = failed_request_id(
        stack, w.keys["bot"], f"openai/primary-{w.tag}", openai.RateLimitError
    )
    # ...a provider's 500 on gpt-4o by acme's member, and one by globex's (another org).
    fake.replies.extend([Reply(status=500, error_message="down")] * 2)
    w.requests["acme500"] = failed_request_id(
        stack, w.keys["mia"], "openai/gpt-4o", openai.InternalServerError
    )
    fake.replies.extend([Reply(status=500, error_message="down")] * 2)
    w.requests["globex500"] = failed_request_id(
        stack, w.keys["ben"], "openai/gpt-4o", openai.InternalServerError
    )
    # Every row is written before the tests read the log.
    wait_for(
        lambda: gql(stack, w.token, LOG_IDS, f={"requestId": w.requests["globex500"]})[
            "gatewayLogs"
        ]["nodes"],
        "the last request's row",
    )
    return w


def _shown_ids(page: Page) -> list[str]:
    hrefs = page.locator("#logs-table a.sb-log-link").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    return [parse_qs(urlparse(h).query)["id"][0] for h in hrefs]


def test_a_failed_request_opens_with_its_attempts_and_who_failed_it(
    admin: Page, stack: Stack, world: World
) -> None:
    open_page(admin, stack, "/logs", "Gateway Logs")
    provider_row = admin.locator("tr.sb-log-row", has=admin.locator(
        f"a[href='/request?id={world.requests['provider']}']"
    ))  # fmt: skip
    expect(provider_row.locator(".sb-why")).to_have_text("429 · provider 429")
    cap_row = admin.locator("tr.sb-log-row", has=admin.locator(
        f"a[href='/request?id={world.requests['cap']}']"
    ))  # fmt: skip
    expect(cap_row.locator(".sb-why")).to_have_text("429 · spend cap")

    provider_row.locator("a.sb-log-link").click()
    expect(admin.locator("#page-title")).to_have_text("Request detail")
    expect(admin.locator("#req-id")).to_have_text(world.requests["provider"])
    expect(admin.locator("#req-failed-by")).to_have_text("The provider failed it (HTTP 429)")
    expect(admin.locator("#req-error")).to_contain_text("fallback slow down")
    attempts = admin.locator("#req-attempts tr.sb-attempt")
    expect(attempts).to_have_count(4)
    expected = [
        ("openai/primary-", "502", "provider answered 500", "primary boom", "fallback attempt"),
        ("openai/primary-", "502", "provider answered 500", "primary boom", "fallback attempt"),
        ("openai/gpt-4o", "429", "provider answered 429", "fallback slow down", "fallback attempt"),
        ("openai/gpt-4o", "429", "provider answered 429", "fallback slow down", "the request's"),
    ]
    for i, texts in enumerate(expected):
        for text in texts:
            expect(attempts.nth(i)).to_contain_text(text)
        expect(attempts.nth(i)).to_contain_text(" ms")
    expect(admin.locator("#req-refused-by")).to_have_count(0)
    expect(admin.locator("#req-attempts")).to_be_visible()
    no_errors_shown(admin)
    shot(admin, "request-detail-provider-429")

    # The spend cap's 429: the gateway's refusal, naming the key's cap, no provider call.
    admin.goto(f"{stack.url}/request?id={world.requests['cap']}")
    expect(admin.locator("#req-refused-by")).to_have_text("Refused by the gateway: spend cap")
    expect(admin.locator("#req-refusal")).to_contain_text("Spend cap: the monthly cap of key #")
    expect(admin.locator("#req-attempts tr.sb-attempt")).to_have_count(1)
    expect(admin.locator("#req-attempts")).to_contain_text("gateway: spend cap")
    expect(admin.locator("#req-failed-by")).to_have_count(0)
    expect(admin.locator("#req-key")).to_have_text(world.prefixes["capped"])
    shot(admin, "request-detail-spend-cap")

    # A success shows its tokens, cost and the price used.
    ok_id = gql(stack, world.token, LOG_IDS, f={"keyPrefix": world.prefixes["bot"], "status": 200})
    request_id = ok_id["gatewayLogs"]["nodes"][0]["requestId"]
    admin.goto(f"{stack.url}/request?id={request_id}")
    expect(admin.locator("#req-status")).to_have_text("200")
    expect(admin.locator("#req-input")).to_have_text("10")
    expect(admin.locator("#req-output")).to_have_text("5")
    expect(admin.locator("#req-price")).to_contain_text("per 1M tokens (price-table)")
    expect(admin.locator("#req-body")).to_contain_text("hello")


def test_filter_by_org_model_errors_and_range_shows_the_apis_rows(
    admin: Page, stack: Stack, world: World
) -> None:
    open_page(admin, stack, "/logs", "Gateway Logs")
    now = dt.datetime.now(dt.UTC)
    since = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    until = (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    admin.select_option("#logs-org", str(world.orgs["acme"]))
    admin.fill("#logs-model", "openai/gpt-4o")
    admin.click("#logs-errors")
    admin.select_option("#logs-range", "custom")
    admin.fill("#logs-since", since)
    admin.fill("#logs-until", until)
    admin.click("#logs-apply")

    f = {
        "organizationId": world.orgs["acme"],
        "model": "openai/gpt-4o",
        "errorsOnly": True,
        "since": f"{since}:00+00:00",
        "until": f"{until}:00+00:00",
    }
    api = gql(stack, world.token, LOG_IDS, f=f)
    expected = [n["requestId"] for n in api["gatewayLogs"]["nodes"]]
    # The fallback's final 429 (actual gpt-4o) and mia's 500; not globex's, not the cap's.
    assert set(expected) == {world.requests["provider"], world.requests["acme500"]}
    count = api["gatewayLogCount"]["count"]
    expect(admin.locator("#logs-total")).to_have_text(f"1–{count} of {count}")
    wait_for(lambda: _shown_ids(admin) == expected, f"the table to show {expected}", 15)
    # The filter is in the address: reloading it shows the same view.
    expect(admin).to_have_url(re.compile(r"[?&]until="))
    query = parse_qs(urlparse(admin.url).query)
    assert query["org"] == [str(world.orgs["acme"])] and query["model"] == ["openai/gpt-4o"]
    assert query["errors"] == ["1"] and query["range"] == ["custom"]
    assert query["since"] == [since] and query["until"] == [until]
    shared = admin.url
    no_errors_shown(admin)
    shot(admin, "gateway-logs-filtered")
    admin.goto(shared)
    expect(admin.locator("#logs-total")).to_have_text(f"1–{count} of {count}")
    wait_for(lambda: _shown_ids(admin) == expected, "the shared view's rows", 15)
    expect(admin.locator("#logs-model")).to_have_value("openai/gpt-4o")
    expect(admin.locator("#logs-org")).to_have_value(str(world.orgs["acme"]))

    # Free text: a request id finds that request alone; the total is the API's, not the page's.
    admin.click("#logs-clear")
    # Cleared (the button goes with the filter) before typing, or the clear would undo it.
    expect(admin.locator("#logs-clear")).to_have_count(0)
    admin.fill("#logs-q", world.requests["globex500"][:16])
    expect(admin.locator("#logs-q")).to_have_value(world.requests["globex500"][:16])
    admin.click("#logs-apply")
    wait_for(lambda: _shown_ids(admin) == [world.requests["globex500"]], "the searched request")
    total = gql(stack, world.token, LOG_IDS, f={})["gatewayLogCount"]["count"]
    admin.click("#logs-clear")
    expect(admin.locator("#logs-total")).to_contain_text(f"of {total}")


def test_dlp_activity_and_error_reports_open_the_request(
    admin: Page, stack: Stack, world: World
) -> None:
    open_page(admin, stack, "/dlp", "DLP")
    link = admin.locator(f"a.sb-request-link[href='/request?id={world.requests['dlp']}']")
    expect(link.first).to_be_visible()
    link.first.click()
    expect(admin.locator("#page-title")).to_have_text("Request detail")
    expect(admin.locator("#req-id")).to_have_text(world.requests["dlp"])
    # The log keeps what was sent upstream: the placeholder, never the address.
    expect(admin.locator("#req-body")).to_contain_text("[EMAIL_1]")
    assert f"dlp-{world.tag}@example.com" not in admin.inner_text("#req-body")

    open_page(admin, stack, "/errors", "Error Reports")
    report = admin.locator(f"a.sb-request-link[href='/request?id={world.requests['acme500']}']")
    expect(report.first).to_be_visible()
    report.first.click()
    expect(admin.locator("#req-id")).to_have_text(world.requests["acme500"])
    expect(admin.locator("#req-failed-by")).to_have_text("The provider failed it (HTTP 500)")


def test_a_member_sees_only_their_own_requests(
    browser: Browser, stack: Stack, world: World
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, stack.url, f"mia-{world.tag}@example.com", PASSWORD)
    page.goto(f"{stack.url}/logs")
    expect(page.locator("#page-title")).to_have_text("Gateway Logs")
    member = gql(
        stack,
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        e=f"mia-{world.tag}@example.com",
        p=PASSWORD,
    )["login"]["token"]
    own = [n["requestId"] for n in gql(stack, member, LOG_IDS, f={})["gatewayLogs"]["nodes"]]
    assert world.requests["acme500"] in own and world.requests["provider"] not in own
    wait_for(lambda: _shown_ids(page) == own, "the member's own rows")
    assert page.locator("#logs-org").count() == 0, "no organization select for a member"
    page.goto(f"{stack.url}/request?id={world.requests['globex500']}")
    expect(page.locator(".sb-error")).to_contain_text("No request")
    context.close()


def test_rotate_and_revoke_another_users_key(admin: Page, stack: Stack, world: World) -> None:
    old_key, prefix = world.keys["ben"], world.prefixes["ben"]
    open_page(admin, stack, "/keys", "Keys")
    admin.fill("#keys-q", prefix)
    admin.click("#keys-apply")
    ben = admin.locator("tr.sb-key-row", has_text=prefix)
    expect(admin.locator("tr.sb-key-row")).to_have_count(1)
    expect(ben).to_contain_text(f"Ben {world.tag}")
    expect(ben).to_contain_text(f"Globex {world.tag}")
    expect(ben.locator(".sb-last-used")).not_to_have_text("never")
    no_errors_shown(admin)
    shot(admin, "keys")

    # Limits through the shared dialog.
    ben.get_by_role("button", name="Limits").click()
    dialog = admin.get_by_role("dialog")
    dialog.locator("#limit-rpm").fill("100")
    dialog.locator("#save-limits").click()
    expect(dialog.locator(".sb-ok")).to_contain_text("Limits saved")
    admin.keyboard.press("Escape")
    expect(admin.get_by_role("dialog")).to_have_count(0)
    expect(ben).to_contain_text("100 rpm")

    # Rotate with a grace period: the old key works until it ends, then the SDK is refused.
    grace_s = 6
    ben.get_by_role("button", name="Rotate").click()
    admin.select_option("#rotate-grace", "custom")
    admin.fill("#rotate-grace-seconds", str(grace_s))
    admin.click("#confirm-key-action")
    secret = admin.locator("#new-secret")
    expect(secret).not_to_be_empty()
    new_key = secret.inner_text().strip()
    rotated_at = time.monotonic()
    admin.click("#secret-done")
    assert new_key != old_key
    ask(stack, new_key)
    ask(stack, old_key)
    assert time.monotonic() - rotated_at < grace_s, "the old key was tried after its grace ended"

    def old_refused() -> bool:
        try:
            ask(stack, old_key)
        except openai.AuthenticationError as err:
            assert "expired" in str(err)
            return True
        return False

    wait_for(old_refused, "the old key to be refused after its grace period")
    assert time.monotonic() - rotated_at >= grace_s - 1

    # Revoke the new key: the SDK is refused from then on.
    admin.fill("#keys-q", "")
    admin.click("#keys-apply")
    rows = admin.locator("tr.sb-key-row", has_text=f"ben-{world.tag}")
    expect(rows).to_have_count(2)
    fresh = rows.filter(has_text="active")
    expect(fresh).to_have_count(1)
    expect(rows.filter(has_text="expired")).to_have_count(1)
    expect(fresh).to_contain_text("100 rpm")  # the limits went along with the rotation
    fresh.get_by_role("button", name="Revoke").click()
    admin.click("#confirm-key-action")
    expect(admin.locator(".sb-ok", has_text="is revoked")).to_be_visible()
    expect(rows.filter(has_text="revoked")).to_have_count(1)

    def new_refused() -> bool:
        try:
            ask(stack, new_key)
        except openai.AuthenticationError as err:
            assert "revoked" in str(err)
            return True
        return False

    wait_for(new_refused, "the revoked key to be refused", 10)
    no_errors_shown(admin)
