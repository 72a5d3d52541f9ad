"""Provider deployments at load time: rows -> complete connection specs, secrets decrypted.

A deployment is one more account or endpoint of a provider (``ProviderDeployment`` rows). Each
field it leaves empty inherits the provider's own connection as ``load_provider_configs``
resolved it (credential row over environment over default), so the row of a second OpenAI
account holds only its API key, and an Azure region its base URL and key.

Which connection serves a request (``deployment_pool.DeploymentPool``): the enabled deployments
that serve the requested model (``models`` empty: every model), spread by weight and headroom;
the provider's own connection serves only models no enabled deployment serves. A provider whose
own connection is unconfigured is usable through its deployments alone.

A deployment whose key cannot be decrypted, or that ends up without a key or base URL, is left
out with a reason (``errors``, keyed ``provider/name``); its siblings keep serving.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from backend.data.models.deployments import ProviderDeployment
from backend.data.models.settings import ProviderCredential
from backend.providers.base import ProviderConfig
from backend.providers.credentials import (
    DEFAULTS,
    KINDS,
    deployment_aad,
    env_provider_configs,
    is_configured,
    normalize_base_url,
)
from backend.security.crypto import CredentialDecryptError, decrypt_secret

log = logging.getLogger("switchboard.deployments")

_OVERLAY_FIELDS = ("base_url", "organization", "project", "azure_deployment", "api_version")


def deployment_key(provider: str, name: str) -> str:
    """The id of a deployment in errors, limits and status: ``provider/name``."""
    return f"{provider}/{name}"


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    provider: str
    name: str
    #: The complete connection (``config.name`` is the provider's name, as errors show it).
    config: ProviderConfig
    weight: int = 1
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    #: The provider's model ids it serves; empty: every model.
    models: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return deployment_key(self.provider, self.name)

    def serves(self, model: str) -> bool:
        return not self.models or model in self.models


DeploymentSpecs = Mapping[str, tuple[DeploymentSpec, ...]]


async def _bases(
    env: Mapping[str, str], configs: Mapping[str, ProviderConfig]
) -> dict[str, ProviderConfig]:
    """The connection each provider's deployments inherit, configured or not."""
    bases = env_provider_configs(env)
    for row in await ProviderCredential.all():
        if row.provider not in bases and row.kind in KINDS:
            bases[row.provider] = ProviderConfig(
                name=row.provider, kind=row.kind, base_url=(row.base_url or "").strip()
            )
    bases.update(configs)
    return bases


async def load_deployments(
    env: Mapping[str, str],
    key: bytes,
    configs: Mapping[str, ProviderConfig],
    provider_errors: Mapping[str, str],
) -> tuple[dict[str, tuple[DeploymentSpec, ...]], dict[str, str]]:
    """``(enabled usable deployments by provider, reasons of broken ones by provider/name)``.

    ``configs``/``provider_errors`` are what ``load_provider_configs`` returned. Deployments of a
    provider that is broken are broken with it; those of a disabled provider are returned (the
    registry keeps the whole provider disabled).
    """
    rows = await ProviderDeployment.filter(enabled=True).order_by("provider", "name")
    if not rows:
        return {}, {}
    bases = await _bases(env, configs)
    out: dict[str, list[DeploymentSpec]] = {}
    errors: dict[str, str] = {}
    for row in rows:
        ident = deployment_key(row.provider, row.name)
        if row.provider in provider_errors:
            reason = provider_errors[row.provider]
            errors[ident] = f"provider {row.provider!r} is unusable: {reason}"
            continue
        base = bases.get(row.provider)
        if base is None:
            errors[ident] = (
                f"provider {row.provider!r} is unknown: store its credential (its kind) first"
            )
            continue
        changes: dict[str, object] = {"enabled": base.enabled}
        for field in _OVERLAY_FIELDS:
            value = getattr(row, field)
            if value:
                changes[field] = value.strip()
        if row.api_key_ciphertext:
            try:
                changes["api_key"] = decrypt_secret(
                    key, row.api_key_ciphertext, deployment_aad(row.provider, row.name)
                )
            except CredentialDecryptError as exc:
                errors[ident] = str(exc)
                log.error("deployment %s disabled: %s", ident, exc)
                continue
        cfg = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        custom = row.provider not in DEFAULTS
        if not cfg.base_url:
            errors[ident] = f"deployment {ident} has no base URL (nor has its provider)"
            continue
        if not is_configured(cfg, custom=custom):
            errors[ident] = f"deployment {ident} has no API key (nor has its provider)"
            continue
        cfg = dataclasses.replace(cfg, base_url=normalize_base_url(cfg.kind, cfg.base_url))
        out.setdefault(row.provider, []).append(
            DeploymentSpec(
                provider=row.provider,
                name=row.name,
                config=cfg,
                weight=max(0, int(row.weight)),
                rpm_limit=row.rpm_limit,
                tpm_limit=row.tpm_limit,
                models=frozenset(row.models or ()),
            )
        )
    return {p: tuple(specs) for p, specs in out.items()}, errors
