"""Provider deployments (issue 18 item 5): several accounts or endpoints per provider.

One table; the API key of each row is AES-256-GCM ciphertext bound to its provider and name.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0002_error_report_org")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ProviderDeployment",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("provider", fields.CharField(db_index=True, max_length=64)),
                ("name", fields.CharField(max_length=64)),
                ("base_url", fields.CharField(null=True, max_length=500)),
                ("api_key_ciphertext", fields.TextField(null=True, unique=False)),
                ("api_key_last4", fields.CharField(null=True, max_length=8)),
                ("organization", fields.CharField(null=True, max_length=200)),
                ("project", fields.CharField(null=True, max_length=200)),
                ("azure_deployment", fields.CharField(null=True, max_length=200)),
                ("api_version", fields.CharField(null=True, max_length=50)),
                ("weight", fields.IntField(default=1)),
                ("rpm_limit", fields.IntField(null=True)),
                ("tpm_limit", fields.IntField(null=True)),
                ("models", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("enabled", fields.BooleanField(default=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("updated_by", fields.IntField(null=True)),
            ],
            options={
                "table": "provider_deployments",
                "app": "models",
                "unique_together": (("provider", "name"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
