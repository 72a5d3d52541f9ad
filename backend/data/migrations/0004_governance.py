"""Governance (issue 18 items 2, 3, 6, 7): token and request limits, per-key and per-app budgets,
model allowlists, who set a key's limits, cost-attribution tags and unknown-cost counts.

- organizations, users, apps, api_keys: ``rate_limit_rpm`` (keys had it) and ``rate_limit_tpm``
  (sliding 60 s windows), ``allowed_models`` (null: any model);
- apps and api_keys: their own spend cap (``spend_cap_usd`` per ``cap_period``);
- api_keys: ``admin_limits``, the limits an administrator set (the owner may not raise them);
- request_logs: ``tags``; usage_rollups and minute_stats: ``unknown_cost_requests``;
- tag_rollups: hourly spend per tag.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


def _json(**kwargs):  # type: ignore[no-untyped-def]
    return fields.JSONField(encoder=JSON_DUMPS, decoder=loads, **kwargs)


def _limits(model: str) -> list[ops.AddField]:
    return [
        ops.AddField(model_name=model, name="rate_limit_tpm", field=fields.IntField(null=True)),
        ops.AddField(model_name=model, name="allowed_models", field=_json(null=True)),
    ]


def _cap(model: str) -> list[ops.AddField]:
    return [
        ops.AddField(
            model_name=model,
            name="spend_cap_usd",
            field=fields.DecimalField(null=True, max_digits=18, decimal_places=8),
        ),
        ops.AddField(
            model_name=model,
            name="cap_period",
            field=fields.CharField(default="monthly", db_default="monthly", max_length=10),
        ),
    ]


class Migration(migrations.Migration):
    dependencies = [("models", "0003_provider_deployments")]

    initial = False

    operations = [
        ops.AddField(model_name="Organization", name="rate_limit_rpm", field=fields.IntField(null=True)),
        *_limits("Organization"),
        ops.AddField(model_name="User", name="rate_limit_rpm", field=fields.IntField(null=True)),
        *_limits("User"),
        ops.AddField(model_name="App", name="rate_limit_rpm", field=fields.IntField(null=True)),
        *_limits("App"),
        *_cap("App"),
        *_limits("ApiKey"),
        *_cap("ApiKey"),
        ops.AddField(model_name="ApiKey", name="admin_limits", field=_json(default=dict, db_default={})),
        ops.AddField(model_name="RequestLog", name="tags", field=_json(null=True)),
        ops.AddField(
            model_name="UsageRollup", name="unknown_cost_requests", field=fields.IntField(default=0, db_default=0)
        ),
        ops.AddField(
            model_name="MinuteStat", name="unknown_cost_requests", field=fields.IntField(default=0, db_default=0)
        ),
        ops.CreateModel(
            name="TagRollup",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("bucket", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("org_id", fields.IntField(default=0)),
                ("user_id", fields.IntField(default=0)),
                ("app_id", fields.IntField(default=0)),
                ("tag", fields.CharField(max_length=64)),
                ("requests", fields.IntField(default=0)),
                ("errors", fields.IntField(default=0)),
                ("input_tokens", fields.BigIntField(default=0)),
                ("output_tokens", fields.BigIntField(default=0)),
                ("cost_usd", fields.DecimalField(default=0, max_digits=18, decimal_places=8)),
                ("unknown_cost_requests", fields.IntField(default=0)),
            ],
            options={
                "table": "tag_rollups",
                "app": "models",
                "unique_together": (("bucket", "org_id", "user_id", "app_id", "tag"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
