"""Analytics (issue 17 item 4): rollups that answer "by key" and "latency per model" fast.

- usage_rollups: ``latency_hist`` (a latency histogram per hour x user x app x org x model x
  provider, as minute_stats has gateway-wide) for p50/p95 per model and provider;
- key_rollups: hourly totals per API key prefix (with its org, user and app), for spend and
  requests by key without scanning request_logs.

Rows written before this migration have an empty histogram and no key rollup: their requests
still count everywhere else; percentiles and "by key" start from here.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0008_sso")]

    initial = False

    operations = [
        ops.AddField(
            model_name="UsageRollup",
            name="latency_hist",
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.CreateModel(
            name="KeyRollup",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("bucket", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("org_id", fields.IntField(default=0)),
                ("user_id", fields.IntField(default=0)),
                ("app_id", fields.IntField(default=0)),
                ("key_prefix", fields.CharField(max_length=32)),
                ("requests", fields.IntField(default=0)),
                ("errors", fields.IntField(default=0)),
                ("input_tokens", fields.BigIntField(default=0)),
                ("output_tokens", fields.BigIntField(default=0)),
                ("cached_tokens", fields.BigIntField(default=0)),
                ("cost_usd", fields.DecimalField(default=0, max_digits=18, decimal_places=8)),
                ("unknown_cost_requests", fields.IntField(default=0)),
                ("latency_ms_sum", fields.FloatField(default=0)),
            ],
            options={
                "table": "key_rollups",
                "app": "models",
                "unique_together": (("bucket", "org_id", "user_id", "app_id", "key_prefix"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
