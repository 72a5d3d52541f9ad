"""Provider deployments on the settings page, in a real browser (issue 18 item 5 and must-show 5).

A deployment made in the form appears in the table with only its key's last four, takes
requests sent through the official SDK (its load shows), can be disabled and deleted.
"""

from __future__ import annotations

import uuid

import openai
from playwright.sync_api import Page, expect

from tests.browser.stack import Stack, shot
from tests.browser.test_dashboard import no_errors_shown, open_page
from tests.fakes.openai_fake import OpenAIFake


def test_deployment_form_table_load_and_actions(admin: Page, stack: Stack) -> None:
    second = OpenAIFake()
    second.start()
    try:
        secret = f"sk-browser-dep-{uuid.uuid4().hex}WXYZ"
        open_page(admin, stack, "/settings", "Gateway Settings")
        expect(admin.locator("#deployments-table")).to_contain_text("No deployments")
        admin.fill("#dep-provider", "openai")
        admin.fill("#dep-name", "acct-b")
        admin.fill("#dep-url", second.sdk_base_url)
        admin.fill("#dep-key", secret)
        admin.fill("#dep-weight", "3")
        admin.fill("#dep-rpm", "lots")
        admin.click("#save-deployment")
        expect(admin.locator(".sb-error")).to_contain_text("Requests per minute must be")
        admin.fill("#dep-rpm", "100")
        admin.click("#save-deployment")
        row = admin.locator("#deployments-table tr", has_text="acct-b")
        expect(row).to_contain_text("••••WXYZ")
        expect(row).to_contain_text("100 rpm")
        expect(row.locator(".sb-dep-health")).to_have_text("healthy")
        expect(admin.locator("#dep-key")).to_have_value("")
        assert secret[:-4] not in admin.content()

        # Requests through the gateway go to the new account, and the table shows its load.
        client = openai.OpenAI(
            base_url=stack.gateway.openai_base_url, api_key=stack.admin_key, max_retries=0
        )
        for _ in range(3):
            client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        assert {r.headers["authorization"] for r in second.requests} == {f"Bearer {secret}"}
        open_page(admin, stack, "/settings", "Gateway Settings")
        row = admin.locator("#deployments-table tr", has_text="acct-b")
        expect(row).to_contain_text("3 req/min")
        expect(row).to_contain_text("3 sent")
        no_errors_shown(admin)
        shot(admin, "settings-deployments")

        row.get_by_role("button", name="Disable").click()
        expect(row.locator(".sb-dep-health")).to_have_text("disabled")
        row.get_by_role("button", name="Delete").click()
        expect(admin.locator("#deployments-table tr", has_text="acct-b")).to_have_count(0)
        expect(admin.locator(".sb-ok")).to_contain_text("removed")
    finally:
        second.stop()
