"""Single sign-on in GraphQL: the provider settings and mapping rules (super_admin), the public
login link, and the ticket a finished sign-in is redeemed with for a session."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry
from strawberry.types.unset import UNSET

from backend.data.models.sso import SsoProvider, SsoRule
from backend.graphql.auth import Session
from backend.graphql.common import Id, from_row, related, run
from backend.graphql.context import Info, viewer
from backend.graphql.declare import Changes, create, delete, listing, mutation, update
from backend.graphql.enums import Role
from backend.graphql.permissions import IsSuperAdmin
from backend.graphql.tenancy import OrganizationType, UserType
from backend.sso import config as svc
from backend.sso.signin import redeem_ticket

_ISSUER = (
    "The provider's issuer URL, exactly as its tokens name it; its discovery document is "
    "<issuer>/.well-known/openid-configuration."
)
_SECRET = "Write-only, stored encrypted. null or '' removes it (a public client, PKCE only)."
_SCOPES = "Scopes asked for; must include 'openid'. Default: openid, email, profile."
_GATEWAY_URL = (
    "The gateway's URL as browsers reach it; register <gatewayUrl>/auth/oidc/callback as the "
    "redirect URI at the provider."
)
_DASHBOARD_URL = "The dashboard's URL; a finished sign-in lands on its /sso page."
_DEFAULT_ROLE = "Role of a new user no rule matches; null: such people are refused."
_DEFAULT_ORG = "Organization of a new user no rule matches; null: none."
_VERIFIED = "Link or create users by email only when the provider says the email is verified."


@strawberry.type(name="SsoProvider", description="The OpenID Connect provider people sign in with.")
class SsoProviderType:
    enabled: bool = strawberry.field(description="Offered on the login page and accepted.")
    display_name: str = strawberry.field(description="Shown on the login page.")
    issuer: str = strawberry.field(description=_ISSUER)
    client_id: str = strawberry.field(description="The gateway's client id at the provider.")
    client_secret_set: bool = strawberry.field(description="A client secret is stored.")
    client_secret_last4: str | None = strawberry.field(description="Never more than the last 4.")
    scopes: list[str] = strawberry.field(description=_SCOPES)
    gateway_url: str = strawberry.field(description=_GATEWAY_URL)
    dashboard_url: str = strawberry.field(description=_DASHBOARD_URL)
    callback_url: str = strawberry.field(description="The redirect URI to register.")
    login_url: str = strawberry.field(description="Where a sign-in starts.")
    default_role: Role | None = strawberry.field(description=_DEFAULT_ROLE)
    default_organization_id: int | None = strawberry.field(description=_DEFAULT_ORG)
    require_verified_email: bool = strawberry.field(description=_VERIFIED)
    updated_at: dt.datetime = strawberry.field(description="Last change.")

    @staticmethod
    def of(row: SsoProvider) -> SsoProviderType:
        return SsoProviderType(
            enabled=row.enabled,
            display_name=row.display_name,
            issuer=row.issuer,
            client_id=row.client_id,
            client_secret_set=row.client_secret_ciphertext is not None,
            client_secret_last4=row.client_secret_last4,
            scopes=list(row.scopes or svc.DEFAULT_SCOPES),
            gateway_url=row.gateway_url,
            dashboard_url=row.dashboard_url,
            callback_url=row.gateway_url + svc.CALLBACK_PATH,
            login_url=row.gateway_url + svc.LOGIN_PATH,
            default_role=Role(row.default_role) if row.default_role else None,
            default_organization_id=row.default_organization_id,  # type: ignore[attr-defined]
            require_verified_email=row.require_verified_email,
            updated_at=row.updated_at,
        )


@strawberry.type(
    name="SsoRule",
    description="When a claim has a value (or a list claim such as groups holds it), the person "
    "gets a role in an organization. Tried by position; the first match wins.",
)
class SsoRuleType:
    id: int = strawberry.field(description="The rule's id.")
    position: int = strawberry.field(description="Order of evaluation (lowest first).")
    claim: str = strawberry.field(
        description="Claim name; a dotted path reaches nested claims (realm_access.roles)."
    )
    value: str = strawberry.field(description="The value to match; '*': any non-empty value.")
    role: Role = strawberry.field(description="The role it gives.")
    organization_id: int | None = strawberry.field(description="The organization it gives.")

    @strawberry.field(description="The organization it gives; null: none.")
    async def organization(self, info: Info) -> OrganizationType | None:
        return await related(info.context.loaders.org, self.organization_id, OrganizationType.of)

    @staticmethod
    def of(row: SsoRule) -> SsoRuleType:
        return from_row(SsoRuleType, row, role=Role(row.role))


@strawberry.type(description="What the login page offers; public.")
class SsoLogin:
    enabled: bool = strawberry.field(description="Single sign-on is set up and enabled.")
    display_name: str | None = strawberry.field(description="The provider's display name.")
    login_url: str | None = strawberry.field(description="Send the browser here to sign in.")


@strawberry.input(description="SSO provider settings: only the fields sent change.")
class SsoProviderInput:
    enabled: bool | None = strawberry.field(default=UNSET, description="Default true.")
    display_name: str | None = strawberry.field(default=UNSET, description="Default 'SSO'.")
    issuer: str | None = strawberry.field(default=UNSET, description=_ISSUER)
    client_id: str | None = strawberry.field(default=UNSET, description="Required at first.")
    client_secret: str | None = strawberry.field(default=UNSET, description=_SECRET)
    scopes: list[str] | None = strawberry.field(default=UNSET, description=_SCOPES)
    gateway_url: str | None = strawberry.field(default=UNSET, description=_GATEWAY_URL)
    dashboard_url: str | None = strawberry.field(default=UNSET, description=_DASHBOARD_URL)
    default_role: Role | None = strawberry.field(default=UNSET, description=_DEFAULT_ROLE)
    default_organization_id: int | None = strawberry.field(default=UNSET, description=_DEFAULT_ORG)
    require_verified_email: bool | None = strawberry.field(default=UNSET, description=_VERIFIED)


@strawberry.input(
    description="A mapping rule: only the fields sent change (all but position "
    "are required for a new rule)."
)
class SsoRuleInput:
    claim: str | None = strawberry.field(default=UNSET, description="Claim name or dotted path.")
    value: str | None = strawberry.field(default=UNSET, description="Value; '*': any.")
    role: Role | None = strawberry.field(default=UNSET, description="The role it gives.")
    organization_id: int | None = strawberry.field(
        default=UNSET, description="The organization it gives; null: none."
    )
    position: int | None = strawberry.field(
        default=UNSET, description="Order of evaluation; default: after the last rule."
    )


@strawberry.type
class SsoQuery:
    @strawberry.field(
        permission_classes=[IsSuperAdmin],
        description="The SSO provider settings; null: single sign-on is not set up.",
    )
    async def sso_provider(self, info: Info) -> SsoProviderType | None:
        row = await svc.get_provider(viewer(info))
        return SsoProviderType.of(row) if row else None

    sso_rules = listing(
        svc.list_rules, SsoRuleType, IsSuperAdmin, "SSO mapping rules, in evaluation order."
    )

    @strawberry.field(
        description="Whether the login page offers single sign-on, and where it starts. Public."
    )
    async def sso_login(self) -> SsoLogin:
        link = await svc.login_link()
        if link is None:
            return SsoLogin(enabled=False, display_name=None, login_url=None)
        return SsoLogin(enabled=True, display_name=link[0], login_url=link[1])


_Ticket = Annotated[
    str, strawberry.argument(description="The ticket the dashboard's /sso page received.")
]


@strawberry.type
class SsoMutation:
    @strawberry.mutation(
        permission_classes=[IsSuperAdmin],
        description="Set up or change the SSO provider. When it ends up enabled, its discovery "
        "document is read first (BAD_USER_INPUT on issuer if that fails).",
    )
    async def set_sso_provider(
        self,
        info: Info,
        input: Changes[SsoProviderInput],
    ) -> SsoProviderType:
        client = svc.client_for(info.context.gateway)
        return await run(info, svc.set_provider, input, client, convert=SsoProviderType.of)

    delete_sso_provider = mutation(
        svc.delete_provider,
        bool,
        IsSuperAdmin,
        "Remove the SSO provider (rules and linked identities stay).",
        gateway=False,
    )
    create_sso_rule = create(
        svc.create_rule,
        SsoRuleType,
        IsSuperAdmin,
        "Add a mapping rule.",
        Annotated[SsoRuleInput, strawberry.argument(description="The rule.")],
        gateway=False,
    )
    update_sso_rule = update(
        svc.update_rule,
        SsoRuleType,
        IsSuperAdmin,
        "Change a mapping rule.",
        Id,
        SsoRuleInput,
        gateway=False,
    )
    delete_sso_rule = delete(
        svc.delete_rule, IsSuperAdmin, Id, "Remove a mapping rule; its id.", gateway=False
    )

    @strawberry.mutation(
        description="Finish a single sign-on: trade the one-time ticket the gateway's callback "
        "sent to the dashboard's /sso page for a dashboard session (the ticket works once, for "
        "two minutes). Public."
    )
    async def redeem_sso_login(self, info: Info, ticket: _Ticket) -> Session:
        token, row, user = await redeem_ticket(info.context.gateway, ticket)
        return Session(token=token, expires_at=row.expires_at, user=UserType.of(user))
