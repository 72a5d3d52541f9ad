"""Single sign-on (OpenID Connect): the provider, its mapping rules and users' linked identities.

One provider per gateway (the row with ``id = 1``). Its client secret is stored only as
AES-256-GCM ciphertext (associated data ``sso:client-secret``), like provider credentials.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from backend.data.models.tenancy import Organization, User


class SsoProvider(Model):
    id = fields.IntField(primary_key=True)
    enabled = fields.BooleanField(default=True)
    # Shown on the login button ("Sign in with <display_name>").
    display_name = fields.CharField(max_length=100, default="SSO")
    # The issuer URL; ``<issuer>/.well-known/openid-configuration`` is its discovery document.
    issuer = fields.CharField(max_length=500)
    client_id = fields.CharField(max_length=255)
    client_secret_ciphertext = fields.TextField(null=True)
    client_secret_last4 = fields.CharField(max_length=8, null=True)
    scopes: fields.JSONField[list[str]] = fields.JSONField(default=list)
    # The gateway's URL as browsers reach it: the callback is ``<gateway_url>/auth/oidc/callback``.
    gateway_url = fields.CharField(max_length=500)
    # Where the browser goes once signed in (the dashboard's ``/sso`` page finishes the sign-in).
    dashboard_url = fields.CharField(max_length=500)
    # Role and organization of a new user no rule matches; null role: such users are refused.
    default_role = fields.CharField(max_length=20, null=True)
    default_organization: fields.ForeignKeyNullableRelation[Organization] = (
        fields.ForeignKeyField(
            "models.Organization", related_name=False, null=True, on_delete=fields.SET_NULL
        )
    )
    # Link or create users by email only when the provider says the email is verified.
    require_verified_email = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)
    updated_by = fields.IntField(null=True)

    class Meta:
        table = "sso_providers"


class SsoRule(Model):
    # When ``claim`` has ``value`` (or holds it, for a list such as groups), the user gets
    # ``role`` in ``organization``. Rules are tried by ``position``; the first match wins.
    # ``claim`` may be a dotted path into nested claims (``realm_access.roles``).

    id = fields.IntField(primary_key=True)
    position = fields.IntField(default=0)
    claim = fields.CharField(max_length=200)
    # Exact value; ``*`` matches any value of a present claim.
    value = fields.CharField(max_length=500)
    role = fields.CharField(max_length=20)
    organization: fields.ForeignKeyNullableRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name=False, null=True, on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "sso_rules"


class SsoIdentity(Model):
    # A user's account at the provider: issuer and subject (``sub``), the stable identity.

    id = fields.IntField(primary_key=True)
    # SHA-256 hex of ``issuer`` NUL ``subject``: unique, fixed length whatever they hold.
    key = fields.CharField(max_length=64, unique=True)
    issuer = fields.CharField(max_length=500)
    subject = fields.CharField(max_length=255)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sso_identities", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sso_identities"
