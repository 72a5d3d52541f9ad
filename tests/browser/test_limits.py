"""Limits set in the dashboard hold for the official SDK (issue 18 must-show 5, items 2 and 3).

In Chromium against the real gateway and dashboard (one stack for the module):

- a user's requests-per-minute set on the Users page: the user's key gets 2 answers, then the
  OpenAI SDK's ``RateLimitError`` (429) with ``Retry-After`` and ``x-ratelimit-*`` headers;
- an organization's limits set on the Organizations page: a request bigger than its tokens per
  minute is refused at once, and its requests per minute hold for every key in it;
- an app's model allowlist set on the Apps page: another model is refused (403 naming it);
- a key limit an administrator set: the key's owner, signed in as a member, sees who set it in
  My Account, is refused in words when raising it, and may lower it (the SDK then sees the
  lower limit). The administrator's limit is set through GraphQL, as a script would: the Keys page
  that lets an admin edit another user's key in the dashboard is issue 17's.

People, organizations, apps and keys are made through GraphQL (the dashboard's own forms are
tested in test_dashboard.py); every limit the SDK meets here was set in the browser, except the
administrator's lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, shot, sign_in
from tests.browser.test_dashboard import no_errors_shown, open_page

MEMBER_PASSWORD = "member-password-42"
HI = [{"role": "user", "content": "hi"}]


@dataclass
class Cast:
    tag: str
    token: str
    ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)


def gql(stack: Stack, query: str, variables: dict[str, Any], token: str | None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    resp = httpx.post(
        f"{stack.gateway.url}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=30,
    )
    body = resp.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]  # type: ignore[no-any-return]


def _org(stack: Stack, cast: Cast, key: str, name: str) -> None:
    made = gql(
        stack,
        "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
        {"i": {"name": name, "slug": f"{key}-{cast.tag}"}},
        cast.token,
    )
    cast.ids[key], cast.names[key] = made["createOrganization"]["id"], name


def _user(stack: Stack, cast: Cast, key: str, name: str, org: str) -> None:
    fields = {
        "name": name,
        "email": f"{key}-{cast.tag}@limits.test",
        "organizationId": cast.ids[org],
        "password": MEMBER_PASSWORD,
    }
    made = gql(
        stack,
        "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
        {"i": fields},
        cast.token,
    )
    cast.ids[key], cast.names[key] = made["createUser"]["id"], name
    _key(stack, cast, key, {"userId": cast.ids[key], "name": "laptop"})


def _key(stack: Stack, cast: Cast, key: str, owner: dict[str, Any]) -> None:
    made = gql(
        stack,
        "mutation($i: CreateApiKeyInput!) "
        "{ createApiKey(input: $i) { secret apiKey { id prefix } } }",
        {"i": owner},
        cast.token,
    )["createApiKey"]
    cast.keys[key], cast.ids[f"{key}_key"] = made["secret"], made["apiKey"]["id"]
    cast.prefixes[key] = made["apiKey"]["prefix"]


@pytest.fixture(scope="module")
def cast(stack: Stack) -> Cast:
    login = gql(
        stack,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD},
        None,
    )
    tag = uuid.uuid4().hex[:6]
    cast = Cast(tag=tag, token=login["login"]["token"])
    _org(stack, cast, "acme", f"Acme {tag}")
    _org(stack, cast, "globex", f"Globex {tag}")
    _user(stack, cast, "user", f"Uma User {tag}", "acme")
    _user(stack, cast, "member", f"Max Member {tag}", "acme")
    _user(stack, cast, "globexer", f"Gil Globex {tag}", "globex")
    made = gql(
        stack,
        "mutation($i: CreateAppInput!) { createApp(input: $i) { id } }",
        {
            "i": {
                "name": f"Billing {tag}",
                "slug": f"billing-{tag}",
                "organizationId": cast.ids["acme"],
            }
        },
        cast.token,
    )
    cast.ids["app"], cast.names["app"] = made["createApp"]["id"], f"Billing {tag}"
    _key(stack, cast, "app", {"appId": cast.ids["app"], "name": "billing"})
    return cast


@pytest.fixture
def sdk(stack: Stack) -> Iterator[Any]:
    clients: list[openai.OpenAI] = []

    def make(secret: str) -> openai.OpenAI:
        client = openai.OpenAI(
            base_url=stack.gateway.openai_base_url, api_key=secret, max_retries=0, timeout=30
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def open_limits(page: Page, row_text: str) -> Locator:
    """Clicks the row's Limits button; returns the dialog once its form has loaded."""
    page.locator("tr", has_text=row_text).get_by_role("button", name="Limits").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("#limit-rpm")).to_be_visible()
    return dialog


