"""Provider connection settings: built-in defaults, then environment, then the database.

Precedence per field: a non-empty database value (``ProviderCredential`` row, API key decrypted
with ``decrypt_secret``) beats the environment, which beats the built-in default. A row that
cannot be decrypted makes *that* provider broken (reason in the returned ``errors``) and leaves
the others usable.

Environment variables::

    OPENAI_API_KEY  OPENAI_BASE_URL (with /v1)  OPENAI_ORG_ID  OPENAI_PROJECT_ID
    ANTHROPIC_API_KEY  ANTHROPIC_BASE_URL (without /v1)
    GEMINI_API_KEY (or GOOGLE_API_KEY)  GEMINI_BASE_URL
    OLLAMA_BASE_URL
    AZURE_OPENAI_API_KEY  AZURE_OPENAI_BASE_URL  AZURE_OPENAI_API_VERSION  AZURE_OPENAI_DEPLOYMENT
    SWITCHBOARD_PROVIDER_<NAME>_BASE_URL  SWITCHBOARD_PROVIDER_<NAME>_API_KEY
        -> provider "<name lowercase>", kind "openai" (any OpenAI-compatible server)

A provider is *configured* when it has an API key; Ollama and custom OpenAI-compatible providers
when they have a base URL (local servers usually need no key). Ollama's default URL alone does not
configure it: ``OLLAMA_BASE_URL``, the ``ollama_base_url`` gateway setting or a row must say so.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from tortoise.transactions import in_transaction

from backend.data.models.deployments import ProviderDeployment
from backend.data.models.settings import ProviderCredential
from backend.providers.base import ProviderConfig
from backend.security.crypto import (
    CredentialDecryptError,
    decrypt_secret,
    encrypt_secret,
    provider_aad,
)

log = logging.getLogger("switchboard.credentials")

KINDS = frozenset({"openai", "azure", "anthropic", "gemini", "ollama"})
CUSTOM_PREFIX = "SWITCHBOARD_PROVIDER_"


class ProviderDefault(NamedTuple):
    kind: str
    base_url: str | None
    #: Environment variable per ProviderConfig field.
    env: Mapping[str, str]


DEFAULTS: Mapping[str, ProviderDefault] = MappingProxyType(
    {
        "openai": ProviderDefault(
            "openai",
            "https://api.openai.com/v1",
            MappingProxyType(
                {
                    "api_key": "OPENAI_API_KEY",
                    "base_url": "OPENAI_BASE_URL",
                    "organization": "OPENAI_ORG_ID",
                    "project": "OPENAI_PROJECT_ID",
                }
            ),
        ),
        "anthropic": ProviderDefault(
            "anthropic",
            "https://api.anthropic.com",
            MappingProxyType({"api_key": "ANTHROPIC_API_KEY", "base_url": "ANTHROPIC_BASE_URL"}),
        ),
        "gemini": ProviderDefault(
            "gemini",
            "https://generativelanguage.googleapis.com",
            MappingProxyType({"api_key": "GEMINI_API_KEY", "base_url": "GEMINI_BASE_URL"}),
        ),
        "ollama": ProviderDefault(
            "ollama", "http://127.0.0.1:11434", MappingProxyType({"base_url": "OLLAMA_BASE_URL"})
        ),
        "azure": ProviderDefault(
            "azure",
            None,
            MappingProxyType(
                {
                    "api_key": "AZURE_OPENAI_API_KEY",
                    "base_url": "AZURE_OPENAI_BASE_URL",
                    "api_version": "AZURE_OPENAI_API_VERSION",
                    "azure_deployment": "AZURE_OPENAI_DEPLOYMENT",
                }
            ),
        ),
    }
)

#: Secondary variables read when the primary one is unset (the vendor SDK's own convention).
_ENV_FALLBACKS: Mapping[str, str] = MappingProxyType({"GEMINI_API_KEY": "GOOGLE_API_KEY"})

_OVERLAY_FIELDS = ("base_url", "organization", "project", "azure_deployment", "api_version")


def deployment_aad(provider: str, name: str) -> str:
    """Associated data binding a deployment's ciphertext to its row (provider and name)."""
    return f"deployment:{provider}/{name}"


def normalize_base_url(kind: str, url: str) -> str:
    url = url.strip().rstrip("/")
    # Anthropic's convention is a base without /v1 (the adapter appends /v1/messages); a pasted
    # ".../v1" would otherwise become /v1/v1/messages.
    if kind == "anthropic" and url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def is_configured(config: ProviderConfig, *, custom: bool = False) -> bool:
    if config.kind == "ollama" or custom:
        return bool(config.base_url)
    return bool(config.api_key)


def _env(env: Mapping[str, str], var: str) -> str | None:
    value = (env.get(var) or "").strip()
    if not value and var in _ENV_FALLBACKS:
        value = (env.get(_ENV_FALLBACKS[var]) or "").strip()
    return value or None


def _custom_names(env: Mapping[str, str]) -> set[str]:
    names = set()
    for var in env:
        if var.startswith(CUSTOM_PREFIX):
            for suffix in ("_BASE_URL", "_API_KEY"):
                if var.endswith(suffix) and len(var) > len(CUSTOM_PREFIX) + len(suffix):
                    names.add(var[len(CUSTOM_PREFIX) : -len(suffix)].lower())
    return names


