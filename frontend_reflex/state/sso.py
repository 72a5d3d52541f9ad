"""Single sign-on on the settings page: the OpenID provider and the claim -> role rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import api, fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import Choices
from frontend_reflex.state.entity import Confirmable
from frontend_reflex.validate import FormError, checked, optional, required

ROLE_LABELS = {"member": "Member", "org_admin": "Organization admin", "super_admin": "Super admin"}


def provider_view(p: Mapping[str, Any] | None, *, gateway: str, dashboard: str) -> dict[str, str]:
    """The form's values: the stored settings, or suggestions when SSO is not set up yet."""
    if not p:
        return {
            "configured": "",
            "display_name": "SSO",
            "issuer": "",
            "client_id": "",
            "secret": "none",
            "scopes": "openid email profile",
            "gateway_url": gateway,
            "dashboard_url": dashboard,
            "callback_url": f"{gateway}/auth/oidc/callback",
            "default_role": "",
            "default_org": "",
            "enabled": "on",
            "verified": "on",
        }
    last4 = p.get("clientSecretLast4") if p.get("clientSecretSet") else None
    return {
        "configured": "yes",
        "display_name": fmt.text(p.get("displayName"), "SSO"),
        "issuer": fmt.text(p.get("issuer"), ""),
        "client_id": fmt.text(p.get("clientId"), ""),
        "secret": f"••••{last4}" if last4 else "none",
        "scopes": " ".join(str(s) for s in p.get("scopes") or []),
        "gateway_url": fmt.text(p.get("gatewayUrl"), ""),
        "dashboard_url": fmt.text(p.get("dashboardUrl"), ""),
        "callback_url": fmt.text(p.get("callbackUrl"), ""),
        "default_role": queries.stored(p.get("defaultRole")),
        "default_org": str(p.get("defaultOrganizationId") or ""),
        "enabled": fmt.yes_no(p.get("enabled")),
        "verified": fmt.yes_no(p.get("requireVerifiedEmail")),
    }


def _url(form: Mapping[str, Any], key: str, label: str) -> str:
    value = required(form, key, label).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise FormError(f"{label} must start with http:// or https://.")
    return value


def provider_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    """The form as an SsoProviderInput; an empty secret box keeps the stored secret."""
    issuer = required(form, "issuer", "Issuer")
    if not issuer.startswith(("http://", "https://")):
        raise FormError("The issuer must be a URL starting with https:// (or http://).")
    scopes = [s for s in re.split(r"[\s,]+", optional(form, "scopes")) if s]
    if scopes and "openid" not in scopes:
        raise FormError("The scopes must include openid.")
    fields: dict[str, Any] = {
        "displayName": optional(form, "display_name") or "SSO",
        "issuer": issuer,  # exactly as typed: it must equal the provider's `iss`
        "clientId": required(form, "client_id", "Client ID"),
        "scopes": scopes or None,
        "gatewayUrl": _url(form, "gateway_url", "Gateway URL"),
        "dashboardUrl": _url(form, "dashboard_url", "Dashboard URL"),
        "defaultRole": optional(form, "default_role") or None,
        "defaultOrganizationId": optional(form, "default_org") or None,
        "enabled": checked(form, "enabled"),
        "requireVerifiedEmail": checked(form, "verified"),
    }
    if optional(form, "client_secret"):
        fields["clientSecret"] = optional(form, "client_secret")
    return fields


def rule_row(r: Mapping[str, Any]) -> dict[str, str]:
    org = r.get("organization") or {}
    role = queries.stored(r.get("role"), "member")
    return {
        "id": str(r.get("id") or ""),
        "position": str(r.get("position") if r.get("position") is not None else ""),
        "claim": fmt.text(r.get("claim")),
        "value": fmt.text(r.get("value")),
        "role": ROLE_LABELS.get(role, role),
        "organization": fmt.text(org.get("name") if isinstance(org, Mapping) else None, "none"),
    }


def rule_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    fields = {
        "claim": required(form, "claim", "Claim"),
        "value": required(form, "value", "Value"),
        "role": required(form, "role", "Role"),
        "organizationId": optional(form, "organization_id") or None,
    }
    if fields["role"] == "org_admin" and not fields["organizationId"]:
        raise FormError("An organization admin rule needs an organization.")
    return fields


class SsoState(Choices, Confirmable, AuthState):
    """The provider form and the rules; the rule form's organization select offers the first
    organizations by name with a Find box (``Choices``), its pick kept among them. The provider
    form's default organization has its own select and Find box (``SsoDefaultOrgState``)."""

    sso: dict[str, str] = provider_view(None, gateway="", dashboard="")
    sso_rules: list[dict[str, str]] = []
    sso_error: str = ""
    sso_ok: str = ""
    rule_error: str = ""
    #: Changes on every load, so the form's default values are drawn again.
    sso_key: str = "0"

    @rx.event
    async def load(self) -> Any:
        if not self.is_super:
            return None
        return await self._fetch()

    async def _fetch(self) -> Any:
        try:
            data = await self._gql(queries.SSO_SETTINGS)
        except ApiError as exc:
            self.sso_error = exc.message
            return self._on_api_error(exc)
        self.sso = provider_view(
            data.get("ssoProvider"), gateway=api.gateway_url(), dashboard=self.router.url.origin
        )
        self.sso_rules = [rule_row(r) for r in data.get("ssoRules") or []]
        await self._load_choices()
        self.sso_key = str(int(self.sso_key) + 1)
        return SsoDefaultOrgState.show(self.sso["default_org"])

    @rx.event
    async def save(self, form: dict[str, Any]) -> Any:
        self.sso_ok = ""
        try:
            await self._gql(*queries.set_sso_provider(provider_fields(form)))
        except FormError as exc:
            self.sso_error = str(exc)
            return None
        except ApiError as exc:
            self.sso_error = exc.message
            return self._on_api_error(exc)
        self.sso_error = ""
        self.sso_ok = "Single sign-on saved; the login page offers it now."
        return [rx.set_value("sso-secret", ""), SsoState.reload]

    @rx.event
    async def reload(self) -> Any:
        return await self._fetch()

    @rx.event
    async def add_rule(self, form: dict[str, Any]) -> Any:
        try:
            await self._gql(*queries.create_sso_rule(rule_fields(form)))
        except FormError as exc:
            self.rule_error = str(exc)
            return None
        except ApiError as exc:
            self.rule_error = exc.message
            return self._on_api_error(exc)
        self.rule_error = ""
        return await self._fetch()

    @rx.event
    def delete_rule(self, row: dict[str, str]) -> None:
        self._ask("delete_rule", row)

    async def _confirmed_delete_rule(self, row: dict[str, str]) -> Any:
        try:
            await self._gql(*queries.delete_sso_rule(row["id"]))
        except ApiError as exc:
            self.rule_error = exc.message
            return self._on_api_error(exc)
        self.rule_error = ""
        return await self._fetch()


class SsoDefaultOrgState(Choices, AuthState):
    """The provider form's "Organization when no rule matches": its own first organizations by
    name and Find box (typing in the rules' Find box leaves it alone), the stored default kept
    offered and chosen."""

    @rx.event
    async def show(self, stored_org: str) -> None:
        """After each load of the settings: the stored default is the pick."""
        self.choice_pick = stored_org
        await self._load_choices()
