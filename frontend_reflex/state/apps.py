"""Apps: create, edit, activate/deactivate, DLP on/off, issue an app key (shown once)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import Choices
from frontend_reflex.state.entity import EntityState
from frontend_reflex.state.filters import FilterField
from frontend_reflex.state.pager import ListQuery
from frontend_reflex.validate import checked, optional, required, slug


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


class AppsState(Choices, EntityState, AuthState):
    """One page of apps at a time (newest first), searchable by name or slug."""

    FIELDS: ClassVar[tuple[FilterField, ...]] = (FilterField("q", gql="search"),)
    ROUTE: ClassVar[str] = "/apps"

    secret: str = ""

    def _query(self) -> ListQuery:
        return ListQuery(queries.APPS, {"q": self.filters.get("q") or None}, "apps")

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return app_row(node)

    async def _fetch_options(self) -> None:
        await self._load_choices()

    def _on_edit(self, row: dict[str, str]) -> None:
        self._keep_option(row.get("organization_id", ""), row.get("organization", ""))

    def _create_op(self, form: dict[str, Any]) -> tuple[queries.Op, str]:
        fields = app_fields(form, creating=True)
        return queries.create_app(fields), f"App {fields['name']} created."

    def _update_op(self, row: dict[str, str], form: dict[str, Any]) -> queries.Op:
        return queries.update_app(row.get("id", ""), app_fields(form, creating=False))

    @rx.event
    async def toggle_active(self, row: dict[str, str]) -> Any:
        """Activating is immediate; deactivating asks first."""
        if row.get("active") == "active":
            self._ask("deactivate", row)
            return None
        return await self._act(row, queries.update_app(row["id"], {"active": True}))

    async def _confirmed_deactivate(self, row: dict[str, str]) -> Any:
        return await self._act(row, queries.update_app(row["id"], {"active": False}))

    @rx.event
    async def toggle_dlp(self, row: dict[str, str]) -> Any:
        op = queries.update_app(row["id"], {"dlpEnabled": row.get("dlp") != "on"})
        return await self._act(row, op)

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
