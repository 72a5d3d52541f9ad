"""Request detail and the log explorer (issue 17 items 1, 2).

- request_logs: ``error_code``, ``upstream_status`` and ``refusal`` (which cap, limit or
  allowlist refused a request, so a spend-cap 429 can be told from a provider's 429),
  ``reasoning_tokens``, and ``price`` (the rates the cost was computed with);
- indexes for the explorer's filters and bounded counts: (org_id | app_id | key_prefix,
  created_at). An org_admin's every read filters on org_id.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_alerts')]

    initial = False

    operations = [
        ops.AddField(
            model_name='RequestLog',
            name='error_code',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='RequestLog',
            name='price',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='RequestLog',
            name='reasoning_tokens',
            # A database default: existing rows get 0 (SQLite and PostgreSQL refuse a NOT NULL
            # column without one on a table that has rows).
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='RequestLog',
            name='refusal',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='RequestLog',
            name='upstream_status',
            field=fields.IntField(null=True),
        ),
        ops.AddIndex(
            model_name='RequestLog',
            index=Index(fields=['org_id', 'created_at']),
        ),
        ops.AddIndex(
            model_name='RequestLog',
            index=Index(fields=['app_id', 'created_at']),
        ),
        ops.AddIndex(
            model_name='RequestLog',
            index=Index(fields=['key_prefix', 'created_at']),
        ),
    ]
