"""Provider deployments on the settings page: their share, limits, load and health."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.entity import Confirmable
from frontend_reflex.validate import FormError, checked, model_list, optional, required


def _limit(value: Any) -> str:
    return "—" if value in (None, "") else fmt.number(value)


def _instances(count: Any) -> str:
    # Counts are summed over the gateway instances reporting; say so when there are several.
    n = int(count or 0)
    return f" · {n} instances" if n > 1 else ""


def deployment_row(d: Mapping[str, Any]) -> dict[str, str]:
    status = d.get("status") or {}
    last4 = d.get("apiKeyLast4") if d.get("apiKeySet") else None
    models = d.get("models") or []
    health = queries.stored(status.get("health"), "unknown")
    if not d.get("enabled", True):
        health = "disabled"
    cooldown = float(status.get("cooldownSeconds") or 0)
    return {
        "provider": fmt.text(d.get("provider")),
        "name": fmt.text(d.get("name")),
        "endpoint": fmt.text(d.get("baseUrl"), "provider's"),
        "secret": f"••••{last4}" if last4 else "provider's",
        "weight": fmt.number(d.get("weight")),
        "limits": f"{_limit(d.get('rpmLimit'))} rpm · {_limit(d.get('tpmLimit'))} tpm",
        "models": ", ".join(str(m) for m in models) if models else "all",
        "load": (
            f"{fmt.number(status.get('requestsLastMinute'))} req/min · "
            f"{fmt.number(status.get('inFlight'))} in flight" + _instances(status.get("instances"))
        ),
        "totals": (
            f"{fmt.number(status.get('requests'))} sent · "
            f"{fmt.number(status.get('failures'))} failed · "
            f"{fmt.number(status.get('rateLimited'))}× 429"
        ),
        "health": health,
        "detail": fmt.text(
            status.get("problem")
            or (f"retry in {cooldown:.0f}s: " if cooldown else "")
            + (status.get("lastError") or ""),
            "",
        ),
        "enabled": "yes" if d.get("enabled", True) else "no",
    }


def _count(form: Mapping[str, Any], key: str, label: str, lo: int) -> int | None:
    raw = optional(form, key).replace(",", "").replace("_", "")
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < lo:
        raise FormError(f"{label} must be a whole number of at least {lo}.")
    return int(raw)


def deployment_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    """The form as a ProviderDeploymentInput; empty boxes mean "the provider's" / "no limit"."""
    fields: dict[str, Any] = {
        "baseUrl": optional(form, "base_url") or None,
        "weight": _count(form, "weight", "Weight", 0),
        "rpmLimit": _count(form, "rpm_limit", "Requests per minute", 1),
        "tpmLimit": _count(form, "tpm_limit", "Tokens per minute", 1),
        "models": model_list(optional(form, "models")),
        "enabled": checked(form, "enabled"),
    }
    if fields["weight"] is None:
        fields["weight"] = 1
    url = fields["baseUrl"]
    if url and not url.startswith(("http://", "https://")):
        raise FormError("The base URL must start with http:// or https://.")
    # Write-only: an empty box keeps the stored key instead of erasing it.
    if optional(form, "api_key"):
        fields["apiKey"] = optional(form, "api_key")
    return fields


class DeploymentsState(Confirmable, AuthState):
    deployments: list[dict[str, str]] = []
    deployment_error: str = ""
    deployment_ok: str = ""

    @rx.event
    async def load(self) -> Any:
        if not self.is_super:
            return None
        return await self._fetch()

    @rx.event
    async def tick(self, _value: Any = None) -> Any:
        # Live load and health: re-read while the settings page is open.
        if self.is_super and self.router.url.path == "/settings":
            return await self._fetch()
        return None

    async def _fetch(self) -> Any:
        try:
            data = await self._gql(queries.DEPLOYMENTS)
        except ApiError as exc:
            self.deployment_error = exc.message
            return self._on_api_error(exc)
        self.deployments = [deployment_row(d) for d in data.get("providerDeployments") or []]
        return None

    @rx.event
    async def save(self, form: dict[str, Any]) -> Any:
        self.deployment_ok = ""
        try:
            provider = required(form, "provider", "Provider")
            name = required(form, "name", "Name")
            op = queries.set_deployment(provider, name, deployment_fields(form))
            await self._gql(*op)
        except FormError as exc:
            self.deployment_error = str(exc)
            return None
        except ApiError as exc:
            self.deployment_error = exc.message
            return self._on_api_error(exc)
        self.deployment_error = ""
        self.deployment_ok = f"Deployment {provider}/{name} saved; every instance uses it now."
        return [rx.set_value("dep-key", ""), DeploymentsState.reload]

    @rx.event
    async def reload(self) -> Any:
        return await self._fetch()

    @rx.event
    async def toggle(self, row: dict[str, str]) -> Any:
        enabled = row.get("enabled") != "yes"
        try:
            op = queries.set_deployment(row["provider"], row["name"], {"enabled": enabled})
            await self._gql(*op)
        except ApiError as exc:
            self.deployment_error = exc.message
            return self._on_api_error(exc)
        self.deployment_error = ""
        return await self._fetch()

    @rx.event
    def delete(self, row: dict[str, str]) -> None:
        self._ask("delete", row)

    async def _confirmed_delete(self, row: dict[str, str]) -> Any:
        try:
            await self._gql(*queries.delete_deployment(row["provider"], row["name"]))
        except ApiError as exc:
            self.deployment_error = exc.message
            return self._on_api_error(exc)
        self.deployment_error = ""
        self.deployment_ok = f"Deployment {row['provider']}/{row['name']} removed."
        return await self._fetch()
