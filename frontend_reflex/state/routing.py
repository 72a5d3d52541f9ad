"""Model Router (aliases), Agent Configurations and Available Models.

These three lists are paged in the browser (``BoundedEntityState``): the API answers each whole
(``modelAliases``, ``agentConfigs``, ``modelCatalog`` have no cursor), and they are bounded by
what admins configure and what the configured providers serve, not by traffic or head count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import Choices
from frontend_reflex.state.entity import BoundedEntityState
from frontend_reflex.validate import FormError, money, optional, required


def alias_row(a: Mapping[str, Any]) -> dict[str, str]:
    org = a.get("organization")
    return {
        "id": str(a.get("id") or ""),
        "requested": fmt.text(a.get("requestedModel")),
        "target": fmt.text(a.get("targetModel")),
        "scope": (
            f"organization: {fmt.name_of(org)}" if org else queries.stored(a.get("scope"), "global")
        ),
        # Global aliases are a super_admin's to change (permissions.json: globalRows).
        "global": "" if org else "yes",
    }


def agent_row(a: Mapping[str, Any]) -> dict[str, str]:
    return {
        "id": str(a.get("id") or ""),
        "name": fmt.text(a.get("name")),
        "agent_id": fmt.text(a.get("agentId")),
        "role": fmt.text(a.get("role")),
        "normal": fmt.text(a.get("normalModel")),
        "heavy": fmt.text(a.get("heavyModel")),
        "max": fmt.text(a.get("maxModel")),
        "role_raw": str(a.get("role") or ""),
        "heavy_raw": str(a.get("heavyModel") or ""),
        "max_raw": str(a.get("maxModel") or ""),
    }


def model_row(m: Mapping[str, Any], override: Mapping[str, Any] | None = None) -> dict[str, str]:
    window = m.get("contextWindow")
    o = override or {}
    return {
        "model": fmt.text(m.get("model")),
        "provider": fmt.text(m.get("provider")),
        "context": fmt.number(window) if window else "—",
        "input": fmt.rate(m.get("inputPerMtok")),
        "output": fmt.rate(m.get("outputPerMtok")),
        "cached": fmt.rate(m.get("cachedPerMtok")),
        "reachable": "yes" if m.get("reachable") else "no",
        "source": queries.stored(m.get("source"))
        + (" (price override)" if m.get("overridden") else ""),
        "overridden": "yes" if m.get("overridden") else "",
        # The override's own values, for the edit dialog (the catalog's merged price else).
        "in_raw": fmt.amount(o.get("inputPerMtok", m.get("inputPerMtok"))),
        "out_raw": fmt.amount(o.get("outputPerMtok", m.get("outputPerMtok"))),
        "cached_raw": fmt.amount(o.get("cachedPerMtok")),
        "window_raw": str(o.get("contextWindow") or window or ""),
    }


def price_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    """The price override form: input and output required, in USD per million tokens."""
    fields: dict[str, Any] = {
        "inputPerMtok": money(form, "input", "Input price"),
        "outputPerMtok": money(form, "output", "Output price"),
        "cachedPerMtok": money(form, "cached", "Cached input price"),
    }
    if fields["inputPerMtok"] is None or fields["outputPerMtok"] is None:
        raise FormError("Input and output prices are required (USD per million tokens).")
    window = optional(form, "window").replace(",", "")
    if window and not window.isdigit():
        raise FormError("Context window must be a whole number of tokens.")
    fields["contextWindow"] = int(window) if window else None
    return fields


def matches(row: Mapping[str, str], search: str, provider: str) -> bool:
    """The catalog filter: a case-insensitive substring of the model name, and the provider."""
    if provider and row.get("provider") != provider:
        return False
    return search.strip().lower() in row.get("model", "").lower()


class RouterState(Choices, BoundedEntityState, AuthState):
    """Aliases (whole, see the module docstring); the Scope select offers the first
    organizations by name with a Find box (``Choices``), not every organization."""

    #: An alias whose target the catalog does not know, waiting for "Save anyway".
    pending: dict[str, str] = {}
    unknown_warning: str = ""

    async def _fetch_rows(self) -> None:
        data = await self._gql(queries.ALIASES)
        self.rows = [alias_row(a) for a in fmt.nodes(data.get("modelAliases"))]
        await self._load_choices()

    async def _save_alias(self, alias: dict[str, str], *, confirm: bool) -> Any:
        op = queries.create_alias(
            alias["requested"], alias["target"], alias["org_id"], confirm=confirm
        )
        try:
            await self._gql(*op)
        except ApiError as exc:
            if not confirm and queries.unknown_target(exc.message):
                self.pending, self.unknown_warning = alias, exc.message
                return None
            self.create_error = exc.message
            return self._on_api_error(exc)
        self.pending, self.unknown_warning, self.create_error = {}, "", ""
        self.create_ok = f"{alias['requested']} → {alias['target']} saved."
        return await self._fetch()

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.create_ok = ""
        try:
            alias = {
                "requested": required(form, "requested", "Requested model"),
                "target": required(form, "target", "Routed-to model"),
                "org_id": optional(form, "org_id"),
            }
        except FormError as exc:
            self.create_error = str(exc)
            return None
        return await self._save_alias(alias, confirm=False)

    @rx.event
    async def save_anyway(self) -> Any:
        return await self._save_alias(dict(self.pending), confirm=True) if self.pending else None

    @rx.event
    def drop_pending(self) -> None:
        self.pending, self.unknown_warning = {}, ""

    async def _confirmed_delete(self, row: dict[str, str]) -> Any:
        return await self._act(row, queries.delete_alias(row["id"]), label=row.get("requested", ""))


class AgentsState(BoundedEntityState, AuthState):
    yaml_text: str = ""
    import_error: str = ""
    import_ok: str = ""

    async def _fetch_rows(self) -> None:
        data = await self._gql(queries.AGENTS)
        self.rows = [agent_row(a) for a in fmt.nodes(data.get("agentConfigs"))]

    def _update_op(self, row: dict[str, str], form: dict[str, Any]) -> queries.Op:
        fields = {
            "name": required(form, "name", "Name"),
            "role": optional(form, "role"),
            "normalModel": required(form, "normal", "Normal model"),
            "heavyModel": optional(form, "heavy") or None,
            "maxModel": optional(form, "max") or None,
        }
        return queries.update_agent(row.get("id", ""), fields)

    @rx.event
    def set_yaml(self, value: str) -> None:
        self.yaml_text = value

    @rx.event
    async def import_yaml(self) -> Any:
        self.import_ok = ""
        if not self.yaml_text.strip():
            self.import_error = "Paste the content of a model_config.yaml first."
            return None
        try:
            data = await self._gql(*queries.import_agents(self.yaml_text))
        except ApiError as exc:
            self.import_error = exc.message
            return self._on_api_error(exc)
        result = data.get("importAgentConfigs") or {}
        self.import_error = ""
        self.import_ok = (
            f"Imported: {result.get('created', 0)} created, {result.get('updated', 0)} updated."
        )
        self.yaml_text = ""
        return await self._fetch()


class ModelsState(BoundedEntityState, AuthState):
    """Available Models: the catalog with a search and a provider filter; super_admins set,
    change and remove price overrides here (``setPriceOverride``)."""

    catalog: list[dict[str, str]] = []
    search: str = ""
    provider: str = ""
    providers: list[str] = []

    async def _fetch_rows(self) -> None:
        data = await self._gql(queries.MODELS)
        overrides: dict[str, Any] = {}
        if self.is_super:
            prices = await self._gql(queries.PRICE_OVERRIDES)
            overrides = {str(p.get("model")): p for p in fmt.nodes(prices.get("priceOverrides"))}
        self.catalog = [
            model_row(m, overrides.get(str(m.get("model"))))
            for m in fmt.nodes(data.get("modelCatalog"))
        ]
        self.providers = sorted({r["provider"] for r in self.catalog})
        self._filter()

    def _filter(self) -> None:
        self.rows = [r for r in self.catalog if matches(r, self.search, self.provider)]
        self.page = 0

    @rx.event
    def set_search(self, value: str) -> None:
        self.search = value
        self._filter()

    @rx.event
    def set_provider(self, value: str) -> None:
        self.provider = value
        self._filter()

    def _update_op(self, row: dict[str, str], form: dict[str, Any]) -> queries.Op:
        return queries.set_price(row["model"], price_fields(form))

    async def _confirmed_delete(self, row: dict[str, str]) -> Any:
        return await self._act(row, queries.delete_price(row["model"]), label=row["model"])
