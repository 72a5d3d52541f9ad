"""Weekly rollups (issue 19: dashboard queries at 10 million log rows): ``user_weekly`` and
``key_weekly`` (per ISO week, Monday 00:00 UTC: organization x user x app, and x key prefix),
so a window of weeks reads a row per user or key and week instead of one per day; filled from
the hourly rollups already there (``backend.data.daily.rebuild``).
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from backend.data.daily import rebuild


def _fields(*keys):
    return [
        ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
        ("bucket", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
        *keys,
        ("requests", fields.IntField(default=0)),
        ("errors", fields.IntField(default=0)),
        ("input_tokens", fields.BigIntField(default=0)),
        ("output_tokens", fields.BigIntField(default=0)),
        ("cached_tokens", fields.BigIntField(default=0)),
        ("cost_usd", fields.DecimalField(default=0, max_digits=18, decimal_places=8)),
        ("unknown_cost_requests", fields.IntField(default=0)),
        ("latency_ms_sum", fields.FloatField(default=0)),
    ]


_OWNER = (
    ("org_id", fields.IntField(default=0)),
    ("user_id", fields.IntField(default=0)),
    ("app_id", fields.IntField(default=0)),
)


async def backfill(apps, schema_editor):
    await rebuild(schema_editor.client, ("user_weekly", "key_weekly"))


class Migration(migrations.Migration):
    dependencies = [("models", "0012_narrow_rollups")]

    initial = False

    operations = [
        ops.CreateModel(
            name="UserWeekly",
            fields=_fields(*_OWNER),
            options={
                "table": "user_weekly",
                "app": "models",
                "unique_together": (("bucket", "org_id", "user_id", "app_id"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="KeyWeekly",
            fields=_fields(*_OWNER, ("key_prefix", fields.CharField(max_length=32))),
            options={
                "table": "key_weekly",
                "app": "models",
                "unique_together": (("bucket", "org_id", "user_id", "app_id", "key_prefix"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.RunPython(backfill),
    ]
