"""The SSO provider settings and mapping rules: read by the sign-in, changed by super_admins.

The settings are read from the database on each sign-in step (two requests per sign-in, never a
proxy request), so a change applies on every instance at once without a reload event. The
client secret is write-only: stored as AES-256-GCM ciphertext bound to ``sso:client-secret``,
answered as its last four characters only. Every change writes an audit row naming the fields
that changed, never their values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import ROLES, Actor, actor_id, require_super
from backend.admin.errors import FailedPrecondition, InvalidInput, NotFound
from backend.admin.lookup import found, not_found
from backend.data.models.sso import SsoProvider, SsoRule
from backend.data.models.tenancy import Organization
from backend.gateway import Gateway
from backend.security.crypto import CredentialDecryptError, decrypt_secret, encrypt_secret
from backend.sso.mapping import Rule
from backend.sso.oidc import OidcClient, SsoError

PROVIDER_ID = 1
SECRET_AAD = "sso:client-secret"
DEFAULT_SCOPES = ("openid", "email", "profile")
CALLBACK_PATH = "/auth/oidc/callback"
LOGIN_PATH = "/auth/oidc/login"
MAX_SCOPES = 20
MAX_RULES = 200
_SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,100}$")  # RFC 6749 scope-token


@dataclass(frozen=True)
class ProviderConfig:
    """The provider as a sign-in uses it, the client secret decrypted."""

    enabled: bool
    display_name: str
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    gateway_url: str
    dashboard_url: str
    default_role: str | None
    default_organization_id: int | None
    require_verified_email: bool

    @property
    def callback_url(self) -> str:
        return self.gateway_url + CALLBACK_PATH


def client_for(gw: Gateway) -> OidcClient:
    """The gateway's OIDC client (discovery and key caches), made on first use."""
    client = gw.extras.get("oidc")
    if client is None:
        client = gw.extras["oidc"] = OidcClient()
    return client  # type: ignore[no-any-return]


def _secret(gw: Gateway, row: SsoProvider) -> str | None:
    if row.client_secret_ciphertext is None:
        return None
    try:
        return decrypt_secret(gw.secret_key or b"", row.client_secret_ciphertext, SECRET_AAD)
    except CredentialDecryptError:
        raise SsoError(
            "the SSO client secret cannot be decrypted with this gateway's secret key: "
            "an administrator must enter it again"
        ) from None


async def load_config(gw: Gateway) -> ProviderConfig | None:
    row = await SsoProvider.get_or_none(id=PROVIDER_ID)
    if row is None:
        return None
    return ProviderConfig(
        enabled=row.enabled,
        display_name=row.display_name,
        issuer=row.issuer,
        client_id=row.client_id,
        client_secret=_secret(gw, row),
        scopes=tuple(row.scopes or DEFAULT_SCOPES),
        gateway_url=row.gateway_url,
        dashboard_url=row.dashboard_url,
        default_role=row.default_role,
        default_organization_id=row.default_organization_id,  # type: ignore[attr-defined]
        require_verified_email=row.require_verified_email,
    )


async def load_rules() -> list[Rule]:
    rows = await SsoRule.all().order_by("position", "id")
    return [
        Rule(r.claim, r.value, r.role, r.organization_id)  # type: ignore[attr-defined]
        for r in rows
    ]


async def login_link() -> tuple[str, str] | None:
    """``(display name, login URL)`` when SSO is set up and enabled; public."""
    row = await SsoProvider.get_or_none(id=PROVIDER_ID, enabled=True)
    if row is None:
        return None
    return row.display_name, row.gateway_url + LOGIN_PATH


# -- provider settings (super_admin) -----------------------------------------------------------


async def get_provider(actor: Actor) -> SsoProvider | None:
    require_super(actor, "view the SSO settings")
    return await SsoProvider.get_or_none(id=PROVIDER_ID)


def _issuer(value: Any) -> str:
    out = v.text(value, "issuer", max_len=500)
    parsed = urlparse(out)
    # Kept exactly as given (a trailing slash included): it must equal the provider's `iss`.
    if (
        parsed.scheme not in ("https", "http")
        or not parsed.netloc
        or parsed.query
        or parsed.fragment
    ):
        raise InvalidInput(
            "issuer must be an http(s) URL without query or fragment", field="issuer"
        )
    return out


def _url(value: Any, field: str) -> str:
    out = v.http_url(value, field)
    if out is None:
        raise InvalidInput(f"{field} is required", field=field)
    return out


def _scopes(value: Any) -> list[str]:
    if value is None:
        return list(DEFAULT_SCOPES)
    if not isinstance(value, list) or len(value) > MAX_SCOPES:
        raise InvalidInput(f"scopes must be a list of at most {MAX_SCOPES}", field="scopes")
    scopes: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _SCOPE_RE.match(item):
            raise InvalidInput(f"scope {str(item)[:40]!r} is not a valid scope", field="scopes")
        if item not in scopes:
            scopes.append(item)
    if "openid" not in scopes:
        raise InvalidInput("scopes must include 'openid'", field="scopes")
    return scopes


