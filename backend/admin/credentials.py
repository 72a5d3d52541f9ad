"""Provider credentials: super_admin only, API keys write-only (AES-256-GCM at rest).

Reads expose ``api_key_last4`` and never the key. Every change writes an audit row naming the
fields that changed (never their values) and reloads the ``credentials`` domain everywhere.
"""

from __future__ import annotations

import re
from typing import Any

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, actor_id, require_super
from backend.admin.errors import FailedPrecondition, InvalidInput, NotFound
from backend.data.models.settings import ProviderCredential
from backend.gateway import Gateway
from backend.providers.credentials import KINDS

PROVIDER_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MIN_KEY_LENGTH = 8
TEXT_FIELDS = {
    "organization": 200,
    "project": 200,
    "azure_deployment": 200,
    "api_version": 50,
}


async def list_credentials(actor: Actor) -> list[ProviderCredential]:
    require_super(actor, "view provider credentials")
    return await ProviderCredential.all().order_by("provider")


def _encrypt(gw: Gateway, provider: str, api_key: str) -> str:
    from backend.security.crypto import encrypt_secret

    if not gw.secret_key:
        raise FailedPrecondition("the gateway has no secret key to encrypt credentials with")
    return encrypt_secret(gw.secret_key, api_key, f"provider:{provider}")


def _api_key(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value != value.strip() or any(c.isspace() for c in value):
        raise InvalidInput("apiKey must be a string without spaces", field="apiKey")
    if len(value) < MIN_KEY_LENGTH:
        raise InvalidInput(f"apiKey must be at least {MIN_KEY_LENGTH} characters", field="apiKey")
    if len(value) > 4096:
        raise InvalidInput("apiKey is too long", field="apiKey")
    return value


async def upsert_credential(
    gw: Gateway, actor: Actor, provider: str, changes: dict[str, Any]
) -> ProviderCredential:
    """Create or change a provider's connection; ``apiKey`` None or "" removes the stored key."""
    require_super(actor, "change provider credentials")
    name = v.text(provider, "provider", max_len=64)
    if not PROVIDER_RE.match(name):
        raise InvalidInput(
            "provider must be lowercase letters, digits, '-' or '_'", field="provider"
        )
    row = await ProviderCredential.get_or_none(provider=name)
    created = row is None
    if row is None:
        if "kind" not in changes:
            raise InvalidInput("kind is required for a new provider", field="kind")
        row = ProviderCredential(provider=name)
    if "kind" in changes:
        row.kind = v.choice(changes["kind"], "kind", KINDS)
    if "base_url" in changes:
        row.base_url = v.http_url(changes["base_url"], "baseUrl")
    for field, limit in TEXT_FIELDS.items():
        if field in changes:
            setattr(row, field, v.optional_text(changes[field], field, max_len=limit))
    if "enabled" in changes:
        row.enabled = bool(changes["enabled"])
    if "api_key" in changes:
        secret = _api_key(changes["api_key"])
        row.api_key_ciphertext = None if secret is None else _encrypt(gw, name, secret)  # type: ignore[assignment]
        row.api_key_last4 = None if secret is None else secret[-4:]
    row.updated_by = actor_id(actor)
    await row.save()
    await audit.record(
        actor,
        "credential.create" if created else "credential.update",
        f"provider:{name}",
        fields=sorted(changes),
    )
    await gw.config_changed("credentials")
    return row


async def delete_credential(gw: Gateway, actor: Actor, provider: str) -> bool:
    require_super(actor, "change provider credentials")
    if not await ProviderCredential.filter(provider=provider).delete():
        raise NotFound(f"no stored credentials for provider {provider!r}")
    await audit.record(actor, "credential.delete", f"provider:{provider}")
    await gw.config_changed("credentials")
    return True