def env_provider_configs(env: Mapping[str, str]) -> dict[str, ProviderConfig]:
    """Every known provider with defaults and environment applied (configured or not)."""
    return _from_env(env)[0]


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, ProviderConfig], set[str]]:
    # Also returns the names whose base URL was set explicitly (Ollama needs one to count).
    out: dict[str, ProviderConfig] = {}
    explicit: set[str] = set()
    for name, default in DEFAULTS.items():
        values = {f: _env(env, var) for f, var in default.env.items()}
        base = values.pop("base_url", None)
        if base:
            explicit.add(name)
        out[name] = ProviderConfig(
            name=name,
            kind=default.kind,
            base_url=base or default.base_url or "",
            **values,  # type: ignore[arg-type]
        )
    for name in sorted(_custom_names(env)):
        prefix = f"{CUSTOM_PREFIX}{name.upper()}"
        base = _env(env, f"{prefix}_BASE_URL")
        key = _env(env, f"{prefix}_API_KEY")
        cfg = out.get(name)
        if cfg is None:
            out[name] = ProviderConfig(name=name, kind="openai", base_url=base or "", api_key=key)
        else:
            # A custom declaration reusing a built-in name only fills gaps: the vendor's own
            # variables stay authoritative.
            if base and name not in explicit:
                cfg = dataclasses.replace(cfg, base_url=base)
            out[name] = dataclasses.replace(cfg, api_key=cfg.api_key or key)
        if base:
            explicit.add(name)
    return out, explicit


async def load_provider_configs(
    env: Mapping[str, str], key: bytes, *, ollama_base_url: str | None = None
) -> tuple[dict[str, ProviderConfig], dict[str, str]]:
    """Resolve every provider: ``(configured providers by name, reasons of broken ones)``.

    ``ollama_base_url`` is the gateway setting of that name (the ``settings`` domain): it beats
    ``OLLAMA_BASE_URL`` and loses to an ``ollama`` credential row, so callers should reload on
    both ``credentials`` and ``settings`` config events. Providers disabled by their row are
    returned with ``enabled=False`` so the registry can say why they are unavailable.
    """
    merged, explicit = _from_env(env)
    custom = {n for n in merged if n not in DEFAULTS}
    if ollama_base_url:
        merged["ollama"] = dataclasses.replace(merged["ollama"], base_url=ollama_base_url)
        explicit.add("ollama")
    errors: dict[str, str] = {}

    for row in await ProviderCredential.all():
        name = row.provider
        if row.kind not in KINDS:
            errors[name] = f"provider {name!r}: unknown kind {row.kind!r}"
            merged.pop(name, None)
            continue
        base = merged.get(name) or ProviderConfig(name=name, kind=row.kind, base_url="")
        if name not in DEFAULTS:
            custom.add(name)
        changes: dict[str, object] = {"kind": row.kind, "enabled": bool(row.enabled)}
        for f in _OVERLAY_FIELDS:
            value = getattr(row, f)
            if value:
                changes[f] = value.strip()
        explicit.add(name)  # a row is explicit intent, even one relying on the default URL
        if row.api_key_ciphertext:
            try:
                changes["api_key"] = decrypt_secret(key, row.api_key_ciphertext, provider_aad(name))
            except CredentialDecryptError as exc:
                errors[name] = str(exc)
                merged.pop(name, None)
                log.error("provider %s disabled: %s", name, exc)
                continue
        merged[name] = dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    configs: dict[str, ProviderConfig] = {}
    for name, cfg in merged.items():
        if name == "ollama" and name not in explicit:
            continue
        if cfg.enabled and not is_configured(cfg, custom=name in custom):
            continue
        if cfg.enabled and not cfg.base_url:
            errors[name] = f"provider {name!r} has credentials but no base URL"
            continue
        configs[name] = dataclasses.replace(
            cfg, base_url=normalize_base_url(cfg.kind, cfg.base_url)
        )
    return configs, errors


async def rotate_key(old_key: bytes, new_key: bytes) -> int:
    """Re-encrypt every stored credential from ``old_key`` to ``new_key`` in one transaction.

    Provider credentials and provider deployments alike. Returns how many rows were
    re-encrypted. A row already readable with ``new_key`` (a rotation re-run) is left as is; a
    row readable with neither aborts the whole rotation with ``CredentialDecryptError`` naming
    the provider, and nothing is changed.
    """
    count = 0
    async with in_transaction() as conn:
        rows: list[ProviderCredential | ProviderDeployment] = []
        rows += await ProviderCredential.all().using_db(conn).select_for_update()
        rows += await ProviderDeployment.all().using_db(conn).select_for_update()
        for row in rows:
            if not row.api_key_ciphertext:
                continue
            if isinstance(row, ProviderDeployment):
                aad = deployment_aad(row.provider, row.name)
            else:
                aad = provider_aad(row.provider)
            try:
                plain = decrypt_secret(old_key, row.api_key_ciphertext, aad)
            except CredentialDecryptError:
                decrypt_secret(new_key, row.api_key_ciphertext, aad)  # raises if unreadable
                continue
            row.api_key_ciphertext = encrypt_secret(new_key, plain, aad)
            await row.save(using_db=conn, update_fields=["api_key_ciphertext"])
            count += 1
    return count
