"""A verified person -> a gateway user, and the one-time ticket the dashboard trades for a session.

Who the person is: the provider's issuer and subject (``sub``), linked to one user. On a first
sign-in the link is made by email, only when the provider says the email is verified (unless an
administrator turned that off): to an existing user with that email, or to a new user with the
role and organization of the first matching rule (else the provider's defaults; with no default
role the person is refused). On every sign-in a matching rule sets the role and organization
again, so the provider stays the source of truth (a person removed from a group loses what it
gave at their next sign-in, provided a rule such as ``sub = *`` catches everyone else); with no
matching rule an existing user keeps theirs. The last active super_admin is never demoted this
way. A suspended user is refused.

The callback does not hand the session token to the browser in a URL: it issues a ticket (two
minutes, one use, stored hashed like every token) that the dashboard's ``/sso`` page redeems
through GraphQL (``redeemSsoLogin``) for a normal dashboard session. Ticket tokens
(``sbt-...``) are not sessions: ``authenticate_token`` refuses them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tortoise.exceptions import IntegrityError

from backend.admin import audit
from backend.admin.access import SYSTEM
from backend.admin.errors import InvalidInput
from backend.data.models.keys import AdminToken
from backend.data.models.sso import SsoIdentity
from backend.data.models.tenancy import Organization, User
from backend.gateway import Gateway
from backend.security import sessions
from backend.security.api_keys import generate_key, hash_key
from backend.sso.config import ProviderConfig
from backend.sso.mapping import Mapped, Rule, map_claims
from backend.sso.oidc import SsoError

log = logging.getLogger("switchboard.auth")

TICKET_PREFIX = "sbt-"
TICKET_KIND = "sso_ticket"
TICKET_TTL = dt.timedelta(minutes=2)


def identity_key(issuer: str, subject: str) -> str:
    return hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()


def _email(claims: Mapping[str, Any], cfg: ProviderConfig) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise SsoError("the provider did not send your email address (is 'email' a scope?)")
    verified = claims.get("email_verified")
    if cfg.require_verified_email and verified not in (True, "true"):
        raise SsoError("the provider does not say your email address is verified")
    return email.strip().lower()


def _name(claims: Mapping[str, Any], email: str) -> str:
    for key in ("name", "preferred_username", "given_name"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return email.split("@", 1)[0][:200]


async def _new_user(
    claims: Mapping[str, Any], email: str, mapped: Mapped | None, cfg: ProviderConfig
) -> User:
    role = mapped.role if mapped else cfg.default_role
    org_id = mapped.organization_id if mapped else cfg.default_organization_id
    if role is None:
        raise SsoError(
            "no mapping rule gives your account a role at this gateway: ask an administrator",
            code="SSO_NO_ROLE",
        )
    if org_id is not None and not await Organization.exists(id=org_id):
        org_id = None
    user = await User.create(
        name=_name(claims, email), email=email, role=role, organization_id=org_id, status="active"
    )
    await audit.record(SYSTEM, "user.create", f"user:{user.id}", via="sso")
    return user


async def _last_super_admin(user: User) -> bool:
    if user.role != "super_admin" or user.status != "active":
        return False
    return await User.filter(role="super_admin", status="active").count() <= 1


async def _apply_mapping(user: User, mapped: Mapped) -> bool:
    """The rule's role and organization on an existing user; True when something changed."""
    role, org_id = mapped.role, mapped.organization_id
    if org_id is not None and not await Organization.exists(id=org_id):
        return False
    if (user.role, user.organization_id) == (role, org_id):  # type: ignore[attr-defined]
        return False
    if role != "super_admin" and await _last_super_admin(user):
        log.warning("SSO rule would demote the last active super_admin (user %s): kept", user.id)
        return False
    user.role = role
    user.organization_id = org_id  # type: ignore[attr-defined]
    await user.save(update_fields=["role", "organization_id"])
    await audit.record(
        SYSTEM, "user.update", f"user:{user.id}", via="sso", fields=["organization", "role"]
    )
    return True


async def _identity(issuer: str, subject: str) -> SsoIdentity | None:
    return await SsoIdentity.get_or_none(key=identity_key(issuer, subject)).select_related("user")


async def sign_in(
    gw: Gateway,
    cfg: ProviderConfig,
    rules: Sequence[Rule],
    claims: Mapping[str, Any],
    *,
    now: dt.datetime,
) -> User:
    """The user these verified claims are, linked or created and mapped; SsoError if refused."""
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    mapped = map_claims(claims, rules)
    identity = await _identity(issuer, subject)
    changed = False
    if identity is None:
        email = _email(claims, cfg)
        user = await User.get_or_none(email=email)
        if user is not None and await SsoIdentity.exists(user_id=user.id, issuer=issuer):
            # The address now names another account at the provider (a reused email): linking
            # it would hand this user's access to whoever holds the address now.
            raise SsoError(
                "this email address belongs to another account at the provider: ask an "
                "administrator",
                code="SSO_CONFLICT",
            )
        if user is None:
            try:
                user = await _new_user(claims, email, mapped, cfg)
            except IntegrityError:
                # A concurrent first sign-in with the same email made it first.
                user = await User.get(email=email)
            changed = True
        try:
            identity = await SsoIdentity.create(
                key=identity_key(issuer, subject), issuer=issuer, subject=subject[:255], user=user
            )
        except IntegrityError:
            identity = await _identity(issuer, subject)
            if identity is None:
                raise
        else:
            await audit.record(SYSTEM, "user.sso_link", f"user:{user.id}")
    user = identity.user
    if user.status != "active":
        raise SsoError("your account is suspended", code="SSO_SUSPENDED")
    if mapped is not None:
        changed = await _apply_mapping(user, mapped) or changed
    identity.last_login_at = now
    await identity.save(update_fields=["last_login_at"])
    if changed:
        # The hot path's view of users, and live subscriptions of a user whose role moved.
        await gw.config_changed("tenancy")
    return user


async def issue_ticket(user: User, *, now: dt.datetime) -> str:
    secret, prefix, digest = generate_key(TICKET_PREFIX)
    await AdminToken.create(
        kind=TICKET_KIND,
        name="sso",
        prefix=prefix,
        token_hash=digest,
        user=user,
        expires_at=now + TICKET_TTL,
    )
    return secret


async def redeem_ticket(gw: Gateway, ticket: str) -> tuple[str, AdminToken, User]:
    """A dashboard session for a ticket, once: ``(token, row, user)``."""
    # BAD_USER_INPUT on the ticket: the caller has no credentials to be wrong about.
    refused = InvalidInput(
        "this sign-in link was already used or has expired: sign in again", field="ticket"
    )
    if not isinstance(ticket, str) or not ticket.startswith(TICKET_PREFIX) or len(ticket) > 200:
        raise refused
    now = gw.clock()
    digest = hash_key(ticket)
    # One conditional update: of two concurrent redemptions exactly one changes the row.
    used = await AdminToken.filter(
        token_hash=digest, kind=TICKET_KIND, revoked_at__isnull=True, expires_at__gt=now
    ).update(revoked_at=now)
    if used != 1:
        raise refused
    row = await AdminToken.get(token_hash=digest).select_related("user")
    user: User = row.user
    if user.status != "active":
        raise refused
    token, session = await sessions.create_session(user, now=now)
    await audit.record(user, "auth.login", f"user:{user.id}", via="sso")
    return token, session, user