def _client_secret(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 1000 or value != value.strip():
        raise InvalidInput(
            "clientSecret must be a string without surrounding spaces", field="clientSecret"
        )
    return value


async def _org(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not await Organization.exists(id=value):
        raise InvalidInput(f"organization {value} does not exist", field=field)
    return value


#: Settings a new provider needs: stored name -> GraphQL name.
REQUIRED = {
    "issuer": "issuer",
    "client_id": "clientId",
    "gateway_url": "gatewayUrl",
    "dashboard_url": "dashboardUrl",
}


async def set_provider(
    gw: Gateway, actor: Actor, changes: dict[str, Any], oidc: OidcClient
) -> SsoProvider:
    """Create or change the provider; when it ends up enabled, its discovery document is read
    first, so a wrong issuer is refused here rather than at the first sign-in."""
    require_super(actor, "change the SSO settings")
    row = await SsoProvider.get_or_none(id=PROVIDER_ID)
    created = row is None
    if row is None:
        missing = [name for key, name in REQUIRED.items() if changes.get(key) in (None, "")]
        if missing:
            raise InvalidInput(f"{missing[0]} is required to set up SSO", field=missing[0])
        row = SsoProvider(id=PROVIDER_ID, scopes=list(DEFAULT_SCOPES))
    if "issuer" in changes:
        row.issuer = _issuer(changes["issuer"])
    if "client_id" in changes:
        row.client_id = v.text(changes["client_id"], "clientId", max_len=255)
    if "gateway_url" in changes:
        row.gateway_url = _url(changes["gateway_url"], "gatewayUrl")
    if "dashboard_url" in changes:
        row.dashboard_url = _url(changes["dashboard_url"], "dashboardUrl")
    if "display_name" in changes:
        row.display_name = v.text(changes["display_name"], "displayName", max_len=100)
    if "scopes" in changes:
        row.scopes = _scopes(changes["scopes"])
    if "enabled" in changes:
        row.enabled = bool(changes["enabled"])
    if "require_verified_email" in changes:
        row.require_verified_email = bool(changes["require_verified_email"])
    if "default_role" in changes:
        role = changes["default_role"]
        row.default_role = None if role is None else v.choice(role, "defaultRole", ROLES)
    if "default_organization_id" in changes:
        org_id = await _org(changes["default_organization_id"], "defaultOrganizationId")
        row.default_organization_id = org_id  # type: ignore[attr-defined]
    if "client_secret" in changes:
        secret = _client_secret(changes["client_secret"])
        if secret is not None and not gw.secret_key:
            raise FailedPrecondition("the gateway has no secret key to encrypt the secret with")
        sealed = (
            None if secret is None else encrypt_secret(gw.secret_key or b"", secret, SECRET_AAD)
        )
        row.client_secret_ciphertext = sealed  # type: ignore[assignment]
        row.client_secret_last4 = None if secret is None else secret[-4:]  # type: ignore[assignment]
    if row.enabled:
        try:
            await oidc.discover(row.issuer, fresh=True)
        except SsoError as exc:
            raise InvalidInput(
                f"issuer: {exc.message} (save with enabled: false to keep it anyway)",
                field="issuer",
            ) from None
    row.updated_by = actor_id(actor)
    await row.save(force_create=created)
    await audit.record(
        actor, "sso.create" if created else "sso.update", "sso:provider", fields=sorted(changes)
    )
    return row


async def delete_provider(actor: Actor) -> bool:
    require_super(actor, "change the SSO settings")
    if not await SsoProvider.filter(id=PROVIDER_ID).delete():
        raise NotFound("single sign-on is not set up")
    await audit.record(actor, "sso.delete", "sso:provider")
    return True


# -- mapping rules (super_admin) ---------------------------------------------------------------


async def list_rules(actor: Actor) -> list[SsoRule]:
    require_super(actor, "view the SSO mapping rules")
    return await SsoRule.all().order_by("position", "id")


async def _apply_rule(row: SsoRule, data: dict[str, Any]) -> None:
    if "claim" in data:
        row.claim = v.text(data["claim"], "claim", max_len=200)
    if "value" in data:
        row.value = v.text(data["value"], "value", max_len=500)
    if "role" in data:
        row.role = v.choice(data["role"], "role", ROLES)
    if "organization_id" in data:
        org_id = await _org(data["organization_id"], "organizationId")
        row.organization_id = org_id  # type: ignore[attr-defined]
    if "position" in data and data["position"] is not None:
        row.position = v.int_range(data["position"], "position", 0, 1_000_000) or 0
    if row.role == "org_admin" and row.organization_id is None:  # type: ignore[attr-defined]
        raise InvalidInput("an org_admin rule needs an organization", field="organizationId")


async def create_rule(actor: Actor, data: dict[str, Any]) -> SsoRule:
    require_super(actor, "change the SSO mapping rules")
    for name in ("claim", "value", "role"):
        if data.get(name) in (None, ""):
            raise InvalidInput(f"{name} is required", field=name)
    if await SsoRule.all().count() >= MAX_RULES:
        raise InvalidInput(f"at most {MAX_RULES} mapping rules", field="claim")
    last = await SsoRule.all().order_by("-position").first()
    row = SsoRule(position=(last.position + 1) if last else 0)
    await _apply_rule(row, data)
    await row.save()
    await audit.record(actor, "sso_rule.create", f"sso_rule:{row.id}", fields=sorted(data))
    return row


async def update_rule(actor: Actor, rule_id: int, data: dict[str, Any]) -> SsoRule:
    require_super(actor, "change the SSO mapping rules")
    row = await found(SsoRule, rule_id, "mapping rule")
    await _apply_rule(row, data)
    await row.save()
    await audit.record(actor, "sso_rule.update", f"sso_rule:{row.id}", fields=sorted(data))
    return row


async def delete_rule(actor: Actor, rule_id: int) -> int:
    require_super(actor, "change the SSO mapping rules")
    if not await SsoRule.filter(id=rule_id).delete():
        raise not_found("mapping rule", rule_id)
    await audit.record(actor, "sso_rule.delete", f"sso_rule:{rule_id}")
    return rule_id
