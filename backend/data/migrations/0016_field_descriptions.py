"""Field descriptions only (AlertChannel, AlertRule, AlertDelivery, ProviderDeployment): the models'
help texts changed after their tables were made, so ``makemigrations`` kept proposing these.

State only: nothing runs on the database. Tortoise's ``AlterField`` on SQLite rebuilds the table
and the rebuilt table lost its unique constraints and indexes (``alert_deliveries``' dedupe key,
``provider_deployments``' (provider, name)), so a description change must never reach the schema
editor.
"""

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class DescribeField(ops.AlterField):
    """An ``AlterField`` that changes only the migration state (a field's description)."""

    async def database_forward(self, *args: object, **kwargs: object) -> None:
        return None

    async def database_backward(self, *args: object, **kwargs: object) -> None:
        return None


class Migration(migrations.Migration):
    dependencies = [('models', '0015_org_minute_stats')]

    initial = False

    operations = [
        DescribeField(
            model_name='AlertChannel',
            name='config',
            field=fields.JSONField(default=dict, description='email: host, port, security (none|starttls|tls), username, sender, recipients.', encoder=JSON_DUMPS, decoder=loads),
        ),
        DescribeField(
            model_name='AlertChannel',
            name='url',
            field=fields.CharField(null=True, description='webhook/slack: the URL posted to.', max_length=500),
        ),
        DescribeField(
            model_name='AlertDelivery',
            name='next_attempt_at',
            field=fields.DatetimeField(null=True, db_index=True, description='When the next attempt is due; while one runs, the end of its lease (claimed rows).', auto_now=False, auto_now_add=False),
        ),
        DescribeField(
            model_name='AlertRule',
            name='channels',
            field=fields.JSONField(default=list, description='Channel names the alert goes to.', encoder=JSON_DUMPS, decoder=loads),
        ),
        DescribeField(
            model_name='AlertRule',
            name='error_rate_percent',
            field=fields.FloatField(null=True, description='error_rate: fire above this percent of failed requests over ``window_s``, once at'),
        ),
        DescribeField(
            model_name='AlertRule',
            name='provider',
            field=fields.CharField(null=True, description='circuit, error_rate: only this provider; null: every provider.', max_length=64),
        ),
        DescribeField(
            model_name='AlertRule',
            name='repeat_s',
            field=fields.IntField(default=3600, description='circuit, error_rate: at most once per subject in each period of this many seconds.'),
        ),
        DescribeField(
            model_name='AlertRule',
            name='scope_kind',
            field=fields.CharField(null=True, description='cap: only caps of this kind (user | org | app | key) / of this id; null: every one.', max_length=8),
        ),
        DescribeField(
            model_name='AlertRule',
            name='thresholds',
            field=fields.JSONField(default=list, description='cap: percents of the cap (e.g. [50, 80, 100]).', encoder=JSON_DUMPS, decoder=loads),
        ),
        DescribeField(
            model_name='ProviderDeployment',
            name='models',
            field=fields.JSONField(default=list, description="The provider's model ids this deployment serves; empty: every model.", encoder=JSON_DUMPS, decoder=loads),
        ),
        DescribeField(
            model_name='ProviderDeployment',
            name='name',
            field=fields.CharField(description="Unique per provider; the row's identity (its ciphertext is bound to it).", max_length=64),
        ),
        DescribeField(
            model_name='ProviderDeployment',
            name='rpm_limit',
            field=fields.IntField(null=True, description='Requests / tokens per minute this deployment may take (null: no limit of its own).'),
        ),
        DescribeField(
            model_name='ProviderDeployment',
            name='weight',
            field=fields.IntField(default=1, description="Share of the provider's requests, relative to its sibling deployments' weights."),
        ),
    ]
