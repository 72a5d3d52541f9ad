"""Single sign-on (issue 18 item 1): the OpenID provider, its claim mapping rules, the users'
linked identities (issuer + subject), and organizations that sign in with SSO only.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0007_request_detail")]

    initial = False

    operations = [
        ops.CreateModel(
            name="SsoIdentity",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(unique=True, max_length=64)),
                ("issuer", fields.CharField(max_length=500)),
                ("subject", fields.CharField(max_length=255)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "models.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sso_identities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "last_login_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={"table": "sso_identities", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SsoProvider",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("enabled", fields.BooleanField(default=True)),
                ("display_name", fields.CharField(default="SSO", max_length=100)),
                ("issuer", fields.CharField(max_length=500)),
                ("client_id", fields.CharField(max_length=255)),
                ("client_secret_ciphertext", fields.TextField(null=True, unique=False)),
                ("client_secret_last4", fields.CharField(null=True, max_length=8)),
                ("scopes", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("gateway_url", fields.CharField(max_length=500)),
                ("dashboard_url", fields.CharField(max_length=500)),
                ("default_role", fields.CharField(null=True, max_length=20)),
                (
                    "default_organization",
                    fields.ForeignKeyField(
                        "models.Organization",
                        source_field="default_organization_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("require_verified_email", fields.BooleanField(default=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("updated_by", fields.IntField(null=True)),
            ],
            options={"table": "sso_providers", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SsoRule",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("position", fields.IntField(default=0)),
                ("claim", fields.CharField(max_length=200)),
                ("value", fields.CharField(max_length=500)),
                ("role", fields.CharField(max_length=20)),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "models.Organization",
                        source_field="organization_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "sso_rules", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Organization",
            name="sso_only",
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