def save(page: Page, dialog: Locator) -> None:
    dialog.locator("#save-limits").click()
    expect(dialog.locator(".sb-ok")).to_contain_text("Limits saved")
    expect(dialog.locator(".sb-error")).to_have_count(0)


def close(page: Page) -> None:
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)


def chat(client: openai.OpenAI, model: str = "openai/gpt-4o-mini", **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(model=model, messages=HI, **kw)


def test_user_limit_set_on_users_page_refuses_the_sdk_with_429(
    admin: Page, stack: Stack, cast: Cast, sdk: Any
) -> None:
    open_page(admin, stack, "/users", "Users")
    dialog = open_limits(admin, cast.names["user"])
    expect(dialog).to_contain_text(f"Limits of {cast.names['user']}")
    expect(dialog).to_contain_text("per ISO week")
    dialog.locator("#limit-rpm").fill("many")
    dialog.locator("#save-limits").click()
    expect(dialog.locator(".sb-error")).to_contain_text("Requests per minute must be a whole")
    dialog.locator("#limit-rpm").fill("2")
    dialog.locator("#limit-cap").fill("40")
    save(admin, dialog)
    shot(admin, "limits-user-dialog")
    close(admin)
    # The weekly cap set in the dialog is the table's Weekly Cap.
    expect(admin.locator("tr", has_text=cast.names["user"])).to_contain_text("$40.00")

    client = sdk(cast.keys["user"])
    for remaining in ("1", "0"):
        raw = chat(client)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-remaining-requests"] == remaining
        assert raw.parse().choices[0].message.content
    with pytest.raises(openai.RateLimitError) as refused:
        chat(client)
    headers = refused.value.response.headers
    assert refused.value.status_code == 429
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(headers["retry-after"]) <= 61
    assert f"user user-{cast.tag}@limits.test" in str(refused.value)
    assert "2 requests per minute" in str(refused.value)

    # The dialog reads the limit back.
    open_page(admin, stack, "/users", "Users")
    dialog = open_limits(admin, cast.names["user"])
    expect(dialog.locator("#limit-rpm")).to_have_value("2")
    expect(dialog.locator("#limit-cap")).to_have_value("40")
    close(admin)
    no_errors_shown(admin)


def test_org_limits_set_on_organizations_page_hold_for_its_keys(
    admin: Page, stack: Stack, cast: Cast, sdk: Any
) -> None:
    open_page(admin, stack, "/organizations", "Organizations")
    dialog = open_limits(admin, cast.names["globex"])
    dialog.locator("#limit-rpm").fill("2")
    dialog.locator("#limit-tpm").fill("300")
    save(admin, dialog)
    close(admin)

    client = sdk(cast.keys["globexer"])
    # More tokens than the organization's minute allows: refused at once, not worth a retry.
    with pytest.raises(openai.RateLimitError) as too_big:
        chat(client, max_tokens=400)
    assert too_big.value.response.headers["x-ratelimit-limit-tokens"] == "300"
    assert too_big.value.response.headers["x-should-retry"] == "false"
    assert f"organization {cast.names['globex']}" in str(too_big.value)
    assert "300 tokens per minute" in str(too_big.value)
    for remaining in ("1", "0"):
        raw = chat(client, max_tokens=20)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-remaining-requests"] == remaining
        assert raw.headers["x-ratelimit-limit-tokens"] == "300"
    with pytest.raises(openai.RateLimitError) as refused:
        chat(client, max_tokens=20)
    assert refused.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert f"organization {cast.names['globex']}" in str(refused.value)
    # Another organization's keys are not held to it.
    assert chat(sdk(cast.keys["app"])).parse().choices[0].message.content


def test_app_allowlist_set_on_apps_page_refuses_another_model(
    admin: Page, stack: Stack, cast: Cast, sdk: Any
) -> None:
    open_page(admin, stack, "/apps", "Apps")
    dialog = open_limits(admin, cast.names["app"])
    dialog.locator("#limit-models").fill("gpt-4o-mini, claude-*")
    dialog.locator("#limit-period").select_option("daily")
    dialog.locator("#limit-cap").fill("5")
    save(admin, dialog)
    close(admin)

    client = sdk(cast.keys["app"])
    assert chat(client).parse().choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat(client, model="openai/gpt-4o")
    message = str(refused.value)
    assert refused.value.status_code == 403
    assert "openai/gpt-4o" in message and f"billing-{cast.tag}" in message
    assert "gpt-4o-mini" in message  # what it may use

    open_page(admin, stack, "/apps", "Apps")
    dialog = open_limits(admin, cast.names["app"])
    expect(dialog.locator("#limit-models")).to_have_value("gpt-4o-mini, claude-*")
    expect(dialog.locator("#limit-period")).to_have_value("daily")
    close(admin)


def test_member_cannot_raise_an_admin_locked_key_limit(
    browser: Browser, stack: Stack, cast: Cast, sdk: Any
) -> None:
    # The administrator (Ada Admin, super_admin) sets 5 requests/minute on the member's key.
    gql(
        stack,
        "mutation($id: Int!) { setLimits(target: KEY, id: $id, input: {requestsPerMinute: 5}) "
        "{ requestsPerMinute } }",
        {"id": cast.ids["member_key"]},
        cast.token,
    )
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        sign_in(page, stack.url, f"member-{cast.tag}@limits.test", MEMBER_PASSWORD)
        open_page(page, stack, "/me", "My Account")
        dialog = open_limits(page, "laptop")
        lock = dialog.locator("#limit-locks tr", has_text="Requests per minute")
        expect(lock).to_contain_text("5")
        expect(lock).to_contain_text("Ada Admin (super admin)")
        expect(dialog.locator("#limit-rpm")).to_have_value("5")

        dialog.locator("#limit-rpm").fill("1000000")
        dialog.locator("#save-limits").click()
        error = dialog.locator(".sb-error")
        expect(error).to_contain_text("requests-per-minute limit of key")
        expect(error).to_contain_text("was set by an administrator (super_admin Ada Admin")
        expect(error).to_contain_text("you may tighten it but not raise or remove it")
        dialog.locator("#limit-rpm").fill("")
        dialog.locator("#save-limits").click()
        expect(error).to_contain_text("not raise or remove it")
        shot(page, "limits-member-refused")

        # Lowering it is the owner's right; the lock (the administrator's 5) stays.
        dialog.locator("#limit-rpm").fill("1")
        save(page, dialog)
        expect(lock).to_contain_text("5")
        close(page)
        no_errors_shown(page)
    finally:
        context.close()

    client = sdk(cast.keys["member"])
    assert chat(client).headers["x-ratelimit-limit-requests"] == "1"
    with pytest.raises(openai.RateLimitError) as refused:
        chat(client)
    assert refused.value.response.headers["x-ratelimit-limit-requests"] == "1"
    assert f"key {cast.prefixes['member']}" in str(refused.value)
