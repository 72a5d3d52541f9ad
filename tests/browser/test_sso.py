"""Single sign-on in Chromium, against the real gateway, dashboard and a real OpenID provider
(issue 18 item 1, must-show 1 and 5).

- An administrator sets up SSO and a mapping rule on the settings page (the client secret shown
  only as its last four) and marks an organization "SSO only" on the organizations page.
- A person clicks "Sign in with SSO" on the login page, signs in at the provider (panva's
  ``oidc-provider``), and lands in the dashboard signed in, as the org_admin of the organization
  the rule maps their group to.
- A member of the SSO-only organization is refused a password sign-in, in words.
- Suspending the SSO user ends their session: their next page sends them back to the login.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, shot
from tests.browser.test_dashboard import no_errors_shown, open_page
from tests.sso.provider import CLIENT_ID, CLIENT_SECRET, OidcProvider, require_installed

TAG = uuid.uuid4().hex[:6]
ORG = f"Sso Org {TAG}"
DANA = {
    "email": f"dana-{TAG}@acme.test",
    "email_verified": True,
    "name": "Dana Okafor",
    "groups": ["everyone", f"gw-admins-{TAG}"],
}
PASSWORD_MEMBER = f"pat-{TAG}@acme.test"
PASSWORD = "pat-password-12345"


def gql(stack: Stack, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """An administrator's GraphQL call (a session opened with the admin's password)."""
    url = stack.gateway.url + "/graphql"
    login = httpx.post(
        url,
        json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ token } }",
            "variables": {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD},
        },
        timeout=30,
    ).json()
    token = login["data"]["login"]["token"]
    body = httpx.post(
        url,
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert not body.get("errors"), body
    return body["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def provider(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    require_installed()
    op = OidcProvider(
        [stack.gateway.url + "/auth/oidc/callback"],
        {"dana": DANA},
        tmp_path_factory.mktemp("oidc"),
    ).start()
    org = gql(
        stack,
        "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
        {"i": {"name": ORG, "slug": f"sso-org-{TAG}"}},
    )
    gql(
        stack,
        "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
        {
            "i": {
                "name": "Pat",
                "email": PASSWORD_MEMBER,
                "password": PASSWORD,
                "role": "MEMBER",
                "organizationId": org["createOrganization"]["id"],
            }
        },
    )
    try:
        yield op
    finally:
        op.stop()


def test_admin_sets_up_sso_on_the_settings_page(
    admin: Page, stack: Stack, provider: OidcProvider
) -> None:
    open_page(admin, stack, "/settings", "Gateway Settings")
    # The URLs are suggested from where the dashboard and its gateway are.
    expect(admin.locator("#sso-gateway")).to_have_value(stack.gateway.url)
    expect(admin.locator("#sso-dashboard")).to_have_value(stack.url)
    admin.fill("#sso-name", "Acme Login")
    admin.fill("#sso-issuer", "not a url")
    admin.fill("#sso-client-id", CLIENT_ID)
    admin.click("#save-sso")
    expect(admin.locator(".sb-error")).to_contain_text("issuer must be a URL")
    admin.fill("#sso-issuer", provider.issuer)
    admin.fill("#sso-secret", CLIENT_SECRET)
    admin.fill("#sso-scopes", "openid email profile groups")
    admin.select_option("#sso-default-org", label=ORG)
    admin.click("#save-sso")
    expect(admin.locator(".sb-ok")).to_contain_text("Single sign-on saved")
    # Drawn again from what was stored: the default organization stays chosen, also after an
    # unsaved change and a fresh load of the page.
    expect(admin.locator("#sso-default-org option:checked")).to_have_text(ORG)
    admin.select_option("#sso-default-org", "")
    open_page(admin, stack, "/settings", "Gateway Settings")
    expect(admin.locator("#sso-default-org option:checked")).to_have_text(ORG)
    expect(admin.locator("#sso-secret")).to_have_value("")
    expect(admin.get_by_text("••••" + CLIENT_SECRET[-4:])).to_be_visible()
    expect(admin.locator("#sso-callback")).to_have_text(stack.gateway.url + "/auth/oidc/callback")
    assert CLIENT_SECRET not in admin.content()

    admin.fill("#sso-rule-claim", "groups")
    admin.fill("#sso-rule-value", f"gw-admins-{TAG}")
    admin.select_option("#sso-rule-role", "org_admin")
    admin.click("#add-sso-rule")
    expect(admin.locator(".sb-error")).to_contain_text("needs an organization")
    admin.fill("#sso-rule-value", f"gw-admins-{TAG}")
    admin.select_option("#sso-rule-org", label=ORG)
    admin.select_option("#sso-rule-role", "org_admin")
    admin.click("#add-sso-rule")
    rule = admin.locator("#sso-rules-table tr", has_text=f"gw-admins-{TAG}")
    expect(rule).to_contain_text("Organization admin")
    expect(rule).to_contain_text(ORG)
    no_errors_shown(admin)
    shot(admin, "settings-sso")


def test_sign_in_with_sso_lands_signed_in_with_mapped_role_and_org(
    browser: Browser, stack: Stack, provider: OidcProvider
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{stack.url}/login")
        sso = page.locator("#sso-login")
        expect(sso).to_contain_text("Sign in with SSO")
        expect(page.get_by_text("Acme Login")).to_be_visible()
        sso.click()
        # The provider's own login page.
        page.wait_for_url(f"{provider.issuer}/interaction/**")
        page.fill("#login", "dana")
        page.click("#submit")
        expect(page.locator("#whoami")).to_have_text(DANA["email"])
        expect(page.locator("#whoami-role")).to_have_text(f"org admin · {ORG}")
        assert page.url.rstrip("/") == stack.url  # an admin lands on the home page
        expect(page.locator("#page-title")).to_have_text("Home")
        no_errors_shown(page)
        shot(page, "sso-signed-in")
        # The session is the dashboard's usual one: other pages work with it.
        open_page(page, stack, "/users", "Users")
        no_errors_shown(page)

        # Suspending the user ends that session: the next page goes back to the login.
        query = "query($s: String!) { users(filter: {search: $s}) { nodes { id email } } }"
        users = gql(stack, query, {"s": DANA["email"]})["users"]["nodes"]
        [dana] = [u for u in users if u["email"] == DANA["email"]]
        gql(
            stack,
            "mutation($id: Int!) { updateUser(id: $id, input: {status: SUSPENDED}) { status } }",
            {"id": dana["id"]},
        )
        page.goto(f"{stack.url}/users")
        page.wait_for_url(f"{stack.url}/login**")
        expect(page.locator(".sb-error")).to_contain_text("session has expired")
        # And SSO refuses them while suspended, in words, on the login page.
        page.locator("#sso-login").click()
        page.wait_for_url(f"{stack.url}/login**")
        expect(page.locator(".sb-error")).to_contain_text("suspended")
    finally:
        context.close()


def test_sso_only_organization_refuses_passwords(
    admin: Page, browser: Browser, stack: Stack, provider: OidcProvider
) -> None:
    open_page(admin, stack, "/organizations", "Organizations")
    row = admin.locator("#orgs-table tr", has_text=ORG)
    expect(row).to_contain_text("password or SSO")
    row.get_by_role("button", name="Edit").click()
    admin.check("#edit-org-sso-only")
    admin.click("#save-org")
    expect(row).to_contain_text("SSO only")
    no_errors_shown(admin)

    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{stack.url}/login")
        page.fill("#email", PASSWORD_MEMBER)
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator(".sb-error")).to_contain_text("single sign-on only")
        assert page.locator("#whoami").count() == 0
        shot(page, "sso-only-refuses-password")
    finally:
        context.close()
