"""Organizations: create, edit (cap, period, rollover, owner), DLP on/off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.paging import Paged
from frontend_reflex.validate import FormError, checked, money, optional, required, slug

#: How a cap period reads after "per" ("$5.00 / week").
_PER = {"daily": "day", "weekly": "week", "monthly": "month"}


def org_row(o: Mapping[str, Any]) -> dict[str, str]:
    owner = o.get("owner") or {}
    cap = o.get("spendCapUsd")
    period = queries.stored(o.get("capPeriod"), "monthly")
    return {
        "id": str(o.get("id") or ""),
        "name": fmt.text(o.get("name")),
        "slug": fmt.text(o.get("slug")),
        "owner": fmt.name_of(owner),
        "owner_id": str(owner.get("id") or "") if isinstance(owner, Mapping) else "",
        "members": fmt.number(o.get("memberCount")),
        "cap": "no cap" if cap is None else f"{fmt.money(cap)} / {_PER.get(period, period)}",
        "cap_raw": "" if cap is None else str(cap),
        "period": period,
        "rollover": fmt.yes_no(o.get("rollover")),
        "dlp": fmt.yes_no(o.get("dlpEnabled")),
        "sso_only": fmt.yes_no(o.get("ssoOnly")),
        "created": fmt.day(o.get("createdAt")),
    }


def org_fields(form: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    name = required(form, "name", "Name")
    fields: dict[str, Any] = {
        "name": name,
        "spendCapUsd": money(form, "spend_cap", "API spend cap"),
        "capPeriod": optional(form, "cap_period") or "monthly",
        "rollover": checked(form, "rollover"),
        "dlpEnabled": checked(form, "dlp"),
        "ssoOnly": checked(form, "sso_only"),
        "ownerId": optional(form, "owner_id") or None,
    }
    if creating:
        fields["slug"] = slug(form, "slug", fallback=name)
    return fields


class OrgsState(Paged, AuthState):
    user_options: list[dict[str, str]] = []
    create_error: str = ""
    create_ok: str = ""
    table_error: str = ""
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
            orgs = await self._gql_all(queries.ORGANIZATIONS, "organizations")
            users = await self._gql_all(queries.USERS, "users")
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            return self._on_api_error(exc)
        self.rows = [org_row(o) for o in orgs]
        self.user_options = [
            {"value": str(u.get("id")), "label": f"{u.get('name')} <{u.get('email')}>"}
            for u in users
        ]
        self.error = ""
        self.loading = False
        return None

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        self.create_ok = ""
        try:
            fields = org_fields(form, creating=True)
            await self._gql(*queries.create_organization(fields))
        except FormError as exc:
            self.create_error = str(exc)
            return None
        except ApiError as exc:
            self.create_error = exc.message
            return self._on_api_error(exc)
        self.create_error = ""
        self.create_ok = f"Organization {fields['name']} created."
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
            fields = org_fields(form, creating=False)
            await self._gql(*queries.update_organization(self.editing.get("id", ""), fields))
        except FormError as exc:
            self.edit_error = str(exc)
            return None
        except ApiError as exc:
            self.edit_error = exc.message
            return self._on_api_error(exc)
        self.editing = {}
        return await self._fetch()

    @rx.event
    async def toggle_dlp(self, row: dict[str, str]) -> Any:
        try:
            await self._gql(*queries.set_dlp("org", row["id"], row.get("dlp") != "on"))
        except ApiError as exc:
            self.table_error = f"{row.get('name')}: {exc.message}"
            return self._on_api_error(exc)
        self.table_error = ""
        return await self._fetch()
