"""Audit Log (super_admin): who changed what and when, filtered by action, target, who (kept in
the address) and a date range, a server page at a time (the log only grows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.filters import FilterField
from frontend_reflex.state.pager import ListQuery, ServerList
from frontend_reflex.state.ranges import RangeState


def audit_row(a: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str]:
    actor = str(a.get("actorId") or "")
    detail = a.get("detail")
    return {
        "when": fmt.when(a.get("createdAt")),
        "who": names.get(actor, f"user #{actor}") if actor else "system (CLI)",
        "action": fmt.text(a.get("action")),
        "target": fmt.text(a.get("target")),
        # Field names only: the gateway never records values of secrets here.
        "detail": orjson.dumps(detail).decode() if detail else "",
    }


#: The audit log's filters, kept in the address (``/audit?action=alias.&actor=3``); the date
#: range is the page's range picker (``RangeState``).
AUDIT_FIELDS: tuple[FilterField, ...] = (
    FilterField("action"),
    FilterField("target"),
    FilterField("actor", "int", gql="actorId"),
)


class AuditState(ServerList, RangeState, AuthState):
    """The audit log: the shared server pager with three filter fields and a date range."""

    FIELDS: ClassVar[tuple[FilterField, ...]] = AUDIT_FIELDS
    ROUTE: ClassVar[str] = "/audit"

    actor_options: list[dict[str, str]] = []
    names: dict[str, str] = {}

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(super_only=True)
        if redirect is not None:
            yield redirect
            return
        self.preset = self.preset or "7d"
        self._read_url()
        self.loading = True
        yield
        try:
            users = await self._gql_all(queries.USER_OPTIONS, "users")
        except ApiError as exc:
            self.error = exc.message
            self.loading = False
            yield self._on_api_error(exc)
            return
        self.names = {str(u.get("id")): f"{u.get('name')} <{u.get('email')}>" for u in users}
        self.actor_options = [{"value": k, "label": v} for k, v in self.names.items()]
        yield await self._refresh()

    def _query(self) -> ListQuery:
        span = self._window()
        since, until = span if span is not None else (None, None)
        f = self._graphql_filter()
        return ListQuery(
            queries.AUDIT,
            {
                "a": f.get("action"),
                "t": f.get("target"),
                "who": f.get("actorId"),
                "s": since.isoformat() if since else None,
                "u": until.isoformat() if until else None,
            },
            "auditLog",
        )

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return audit_row(node, self.names)

    async def _refresh(self) -> Any:
        return await self._first_page()
