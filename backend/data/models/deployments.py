"""Provider deployments: several accounts or endpoints serving one provider's models.

A deployment belongs to a provider by name (``openai``, ``azure``, a custom provider). Every
field left empty inherits the provider's own connection (environment or credential row), so two
OpenAI accounts differ only by their API key, two Azure regions by base URL and key. The API key
is stored only as AES-256-GCM ciphertext bound to ``provider`` and ``name``.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ProviderDeployment(Model):
    id = fields.IntField(primary_key=True)
    provider = fields.CharField(max_length=64, db_index=True)
    #: Unique per provider; the row's identity (its ciphertext is bound to it).
    name = fields.CharField(max_length=64)
    base_url = fields.CharField(max_length=500, null=True)
    # base64(nonce || ciphertext || tag), associated data "deployment:<provider>/<name>".
    api_key_ciphertext = fields.TextField(null=True)
    api_key_last4 = fields.CharField(max_length=8, null=True)
    organization = fields.CharField(max_length=200, null=True)
    project = fields.CharField(max_length=200, null=True)
    azure_deployment = fields.CharField(max_length=200, null=True)
    api_version = fields.CharField(max_length=50, null=True)
    #: Share of the provider's requests, relative to its sibling deployments' weights.
    weight = fields.IntField(default=1)
    #: Requests / tokens per minute this deployment may take (null: no limit of its own).
    rpm_limit = fields.IntField(null=True)
    tpm_limit = fields.IntField(null=True)
    #: The provider's model ids this deployment serves; empty: every model.
    models: fields.JSONField[list[str]] = fields.JSONField(default=list)
    enabled = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)
    updated_by = fields.IntField(null=True)

    class Meta:
        table = "provider_deployments"
        unique_together = (("provider", "name"),)
