"""Gateway-wide settings, provider credentials (encrypted) and users' feature opt-ins."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from backend.data.models.tenancy import User


class Setting(Model):
    # One JSON value per key: routing strategy, Ollama connection, offered features...

    key = fields.CharField(max_length=100, primary_key=True)
    value: fields.JSONField[object] = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "settings"


class ProviderCredential(Model):
    # Connection settings of one provider, the API key only as AES-256-GCM ciphertext.

    id = fields.IntField(primary_key=True)
    provider = fields.CharField(max_length=64, unique=True)
    kind = fields.CharField(max_length=20)  # openai | azure | anthropic | gemini | ollama
    base_url = fields.CharField(max_length=500, null=True)
    # base64(nonce || ciphertext || tag), associated data binding it to ``provider``.
    api_key_ciphertext = fields.TextField(null=True)
    api_key_last4 = fields.CharField(max_length=8, null=True)
    organization = fields.CharField(max_length=200, null=True)
    project = fields.CharField(max_length=200, null=True)
    azure_deployment = fields.CharField(max_length=200, null=True)
    api_version = fields.CharField(max_length=50, null=True)
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)
    updated_by = fields.IntField(null=True)

    class Meta:
        table = "provider_credentials"


class UserFeature(Model):
    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="features", on_delete=fields.CASCADE
    )
    feature = fields.CharField(max_length=100)
    enabled = fields.BooleanField(default=True)

    class Meta:
        table = "user_features"
        # Uniqueness is enforced by the admin API: Tortoise 1.1 migrations on SQLite
        # emit a UNIQUE over a foreign-key column before the column exists.
