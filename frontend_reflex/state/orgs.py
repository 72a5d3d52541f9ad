"""Organizations: create, edit (cap, period, rollover, owner), DLP on/off."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import Choices
from frontend_reflex.state.entity import EntityState
from frontend_reflex.state.filters import FilterField
from frontend_reflex.state.pager import ListQuery
from frontend_reflex.validate import checked, money, optional, required, slug

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
        "cap": "no cap" if cap is None else f"{fmt.budget(cap)} / {_PER.get(period, period)}",
        "cap_raw": fmt.amount(cap),
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


class OrgsState(Choices, EntityState, AuthState):
    """One page of organizations at a time (newest first), searchable by name or slug."""

    FIELDS: ClassVar[tuple[FilterField, ...]] = (FilterField("q", gql="search"),)
    ROUTE: ClassVar[str] = "/organizations"

    CHOICE_KIND: ClassVar[str] = "user"

    def _query(self) -> ListQuery:
        return ListQuery(
            queries.ORGANIZATIONS, {"q": self.filters.get("q") or None}, "organizations"
        )

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return org_row(node)

    async def _fetch_options(self) -> None:
        await self._load_choices()

    def _on_edit(self, row: dict[str, str]) -> None:
        self._keep_option(row.get("owner_id", ""), row.get("owner", ""))

    def _create_op(self, form: dict[str, Any]) -> tuple[queries.Op, str]:
        fields = org_fields(form, creating=True)
        return queries.create_organization(fields), f"Organization {fields['name']} created."

    def _update_op(self, row: dict[str, str], form: dict[str, Any]) -> queries.Op:
        return queries.update_organization(row.get("id", ""), org_fields(form, creating=False))

    @rx.event
    async def toggle_dlp(self, row: dict[str, str]) -> Any:
        return await self._act(row, queries.set_dlp("org", row["id"], row.get("dlp") != "on"))
