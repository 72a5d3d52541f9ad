"""Live traffic per organization (issue 17: org admins get the home page's Live section):
``org_minute_stats`` holds per minute and organization what ``minute_stats`` holds gateway-wide.
It starts empty: the live view covers at most the last day, which fills as requests arrive.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0014_key_lineage")]

    initial = False

    operations = [
        ops.CreateModel(
            name="OrgMinuteStat",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("bucket", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("org_id", fields.IntField()),
                ("requests", fields.IntField(default=0)),
                ("errors", fields.IntField(default=0)),
                ("tokens", fields.BigIntField(default=0)),
                ("cost_usd", fields.DecimalField(default=0, max_digits=18, decimal_places=8)),
                ("unknown_cost_requests", fields.IntField(default=0)),
                ("latency_hist", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={
                "table": "org_minute_stats",
                "app": "models",
                "unique_together": (("bucket", "org_id"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
