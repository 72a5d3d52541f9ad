"""Routing configuration: aliases, agent tiers, fallback chains and price overrides."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from backend.data.models.tenancy import Organization


class ModelAlias(Model):
    id = fields.IntField(primary_key=True)
    requested_model = fields.CharField(max_length=200)
    target_model = fields.CharField(max_length=200)
    # Null: a global alias. Set: the organization's alias, which beats a global one.
    organization: fields.ForeignKeyNullableRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="aliases", null=True, on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "model_aliases"
        # Uniqueness is enforced by the admin API: Tortoise 1.1 migrations on SQLite
        # emit a UNIQUE over a foreign-key column before the column exists.


class AgentConfig(Model):
    id = fields.IntField(primary_key=True)
    agent_id = fields.CharField(max_length=100, unique=True)
    name = fields.CharField(max_length=200)
    role = fields.CharField(max_length=200, default="")
    normal_model = fields.CharField(max_length=200)
    heavy_model = fields.CharField(max_length=200, null=True)
    max_model = fields.CharField(max_length=200, null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "agent_configs"


class FallbackChain(Model):
    id = fields.IntField(primary_key=True)
    primary_model = fields.CharField(max_length=200, unique=True)
    chain: fields.JSONField[list[str]] = fields.JSONField(
        default=list
    )  # ordered list of model names
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "fallback_chains"


class ModelPrice(Model):
    # Per-model override of the maintained price table (USD per million tokens).

    id = fields.IntField(primary_key=True)
    model = fields.CharField(max_length=200, unique=True)
    input_per_mtok = fields.DecimalField(max_digits=18, decimal_places=8)
    output_per_mtok = fields.DecimalField(max_digits=18, decimal_places=8)
    cached_per_mtok = fields.DecimalField(max_digits=18, decimal_places=8, null=True)
    context_window = fields.IntField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "model_prices"
