"""Organizations, users and apps: who traffic belongs to and whose caps apply."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

# Limits every owner of traffic may carry (organization, user, app, key): requests and tokens
# per minute (sliding windows, ``backend.budget.ratelimit``) and the models or aliases it may
# use (null: any). The tightest of the levels that apply to a request wins.


class Organization(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    slug = fields.CharField(max_length=100, unique=True)
    # The owning user's id. A plain column, not a foreign key: users reference organizations,
    # and Tortoise 1.1 migrations drop one side of such a circular pair.
    owner_id = fields.IntField(null=True)
    # Spend cap for the organization's users' and apps' traffic, per ``cap_period``.
    spend_cap_usd = fields.DecimalField(max_digits=18, decimal_places=8, null=True)
    cap_period = fields.CharField(max_length=10, default="monthly")  # weekly | monthly
    rollover = fields.BooleanField(default=False)
    dlp_enabled = fields.BooleanField(default=False)
    rate_limit_rpm = fields.IntField(null=True)
    rate_limit_tpm = fields.IntField(null=True)
    allowed_models: fields.JSONField[Any] = fields.JSONField(null=True)
    # Members sign in with single sign-on only: their passwords are refused (backend/sso).
    sso_only = fields.BooleanField(default=False, db_default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organizations"


class User(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=320, unique=True)
    # argon2 hash, null for users who never log in to the dashboard.
    password_hash = fields.CharField(max_length=255, null=True)
    status = fields.CharField(max_length=20, default="active")  # active | suspended
    role = fields.CharField(max_length=20, default="member")  # super_admin | org_admin | member
    weekly_cap_usd = fields.DecimalField(max_digits=18, decimal_places=8, null=True)
    organization: fields.ForeignKeyNullableRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="members", null=True, on_delete=fields.SET_NULL
    )
    rate_limit_rpm = fields.IntField(null=True)
    rate_limit_tpm = fields.IntField(null=True)
    allowed_models: fields.JSONField[Any] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class App(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    slug = fields.CharField(max_length=100, unique=True)
    contact = fields.CharField(max_length=320, default="")
    active = fields.BooleanField(default=True)
    dlp_enabled = fields.BooleanField(default=False)
    organization: fields.ForeignKeyNullableRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="apps", null=True, on_delete=fields.SET_NULL
    )
    rate_limit_rpm = fields.IntField(null=True)
    rate_limit_tpm = fields.IntField(null=True)
    allowed_models: fields.JSONField[Any] = fields.JSONField(null=True)
    # The app's own spend cap per ``cap_period`` (daily | weekly | monthly); null: none.
    spend_cap_usd = fields.DecimalField(max_digits=18, decimal_places=8, null=True)
    cap_period = fields.CharField(max_length=10, default="monthly", db_default="monthly")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "apps"
