"""Apps: create, edit, activate/deactivate, DLP on/off, issue an app key (shown once)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.paging import Paged
from frontend_reflex.validate import FormError, checked, optional, required, slug


def app_row(a: Mapping[str, Any]) -> dict[str, str]:
    org = a.get("organization") or {}
    return {
        "id": str(a.get("id") or ""),
        "name": fmt.text(a.get("name")),
        "slug": fmt.text(a.get("slug")),
        "contact": fmt.text(a.get("contact")),
        "contact_raw": str(a.get("contact") or ""),
        "active": fmt.yes_no(a.get("active"), "active", "inactive"),
        "dlp": fmt.yes_no(a.get("dlpEnabled")),
        "created": fmt.day(a.get("createdAt")),
        "organization": fmt.name_of(org),
        "organization_id": str(org.get("id") or "") if isinstance(org, Mapping) else "",
    }


def app_fields(form: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    name = required(form, "name", "Name")
    fields: dict[str, Any] = {
        "name": name,
        "contact": optional(form, "contact"),
        "dlpEnabled": checked(form, "dlp"),
        "organizationId": optional(form, "organization_id") or None,
    }
    if creating:
        fields["slug"] = slug(form, "slug", fallback=name)
    else:
        fields["active"] = checked(form, "active")
    return fields


class AppsState(Paged, AuthState):
    org_options: list[dict[str, str]] = []
    create_error: str = ""
    create_ok: str = ""
    table_error: str = ""
    editing: dict[str, str] = {}
    edit_error: str = ""
    secret: str = ""

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
            apps = await self._gql_all(queries.APPS, "apps")
            orgs = await self._gql_all(queries.ORGANIZATIONS, "organizations")
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)
        self.rows = [app_row(a) for a in apps]
        self.org_options = [
            {"value": str(o.get("id")), "label": fmt.text(o.get("name"))} for o in orgs
        ]
        self.error = ""
        self.loading = False
        return None

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.create_ok = ""
        try:
            fields = app_fields(form, creating=True)
            await self._gql(*queries.create_app(fields))
        except FormError as exc:
            self.create_error = str(exc)
            return None
        except ApiError as exc:
            self.create_error = exc.message
            return self._on_api_error(exc)
        self.create_error = ""
        self.create_ok = f"App {fields['name']} created."
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
            fields = app_fields(form, creating=False)
            await self._gql(*queries.update_app(self.editing.get("id", ""), fields))
        except FormError as exc:
            self.edit_error = str(exc)
            return None
        except ApiError as exc:
            self.edit_error = exc.message
            return self._on_api_error(exc)
        self.editing = {}
        return await self._fetch()

    async def _update(self, row: dict[str, str], fields: dict[str, Any]) -> Any:
        try:
            await self._gql(*queries.update_app(row["id"], fields))
        except ApiError as exc:
            self.table_error = f"{row.get('name')}: {exc.message}"
            return self._on_api_error(exc)
        self.table_error = ""
        return await self._fetch()

    @rx.event
    async def toggle_active(self, row: dict[str, str]) -> Any:
        return await self._update(row, {"active": row.get("active") != "active"})

    @rx.event
    async def toggle_dlp(self, row: dict[str, str]) -> Any:
        return await self._update(row, {"dlpEnabled": row.get("dlp") != "on"})

    @rx.event
    async def issue_key(self, row: dict[str, str]) -> Any:
        try:
            doc, variables = queries.create_api_key(
                name=f"{row.get('name')} (dashboard)", app_id=row["id"]
            )
            self.secret = queries.created_secret(await self._gql(doc, variables))
        except ApiError as exc:
            self.table_error = f"{row.get('name')}: {exc.message}"
            return self._on_api_error(exc)
        self.table_error = ""
        return None

    @rx.event
    def hide_secret(self) -> None:
        self.secret = ""
