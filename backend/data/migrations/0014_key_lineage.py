"""Key rotation continues the old key's counters (spend cap, rate limits):
``api_keys.lineage_id`` is the id of the first key of a rotation chain, null for a key that was
never rotated into. Counters of a key are scoped by ``lineage_id or id``, so keys created before
this migration keep their counters (their scope is their own id, as before).
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0013_weekly_rollups")]

    initial = False

    operations = [
        ops.AddField(
            model_name="ApiKey",
            name="lineage_id",
            field=fields.IntField(null=True),
        ),
    ]
