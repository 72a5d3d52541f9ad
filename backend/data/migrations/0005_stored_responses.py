"""Stored responses (issue 15 item 1): the Responses API's ``store: true`` answers, DLP-redacted,
scoped to the caller's organization, deleted by the sweeper once ``expires_at`` has passed.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0004_governance")]

    initial = False

    operations = [
        ops.CreateModel(
            name="StoredResponse",
            fields=[
                ("id", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=100)),
                ("scope", fields.CharField(max_length=40)),
                ("org_id", fields.IntField(null=True, db_index=True)),
                ("user_id", fields.IntField(null=True)),
                ("app_id", fields.IntField(null=True)),
                ("request_id", fields.CharField(null=True, max_length=64)),
                ("model", fields.CharField(null=True, max_length=200)),
                ("status", fields.CharField(max_length=20)),
                ("previous_response_id", fields.CharField(null=True, max_length=100)),
                ("ancestors", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("response", fields.TextField(unique=False)),
                ("input_items", fields.TextField(unique=False)),
            ],
            options={"table": "stored_responses", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
