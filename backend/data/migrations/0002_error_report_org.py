"""Error reports keep the organization they were made under (``org_id``).

Reports used to be scoped by the reporter's current organization, so a user who moved took their
old organization's reports along. Existing rows are backfilled with the best available answer: for
a gateway report, the organization of the request it describes (its log row, written from the
caller's principal); otherwise the reporting user's current organization. A client report's
``request_id`` is whatever the client sent, so it is not trusted to pick an organization.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

BACKFILL = """
UPDATE error_reports SET org_id = COALESCE(
    (SELECT r.org_id FROM request_logs r
      WHERE error_reports.source = 'gateway' AND r.request_id = error_reports.request_id
      ORDER BY r.id LIMIT 1),
    (SELECT u.organization_id FROM users u WHERE u.id = error_reports.user_id)
)
WHERE org_id IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ErrorReport',
            name='org_id',
            field=fields.IntField(null=True, db_index=True),
        ),
        ops.RunSQL(BACKFILL, reverse_sql=""),
    ]
