"""Model Router (aliases), Agent Configurations and Available Models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.paging import Paged
from frontend_reflex.validate import FormError, optional, required


def alias_row(a: Mapping[str, Any]) -> dict[str, str]:
    org = a.get("organization")
    return {
        "id": str(a.get("id") or ""),
        "requested": fmt.text(a.get("requestedModel")),
        "target": fmt.text(a.get("targetModel")),
        "scope": (
            f"organization: {fmt.name_of(org)}" if org else queries.stored(a.get("scope"), "global")
        ),
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


def model_row(m: Mapping[str, Any]) -> dict[str, str]:
    def price(key: str) -> str:
        return fmt.money(m.get(key)) if m.get(key) is not None else "unknown"

    window = m.get("contextWindow")
    return {
        "model": fmt.text(m.get("model")),
        "provider": fmt.text(m.get("provider")),
        "context": fmt.number(window) if window else "—",
        "input": price("inputPerMtok"),
        "output": price("outputPerMtok"),
        "cached": price("cachedPerMtok"),
        "reachable": "yes" if m.get("reachable") else "no",
        "source": queries.stored(m.get("source"))
        + (" (price override)" if m.get("overridden") else ""),
    }


class RouterState(Paged, AuthState):
    org_options: list[dict[str, str]] = []
    form_error: str = ""
    form_ok: str = ""
    table_error: str = ""

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._fetch()

    async def _fetch(self) -> Any:
        try:
            data = await self._gql(queries.ALIASES)
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)
        self.rows = [alias_row(a) for a in fmt.nodes(data.get("modelAliases"))]
        self.org_options = [
            {"value": str(o.get("id")), "label": fmt.text(o.get("name"))}
            for o in fmt.nodes(data.get("organizations"))
        ]
        self.error = ""
        self.loading = False
        return None

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.form_ok = ""
        try:
            requested = required(form, "requested", "Requested model")
            target = required(form, "target", "Routed-to model")
            await self._gql(*queries.create_alias(requested, target, optional(form, "org_id")))
        except FormError as exc:
            self.form_error = str(exc)
            return None
        except ApiError as exc:
            self.form_error = exc.message
            return self._on_api_error(exc)
        self.form_error = ""
        self.form_ok = f"{requested} → {target} saved."
        return await self._fetch()

    @rx.event
    async def delete(self, row: dict[str, str]) -> Any:
        try:
            await self._gql(*queries.delete_alias(row["id"]))
        except ApiError as exc:
            self.table_error = f"{row.get('requested')}: {exc.message}"
            return self._on_api_error(exc)
        self.table_error = ""
        return await self._fetch()


class AgentsState(Paged, AuthState):
    yaml_text: str = ""
    import_error: str = ""
    import_ok: str = ""
    editing: dict[str, str] = {}
    edit_error: str = ""

    @rx.var
    def edit_open(self) -> bool:
        return bool(self.editing)

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._fetch()

    async def _fetch(self) -> Any:
        try:
            data = await self._gql(queries.AGENTS)
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)
        self.rows = [agent_row(a) for a in fmt.nodes(data.get("agentConfigs"))]
        self.error = ""
        self.loading = False
        return None

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

    @rx.event
    def open_edit(self, row: dict[str, str]) -> None:
        self.editing = dict(row)
        self.edit_error = ""

    @rx.event
    def close_edit(self, _open: bool = False) -> None:
        self.editing = {}

    @rx.event
    async def save_edit(self, form: dict[str, Any]) -> Any:
        try:
            fields = {
                "name": required(form, "name", "Name"),
                "role": optional(form, "role"),
                "normalModel": required(form, "normal", "Normal model"),
                "heavyModel": optional(form, "heavy") or None,
                "maxModel": optional(form, "max") or None,
            }
            await self._gql(*queries.update_agent(self.editing.get("id", ""), fields))
        except FormError as exc:
            self.edit_error = str(exc)
            return None
        except ApiError as exc:
            self.edit_error = exc.message
            return self._on_api_error(exc)
        self.editing = {}
        return await self._fetch()


class ModelsState(Paged, AuthState):
    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        try:
            data = await self._gql(queries.MODELS)
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            yield self._on_api_error(exc)
            return
        self.rows = [model_row(m) for m in fmt.nodes(data.get("modelCatalog"))]
        self.error = ""
        self.loading = False
