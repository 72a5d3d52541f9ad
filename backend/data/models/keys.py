"""Credentials of callers: gateway API keys, dashboard sessions and admin tokens.

Only hashes are stored. A gateway key is shown once at creation and identified afterwards by its
``prefix`` (the first characters, safe to display).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from backend.data.models.tenancy import App, User


class ApiKey(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, default="")
    prefix = fields.CharField(max_length=32, unique=True)
    key_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="api_keys", null=True, on_delete=fields.CASCADE
    )
    app: fields.ForeignKeyNullableRelation[App] = fields.ForeignKeyField(
        "models.App", related_name="api_keys", null=True, on_delete=fields.CASCADE
    )
    rate_limit_rpm = fields.IntField(null=True)
    rate_limit_tpm = fields.IntField(null=True)
    # The key's own spend cap per ``cap_period`` (daily | weekly | monthly); null: none.
    spend_cap_usd = fields.DecimalField(max_digits=18, decimal_places=8, null=True)
    cap_period = fields.CharField(max_length=10, default="monthly", db_default="monthly")
    # Models or aliases the key may use (glob patterns); null: any.
    allowed_models: fields.JSONField[Any] = fields.JSONField(null=True)
    # Limits an administrator set, which the key's owner may tighten but not raise or remove:
    # {limit name: {"value": ..., "by": user id, "role": ..., "at": iso time}}.
    admin_limits: fields.JSONField[Any] = fields.JSONField(default=dict, db_default={})
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    # Id of the first key of its rotation chain (null: no key was rotated into this one). The
    # key's spend-cap and rate-limit counters are scoped by ``lineage_id or id``, so a rotated
    # key continues its predecessor's instead of starting from zero. A plain id, not a foreign
    # key: deleting the first key must not lose the chain's counters.
    lineage_id = fields.IntField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "api_keys"


class AdminToken(Model):
    # A dashboard session (``kind='session'``, short-lived) or an automation token.

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=20, default="session")  # session | admin
    name = fields.CharField(max_length=200, default="")
    prefix = fields.CharField(max_length=32, unique=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="admin_tokens", on_delete=fields.CASCADE
    )
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "admin_tokens"
