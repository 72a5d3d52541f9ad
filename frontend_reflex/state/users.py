"""Users: create, edit, suspend/activate, issue a key, view usage, export activity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import reflex as rx

from frontend_reflex import api, fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import Choices
from frontend_reflex.state.entity import EntityState
from frontend_reflex.state.filters import FilterField
from frontend_reflex.state.pager import ListQuery
from frontend_reflex.validate import FormError, money, optional, required


def user_row(u: Mapping[str, Any]) -> dict[str, str]:
    org = u.get("organization") or {}
    return {
        "id": str(u.get("id") or ""),
        "name": fmt.text(u.get("name")),
        "email": fmt.text(u.get("email")),
        "status": queries.stored(u.get("status"), "active"),
        "role": queries.stored(u.get("role"), "member"),
        "weekly_cap": fmt.cap(u.get("weeklyCapUsd")),
        "weekly_cap_raw": fmt.amount(u.get("weeklyCapUsd")),
        "organization": fmt.name_of(org),
        "organization_id": str(org.get("id") or "") if isinstance(org, Mapping) else "",
    }


def user_fields(form: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": required(form, "name", "Name"),
        "role": optional(form, "role") or "member",
        "weeklyCapUsd": money(form, "weekly_cap", "Weekly cap"),
        "organizationId": optional(form, "organization_id") or None,
    }
    if creating:
        fields["email"] = required(form, "email", "Email")
        if "@" not in fields["email"]:
            raise FormError("Email must look like name@example.com.")
    password = optional(form, "password")
    if password:
        if len(password) < 8:
            raise FormError("Password must be at least 8 characters.")
        fields["password"] = password
    return fields


def usage_summary(data: Mapping[str, Any], cap: str) -> dict[str, str]:
    """One user's last 30 days and this ISO week, from the two ``userUsage`` aliases."""
    month = (fmt.nodes(data.get("month")) or [{}])[0]
    week = (fmt.nodes(data.get("week")) or [{}])[0]
    return {
        "requests": fmt.number(month.get("requests")),
        "errors": fmt.number(month.get("errors")),
        "input": fmt.number(month.get("inputTokens")),
        "output": fmt.number(month.get("outputTokens")),
        "cost": fmt.spend(month.get("costUsd"), month.get("unknownCostRequests")),
        "week": fmt.spend(week.get("costUsd"), week.get("unknownCostRequests")),
        "week_requests": fmt.number(week.get("requests")),
        "cap": cap,
    }


class UsersState(Choices, EntityState, AuthState):
    """One page of users at a time (newest first), searchable by name or email."""

    FIELDS: ClassVar[tuple[FilterField, ...]] = (FilterField("q", gql="search"),)
    ROUTE: ClassVar[str] = "/users"

    secret: str = ""
    usage_open: bool = False
    usage_title: str = ""
    usage_summary: dict[str, str] = {}
    usage_error: str = ""

    def _query(self) -> ListQuery:
        return ListQuery(queries.USERS, {"f": self._graphql_filter() or None}, "users")

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return user_row(node)

    async def _fetch_options(self) -> None:
        await self._load_choices()

    def _on_edit(self, row: dict[str, str]) -> None:
        self._keep_option(row.get("organization_id", ""), row.get("organization", ""))

    def _create_op(self, form: dict[str, Any]) -> tuple[queries.Op, str]:
        fields = user_fields(form, creating=True)
        return queries.create_user(fields), f"User {fields['name']} created."

    def _update_op(self, row: dict[str, str], form: dict[str, Any]) -> queries.Op:
        return queries.update_user(row.get("id", ""), user_fields(form, creating=False))

    @rx.event
    async def toggle_status(self, row: dict[str, str]) -> Any:
        """Activating is immediate; suspending asks first (``ask("suspend", row)``)."""
        if row.get("status") != "suspended":
            self._ask("suspend", row)
            return None
        return await self._act(row, queries.set_user_status(row["id"], "active"))

    async def _confirmed_suspend(self, row: dict[str, str]) -> Any:
        return await self._act(row, queries.set_user_status(row["id"], "suspended"))

    @rx.event
    async def issue_key(self, row: dict[str, str]) -> Any:
        try:
            doc, variables = queries.create_api_key(
                name=f"{row.get('name')} (dashboard)", user_id=row["id"]
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

    @rx.event
    async def view_usage(self, row: dict[str, str]) -> Any:
        self.usage_open = True
        self.usage_title = f"Usage of {row.get('name')}"
        self.usage_summary = {}
        self.usage_error = ""
        yield
        try:
            data = await self._gql(*queries.user_usage(row["id"]))
        except ApiError as exc:
            self.usage_error = exc.message
            yield self._on_api_error(exc)
            return
        self.usage_summary = usage_summary(data, row.get("weekly_cap", "no cap"))

    @rx.event
    def close_usage(self, _open: bool = False) -> None:
        self.usage_open = False

    @rx.event
    async def export(self, row: dict[str, str]) -> Any:
        try:
            data = await api.download(queries.activity_csv_path(row["id"]), token=self.token)
        except ApiError as exc:
            self.table_error = f"{row.get('name')}: {exc.message}"
            return self._on_api_error(exc)
        self.table_error = ""
        name = row.get("email", row["id"]).replace("@", "_at_")
        return rx.download(data=data, filename=f"activity-{name}.csv", mime_type="text/csv")
