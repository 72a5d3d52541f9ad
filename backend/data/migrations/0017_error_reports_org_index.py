"""The index on ``error_reports.org_id`` that 0002 declared (``db_index=True``) but never made:
Tortoise's ``AddField`` does not create a field's index. Error reports are listed per organization,
so without it an org admin's list scans the whole table. The name is the one Tortoise gives it
when it builds the schema from the models, so both ways end at the same schema.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0016_field_descriptions")]

    initial = False

    operations = [
        ops.RunSQL(
            'CREATE INDEX IF NOT EXISTS "idx_error_repor_org_id_ee03ad" '
            'ON "error_reports" ("org_id")',
            reverse_sql='DROP INDEX IF EXISTS "idx_error_repor_org_id_ee03ad"',
        ),
    ]
