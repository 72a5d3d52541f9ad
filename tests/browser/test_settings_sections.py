"""Provider deployments and alerts on the settings page, in a real browser (issue 18 items 4, 5
and must-show 5).

- A deployment made in the form appears in the table with only its key's last four, takes
  requests sent through the official SDK (its load shows), can be disabled and deleted.
- An alert channel made in the form (a local webhook receiver started here) gets a signed test
  alert from its "Send test" button, shown as sent in the recent alerts; a rule is made too.
"""

from __future__ import annotations

import uuid

import openai
from playwright.sync_api import Page, expect

from tests.browser.stack import Stack, shot
from tests.browser.test_dashboard import no_errors_shown, open_page
from tests.e2e.alert_receivers import WebhookReceiver
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
        # The log says which deployment answered.
        open_page(admin, stack, "/logs", "Gateway Logs")
        expect(admin.locator("#logs-table tr", has_text="via acct-b")).to_have_count(3)
        open_page(admin, stack, "/settings", "Gateway Settings")
        row = admin.locator("#deployments-table tr", has_text="acct-b")
        expect(row).to_contain_text("3 req/min")
        expect(row).to_contain_text("3 sent")
        no_errors_shown(admin)
        shot(admin, "settings-deployments")

        row.get_by_role("button", name="Disable").click()
        expect(row.locator(".sb-dep-health")).to_have_text("disabled")
        row.get_by_role("button", name="Delete").click()
        admin.click("#confirm-yes")  # deletes ask first
        expect(admin.locator("#deployments-table tr", has_text="acct-b")).to_have_count(0)
        expect(admin.locator(".sb-ok")).to_contain_text("removed")
    finally:
        second.stop()


def test_alert_channel_send_test_and_rule(admin: Page, stack: Stack) -> None:
    receiver = WebhookReceiver().start()
    try:
        secret = f"whsec-browser-{uuid.uuid4().hex}QRST"
        open_page(admin, stack, "/settings", "Gateway Settings")
        expect(admin.locator("#alert-channels-table")).to_contain_text("No channels")
        admin.fill("#alert-channel-name", "ops")
        admin.select_option("#alert-kind", "webhook")
        admin.fill("#alert-url", f"{receiver.url}/hook")
        admin.click("#save-alert-channel")
        # No secret: refused in words (every delivery is signed).
        expect(admin.locator(".sb-error")).to_contain_text("needs a secret")
        admin.fill("#alert-secret", secret)
        admin.click("#save-alert-channel")
        channel = admin.locator("#alert-channels-table tr", has_text="ops")
        expect(channel).to_contain_text("••••QRST")
        expect(admin.locator("#alert-secret")).to_have_value("")
        assert secret[:-4] not in admin.content()

        channel.get_by_role("button", name="Send test").click()
        expect(admin.locator(".sb-ok", has_text="Test alert delivered to ops")).to_be_visible()
        [hook] = receiver.of("/hook", "test")
        assert hook.signed_by(secret)
        delivery = admin.locator(
            "#alert-deliveries-table tr", has_text="Test alert for channel ops"
        )
        expect(delivery.locator(".sb-alert-status")).to_have_text("sent")

        admin.fill("#alert-rule-name", "caps")
        admin.select_option("#alert-rule-kind", "cap")
        admin.fill("#alert-th", "50, 80, 100")
        admin.fill("#alert-channels", "ops")
        admin.click("#save-alert-rule")
        rule = admin.locator("#alert-rules-table tr", has_text="caps")
        expect(rule).to_contain_text("50%, 80%, 100% of all caps")
        no_errors_shown(admin)
        shot(admin, "settings-alerts")
        rule.get_by_role("button", name="Delete").click()
        admin.click("#confirm-yes")  # deletes ask first
        expect(admin.locator("#alert-rules-table tr", has_text="caps")).to_have_count(0)
    finally:
        receiver.stop()
