"""Gateway Settings: routing strategy, Ollama, provider credentials, fallback chains, features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.entity import Confirmable
from frontend_reflex.validate import FormError, checked, model_list, optional, required

STRATEGIES = ["ordered", "cheapest", "fastest", "least-busy", "round-robin"]
STRATEGY_HELP = {
    "ordered": "The primary model, then its fallback chain, as configured.",
    "cheapest": "Cheapest candidate first, by the price table.",
    "fastest": "Lowest measured latency first (exponentially weighted).",
    "least-busy": "Fewest requests in flight first.",
    "round-robin": "Rotate over the candidates, request by request.",
}


def credential_row(c: Mapping[str, Any]) -> dict[str, str]:
    last4 = c.get("apiKeyLast4") if c.get("apiKeySet", True) else None
    return {
        "provider": fmt.text(c.get("provider")),
        "kind": queries.stored(c.get("kind"), "—"),
        "base_url": fmt.text(c.get("baseUrl"), "default"),
        "secret": f"••••{last4}" if last4 else "not set",
        "enabled": fmt.yes_no(c.get("enabled", True), "enabled", "disabled"),
        "updated": fmt.when(c.get("updatedAt")),
    }


def chain_row(c: Mapping[str, Any]) -> dict[str, str]:
    chain = c.get("chain") or []
    return {
        "primary": fmt.text(c.get("primaryModel")),
        "chain": " → ".join(str(m) for m in chain) if isinstance(chain, list) else str(chain),
    }


def credential_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": optional(form, "kind") or optional(form, "provider"),
        "baseUrl": optional(form, "base_url") or None,
        "enabled": checked(form, "enabled"),
    }
    # Write-only: an empty box keeps the stored key instead of erasing it.
    if optional(form, "api_key"):
        fields["apiKey"] = optional(form, "api_key")
    for key, name in (("azure_deployment", "azureDeployment"), ("api_version", "apiVersion")):
        if optional(form, key):
            fields[name] = optional(form, key)
    return fields


def ollama_health(ollama: Mapping[str, Any]) -> str:
    """What the Ollama badge says: configured at all (setting, env or credential), then whether
    its model discovery answered."""
    if not ollama.get("connected"):
        return "not configured"
    healthy = ollama.get("healthy")
    if healthy is None:
        return "configured"
    return "healthy" if healthy else "unreachable"


class SettingsState(Confirmable, AuthState):
    loading: bool = False
    error: str = ""
    strategy: str = "ordered"
    strategy_choice: str = "ordered"
    strategies: list[str] = STRATEGIES
    strategy_error: str = ""
    strategy_ok: str = ""
    ollama_url: str = ""
    ollama_health: str = "not configured"
    ollama_source: str = ""
    ollama_models: list[str] = []
    ollama_error: str = ""
    ollama_ok: str = ""
    credentials: list[dict[str, str]] = []
    credential_error: str = ""
    credential_ok: str = ""
    chains: list[dict[str, str]] = []
    chain_error: str = ""
    chain_warning: str = ""
    chain_pending: dict[str, str] = {}
    features: list[dict[str, str]] = []
    features_key: str = ""
    features_error: str = ""
    features_ok: str = ""

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(super_only=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._fetch()

    async def _fetch(self) -> Any:
        try:
            data = await self._gql(queries.SETTINGS)
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)
        settings = data.get("gatewaySettings") or {}
        self.strategy = queries.stored(settings.get("routingStrategy"), "ordered")
        self.strategy_choice = self.strategy
        self.strategies = [
            queries.stored(x) for x in settings.get("routingStrategies") or []
        ] or STRATEGIES
        ollama = settings.get("ollama") or {}
        self.ollama_url = str(ollama.get("baseUrl") or "")
        self.ollama_health = ollama_health(ollama)
        self.ollama_source = (
            "configured through OLLAMA_BASE_URL or a provider credential"
            if ollama.get("configuredBy") == "provider"
            else ""
        )
        self.ollama_models = [
            str(m.get("model"))
            for m in fmt.nodes(data.get("modelCatalog"))
            if m.get("provider") == "ollama"
        ]
        self.credentials = [credential_row(c) for c in fmt.nodes(data.get("providerCredentials"))]
        self.chains = [chain_row(c) for c in fmt.nodes(data.get("fallbackChains"))]
        offered = {queries.stored(f) for f in settings.get("offeredFeatures") or []}
        self.features = [
            {"name": name, "offered": "yes" if name in offered else "no"}
            for name in (queries.stored(f) for f in settings.get("knownFeatures") or [])
        ]
        self.features_key = ",".join(sorted(offered))
        self.error = ""
        self.loading = False
        return None

    @rx.var
    def strategy_help(self) -> str:
        return STRATEGY_HELP.get(self.strategy_choice, "")

    @rx.event
    def pick_strategy(self, value: str) -> None:
        self.strategy_choice = value
        self.strategy_ok = ""

    @rx.event
    async def save_strategy(self) -> Any:
        choice = self.strategy_choice
        self.strategy_ok = ""
        if choice not in self.strategies:
            self.strategy_error = "Pick one of the listed strategies."
            return None
        try:
            await self._gql(*queries.set_strategy(choice))
        except ApiError as exc:
            self.strategy_error = exc.message
            return self._on_api_error(exc)
        self.strategy = choice
        self.strategy_error = ""
        self.strategy_ok = f"Routing strategy is now {choice}; the next request uses it."
        return None

    @rx.event
    async def save_ollama(self, form: dict[str, Any]) -> Any:
        url = optional(form, "base_url")
        self.ollama_ok = ""
        if url and not url.startswith(("http://", "https://")):
            self.ollama_error = "The Ollama URL must start with http:// or https://."
            return None
        try:
            await self._gql(*queries.set_ollama(url))
        except ApiError as exc:
            self.ollama_error = exc.message
            return self._on_api_error(exc)
        self.ollama_error = ""
        self.ollama_ok = "Ollama connection saved." if url else "Ollama disconnected."
        return await self._fetch()

    @rx.event
    async def refresh_ollama(self) -> Any:
        result = await self._fetch()
        if not self.error:
            self.ollama_ok = f"The catalog lists {len(self.ollama_models)} Ollama model(s)."
        return result

    @rx.event
    async def save_credential(self, form: dict[str, Any]) -> Any:
        self.credential_ok = ""
        try:
            provider = required(form, "provider", "Provider")
            await self._gql(*queries.set_credential(provider, credential_fields(form)))
        except FormError as exc:
            self.credential_error = str(exc)
            return None
        except ApiError as exc:
            self.credential_error = exc.message
            return self._on_api_error(exc)
        self.credential_error = ""
        self.credential_ok = f"Credentials of {provider} saved (encrypted)."
        return [rx.set_value("cred-key", ""), SettingsState.reload]

    @rx.event
    async def reload(self) -> Any:
        return await self._fetch()

    async def _save_chain(self, primary: str, chain: list[str], *, confirm: bool) -> Any:
        try:
            await self._gql(*queries.set_chain(primary, chain, confirm=confirm))
        except ApiError as exc:
            if not confirm and queries.unknown_target(exc.message):
                # A name the catalog does not know: saved only once the admin confirms it.
                self.chain_pending = {"primary": primary, "chain": ",".join(chain)}
                self.chain_warning = exc.message
                return None
            self.chain_error = exc.message
            return self._on_api_error(exc)
        self.chain_error = self.chain_warning = ""
        self.chain_pending = {}
        return await self._fetch()

    @rx.event
    async def save_chain(self, form: dict[str, Any]) -> Any:
        try:
            primary = required(form, "primary", "Primary model")
            chain = model_list(optional(form, "chain"))
            if not chain:
                raise FormError("List at least one fallback model.")
        except FormError as exc:
            self.chain_error = str(exc)
            return None
        return await self._save_chain(primary, chain, confirm=False)

    @rx.event
    async def save_chain_anyway(self) -> Any:
        pending = dict(self.chain_pending)
        if not pending:
            return None
        return await self._save_chain(pending["primary"], pending["chain"].split(","), confirm=True)

    @rx.event
    def drop_chain_pending(self) -> None:
        self.chain_pending, self.chain_warning = {}, ""

    @rx.event
    def delete_chain(self, row: dict[str, str]) -> None:
        self._ask("delete", row)

    async def _confirmed_delete(self, row: dict[str, str]) -> Any:
        try:
            await self._gql(*queries.delete_chain(row["primary"]))
        except ApiError as exc:
            self.chain_error = exc.message
            return self._on_api_error(exc)
        self.chain_error = ""
        return await self._fetch()

    @rx.event
    async def save_features(self, form: dict[str, Any]) -> Any:
        known = {f["name"] for f in self.features}
        features = sorted(k for k, v in form.items() if k in known and checked(form, k))
        self.features_ok = ""
        try:
            await self._gql(*queries.set_offered_features(features))
        except ApiError as exc:
            self.features_error = exc.message
            return self._on_api_error(exc)
        self.features_error = ""
        self.features_ok = "Users can now opt in to: " + (", ".join(features) or "nothing") + "."
        return await self._fetch()
