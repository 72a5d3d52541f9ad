"""Provider deployments: super_admin only, API keys write-only (AES-256-GCM at rest).

A deployment is identified by ``(provider, name)``; its ciphertext is bound to both, so neither
can change (delete and create instead). Reads expose ``api_key_last4`` and never the key. Every
change writes an audit row naming the fields that changed (never their values) and reloads the
``credentials`` domain on every instance, like credentials themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, actor_id, require_super
from backend.admin.credentials import PROVIDER_RE, TEXT_FIELDS, _api_key
from backend.admin.errors import FailedPrecondition, InvalidInput, NotFound
from backend.data.models.deployments import ProviderDeployment
from backend.data.models.settings import ProviderCredential
from backend.gateway import Gateway
from backend.providers.credentials import DEFAULTS, deployment_aad
from backend.providers.deployment_limits import Usage
from backend.providers.deployment_state import DeploymentStatus
from backend.providers.deployments import deployment_key

MAX_WEIGHT = 1000
MAX_LIMIT = 1_000_000_000
MAX_MODELS = 100


@dataclass(slots=True)
class DeploymentView:
    """A row with what this instance knows of it live (status ``None``: not serving here)."""

    row: ProviderDeployment
    status: DeploymentStatus | None
    #: Requests and tokens in its window (every instance's, when Redis is configured).
    window: Usage
    #: Why the gateway cannot use it (undecryptable key, no key, unknown provider...).
    problem: str | None
    #: Instances whose status is merged into ``status`` (``deployment_share``; 0: none has it).
    instances: int = 0


async def list_deployments(gw: Gateway, actor: Actor) -> list[DeploymentView]:
    require_super(actor, "view provider deployments")
    rows = await ProviderDeployment.all().order_by("provider", "name")
    errors = gw.providers.deployment_errors()
    # Every instance's status (through Redis when configured), not only this instance's.
    shared = await gw.providers.shared_statuses()
    out = []
    for row in rows:
        key = deployment_key(row.provider, row.name)
        found = shared.get(key)
        if row.rpm_limit is not None or row.tpm_limit is not None:
            window = await gw.providers.windows.usage(key, shared=True)  # one window in Redis
        else:
            window = found.window if found is not None else Usage(0, 0)
        out.append(
            DeploymentView(
                row,
                found.status if found is not None else None,
                window,
                errors.get(key),
                found.instances if found is not None else 0,
            )
        )
    return out


def _name(value: Any, field: str) -> str:
    out = v.text(value, field, max_len=64)
    if not PROVIDER_RE.match(out):
        raise InvalidInput(f"{field} must be lowercase letters, digits, '-' or '_'", field=field)
    return out


async def _known_provider(gw: Gateway, provider: str) -> None:
    if provider in DEFAULTS or provider in gw.providers.configured():
        return
    if provider in gw.providers.errors() or await ProviderCredential.exists(provider=provider):
        return
    raise FailedPrecondition(
        f"provider {provider!r} is unknown: store its credential (its kind) first", field="provider"
    )


def _models(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_MODELS:
        raise InvalidInput(f"models must be a list of at most {MAX_MODELS} names", field="models")
    return list(dict.fromkeys(v.model_name(m, "models") for m in value))


def _limit(value: Any, field: str) -> int | None:
    return v.int_range(value, field, 1, MAX_LIMIT)


async def upsert_deployment(
    gw: Gateway, actor: Actor, provider: str, name: str, changes: dict[str, Any]
) -> ProviderDeployment:
    """Create or change a deployment; ``apiKey`` None or "" removes its own key (it then uses
    the provider's)."""
    require_super(actor, "change provider deployments")
    provider = _name(provider, "provider")
    name = _name(name, "name")
    row = await ProviderDeployment.get_or_none(provider=provider, name=name)
    created = row is None
    if row is None:
        await _known_provider(gw, provider)
        row = ProviderDeployment(provider=provider, name=name)
    if "base_url" in changes:
        row.base_url = v.http_url(changes["base_url"], "baseUrl")
    for field, limit in TEXT_FIELDS.items():
        if field in changes:
            setattr(row, field, v.optional_text(changes[field], field, max_len=limit))
    if "weight" in changes:
        row.weight = v.int_range(changes["weight"], "weight", 0, MAX_WEIGHT, optional=False) or 0
    if "rpm_limit" in changes:
        row.rpm_limit = _limit(changes["rpm_limit"], "rpmLimit")
    if "tpm_limit" in changes:
        row.tpm_limit = _limit(changes["tpm_limit"], "tpmLimit")
    if "models" in changes:
        row.models = _models(changes["models"])
    if "enabled" in changes:
        row.enabled = bool(changes["enabled"])
    if "api_key" in changes:
        secret = _api_key(changes["api_key"])
        row.api_key_ciphertext = None if secret is None else _encrypt(gw, provider, name, secret)  # type: ignore[assignment]
        row.api_key_last4 = None if secret is None else secret[-4:]
    row.updated_by = actor_id(actor)
    await row.save()
    await audit.record(
        actor,
        "deployment.create" if created else "deployment.update",
        f"deployment:{provider}/{name}",
        fields=sorted(changes),
    )
    await gw.config_changed("credentials")
    return row


def _encrypt(gw: Gateway, provider: str, name: str, api_key: str) -> str:
    from backend.security.crypto import encrypt_secret

    if not gw.secret_key:
        raise FailedPrecondition("the gateway has no secret key to encrypt credentials with")
    return encrypt_secret(gw.secret_key, api_key, deployment_aad(provider, name))


async def delete_deployment(gw: Gateway, actor: Actor, provider: str, name: str) -> bool:
    require_super(actor, "change provider deployments")
    if not await ProviderDeployment.filter(provider=provider, name=name).delete():
        raise NotFound(f"no deployment {name!r} of provider {provider!r}")
    await audit.record(actor, "deployment.delete", f"deployment:{provider}/{name}")
    await gw.config_changed("credentials")
    return True
