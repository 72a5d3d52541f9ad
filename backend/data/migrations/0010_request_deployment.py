"""Provider deployments in the request log (issue 18 item 5): ``request_logs.deployment`` names
the deployment (account or endpoint) that answered, or that failed on an error or attempt row;
null for the provider's own connection and for rows written before this migration.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0009_analytics_rollups")]

    initial = False

    operations = [
        ops.AddField(
            model_name="RequestLog",
            name="deployment",
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
