"""The SSO settings section's pure parts, without a browser: form checks and table rows."""

from __future__ import annotations

import pytest

from frontend_reflex import queries
from frontend_reflex.state.sso import provider_fields, provider_view, rule_fields, rule_row
from frontend_reflex.validate import FormError

FORM = {
    "display_name": "Acme",
    "issuer": "https://login.acme.test/realms/acme/",
    "client_id": "gateway",
    "client_secret": "",
    "scopes": "openid, email groups",
    "gateway_url": "https://gw.acme.test/",
    "dashboard_url": "https://dash.acme.test",
    "default_role": "",
    "default_org": "",
    "enabled": "on",
    "verified": "on",
}


def test_provider_form_becomes_the_input() -> None:
    fields = provider_fields(FORM)
    # The issuer exactly as typed (it must equal the provider's iss); URLs without the slash.
    assert fields["issuer"] == "https://login.acme.test/realms/acme/"
    assert fields["gatewayUrl"] == "https://gw.acme.test"
    assert fields["scopes"] == ["openid", "email", "groups"]
    assert "clientSecret" not in fields  # an empty box keeps the stored secret
    assert fields["defaultRole"] is None and fields["enabled"] is True
    assert provider_fields({**FORM, "client_secret": "s3cret"})["clientSecret"] == "s3cret"
    _, variables = queries.set_sso_provider(
        {**fields, "defaultRole": "org_admin", "defaultOrganizationId": "7"}
    )
    assert variables["input"]["defaultRole"] == "ORG_ADMIN"
    assert variables["input"]["defaultOrganizationId"] == 7


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": ""}, "Issuer is required"),
        ({"issuer": "login.acme.test"}, "issuer must be a URL"),
        ({"client_id": " "}, "Client ID is required"),
        ({"scopes": "email profile"}, "must include openid"),
        ({"dashboard_url": "dash.acme.test"}, "Dashboard URL must start with http"),
    ],
)
def test_provider_form_checks_explain_themselves(change: dict[str, str], message: str) -> None:
    with pytest.raises(FormError, match=message):
        provider_fields({**FORM, **change})


def test_provider_view_shows_only_the_last_four() -> None:
    view = provider_view(
        {
            "clientSecretSet": True,
            "clientSecretLast4": "Zq9T",
            "scopes": ["openid", "email"],
            "defaultRole": "ORG_ADMIN",
            "enabled": True,
            "requireVerifiedEmail": False,
        },
        gateway="http://gw",
        dashboard="http://dash",
    )
    assert view["secret"] == "••••Zq9T" and view["scopes"] == "openid email"
    assert view["default_role"] == "org_admin" and view["verified"] == "off"
    fresh = provider_view(None, gateway="http://gw", dashboard="http://dash")
    assert fresh["callback_url"] == "http://gw/auth/oidc/callback" and fresh["secret"] == "none"


def test_rules() -> None:
    row = rule_row(
        {
            "id": 3,
            "position": 0,
            "claim": "groups",
            "value": "admins",
            "role": "ORG_ADMIN",
            "organization": {"id": 1, "name": "Acme"},
        }
    )
    assert row == {
        "id": "3",
        "position": "0",
        "claim": "groups",
        "value": "admins",
        "role": "Organization admin",
        "organization": "Acme",
    }
    with pytest.raises(FormError, match="needs an organization"):
        rule_fields({"claim": "groups", "value": "a", "role": "org_admin"})
    _, variables = queries.create_sso_rule(
        rule_fields({"claim": "groups", "value": "a", "role": "member", "organization_id": "2"})
    )
    assert variables["input"] == {
        "claim": "groups",
        "value": "a",
        "role": "MEMBER",
        "organizationId": 2,
    }
