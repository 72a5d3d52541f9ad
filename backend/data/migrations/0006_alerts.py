"""Alerts (issue 18 item 4): channels, rules and the delivery record.

``alert_deliveries`` is unique on (dedupe_key, channel_id): an alert fires once per threshold per
period however many gateway instances evaluate it.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0005_stored_responses")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AlertChannel",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(unique=True, max_length=64)),
                ("kind", fields.CharField(max_length=16)),
                ("url", fields.CharField(null=True, max_length=500)),
                ("config", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("secret_ciphertext", fields.TextField(null=True, unique=False)),
                ("secret_last4", fields.CharField(null=True, max_length=8)),
                ("enabled", fields.BooleanField(default=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("updated_by", fields.IntField(null=True)),
            ],
            options={"table": "alert_channels", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AlertRule",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(unique=True, max_length=64)),
                ("kind", fields.CharField(max_length=16)),
                ("channels", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("thresholds", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("scope_kind", fields.CharField(null=True, max_length=8)),
                ("scope_id", fields.IntField(null=True)),
                ("provider", fields.CharField(null=True, max_length=64)),
                ("error_rate_percent", fields.FloatField(null=True)),
                ("min_requests", fields.IntField(default=20)),
                ("window_s", fields.IntField(default=300)),
                ("repeat_s", fields.IntField(default=3600)),
                ("enabled", fields.BooleanField(default=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("updated_by", fields.IntField(null=True)),
            ],
            options={"table": "alert_rules", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AlertDelivery",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("dedupe_key", fields.CharField(max_length=255)),
                ("rule_id", fields.IntField(null=True)),
                ("channel_id", fields.IntField()),
                ("kind", fields.CharField(max_length=16)),
                ("severity", fields.CharField(default="warning", max_length=16)),
                ("title", fields.CharField(max_length=300)),
                ("text", fields.TextField(unique=False)),
                ("payload", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("status", fields.CharField(default="pending", max_length=16)),
                ("attempts", fields.IntField(default=0)),
                (
                    "next_attempt_at",
                    fields.DatetimeField(
                        null=True, db_index=True, auto_now=False, auto_now_add=False
                    ),
                ),
                ("last_error", fields.CharField(null=True, max_length=500)),
                (
                    "created_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True),
                ),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "alert_deliveries",
                "app": "models",
                "unique_together": (("dedupe_key", "channel_id"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
