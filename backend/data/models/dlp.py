"""DLP policies (per organization or per app) and their activity (never raw values)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from backend.data.models.tenancy import App, Organization


class DlpPolicy(Model):
    id = fields.IntField(primary_key=True)
    scope = fields.CharField(max_length=10)  # org | app
    organization: fields.ForeignKeyNullableRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="dlp_policies", null=True, on_delete=fields.CASCADE
    )
    app: fields.ForeignKeyNullableRelation[App] = fields.ForeignKeyField(
        "models.App", related_name="dlp_policies", null=True, on_delete=fields.CASCADE
    )
    rules: fields.JSONField[list[str]] = fields.JSONField(default=list)  # enabled rule ids
    custom_rules: fields.JSONField[list[dict[str, str]]] = fields.JSONField(
        default=list
    )  # [{"name": ..., "pattern": ...}]
    last_activity_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dlp_policies"


class DlpActivity(Model):
    id = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField(db_index=True)
    kind = fields.CharField(max_length=20)  # redact | restore | block
    scope = fields.CharField(max_length=200)  # e.g. "org:acme" / "app:billing"
    org_id = fields.IntField(null=True)
    app_id = fields.IntField(null=True)
    rule = fields.CharField(max_length=100)
    matches = fields.IntField(default=0)
    size = fields.IntField(default=0)
    request_id = fields.CharField(max_length=64, null=True)
    detail = fields.TextField(default="")

    class Meta:
        table = "dlp_activity"
