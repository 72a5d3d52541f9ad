"""Narrow rollups (issue 19: dashboard queries at 10 million log rows): ``model_hourly``
(organization x model x provider per hour, with latency histograms: ~200 rows an hour where
``usage_rollups`` has ~2,000) and ``tag_org_daily`` (organization x tag per day), filled
from the hourly rollups already there (``backend.data.daily.rebuild``).
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops

from backend.data.daily import rebuild


def _totals(tag=False):
    out = [
        ("requests", fields.IntField(default=0)),
        ("errors", fields.IntField(default=0)),
        ("input_tokens", fields.BigIntField(default=0)),
        ("output_tokens", fields.BigIntField(default=0)),
    ]
    if not tag:
        out.append(("cached_tokens", fields.BigIntField(default=0)))
    out.append(("cost_usd", fields.DecimalField(default=0, max_digits=18, decimal_places=8)))
    out.append(("unknown_cost_requests", fields.IntField(default=0)))
    if not tag:
        out.append(("latency_ms_sum", fields.FloatField(default=0)))
    return out


async def backfill(apps, schema_editor):
    await rebuild(schema_editor.client, ("model_hourly", "tag_org_daily"))


class Migration(migrations.Migration):
    dependencies = [("models", "0011_daily_rollups")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ModelHourly",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("bucket", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("org_id", fields.IntField(default=0)),
                ("model", fields.CharField(max_length=200)),
                ("provider", fields.CharField(max_length=64)),
                *_totals(),
                ("latency_hist", fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={
                "table": "model_hourly",
                "app": "models",
                "unique_together": (("bucket", "org_id", "model", "provider"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TagOrgDaily",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("bucket", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("org_id", fields.IntField(default=0)),
                ("tag", fields.CharField(max_length=64)),
                *_totals(tag=True),
            ],
            options={
                "table": "tag_org_daily",
                "app": "models",
                "unique_together": (("bucket", "org_id", "tag"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.RunPython(backfill),
    ]
