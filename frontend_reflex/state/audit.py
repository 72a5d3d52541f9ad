"""Audit Log (super_admin): who changed what and when, filtered by action, target, who (kept in
the address) and a date range, a server page at a time (the log only grows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import Choices, option_of
from frontend_reflex.state.filters import FilterField
from frontend_reflex.state.pager import ListQuery, ServerList
from frontend_reflex.state.ranges import RangeState


def who_of(a: Mapping[str, Any]) -> str:
    """The actor as the API names it; "user #id" only for a user since deleted."""
    actor, who = a.get("actorId"), a.get("actor")
    if isinstance(who, Mapping) and who:
        return option_of(who)["label"]
    return f"user #{actor}" if actor else "system (CLI)"


def audit_row(a: Mapping[str, Any]) -> dict[str, str]:
    detail = a.get("detail")
    return {
        "when": fmt.when(a.get("createdAt")),
        "who": who_of(a),
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


class AuditState(Choices, ServerList, RangeState, AuthState):
    """The audit log: the shared server pager with three filter fields and a date range; the
    Who select is bounded and searchable (``choices``), each row names its actor itself."""

    FIELDS: ClassVar[tuple[FilterField, ...]] = AUDIT_FIELDS
    ROUTE: ClassVar[str] = "/audit"
    CHOICE_KIND: ClassVar[str] = "user"

    def _kept_choice(self) -> str:
        return self.filters.get("actor", "")

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
        await self._load_choices()
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
        return audit_row(node)

    async def _refresh(self) -> Any:
        return await self._first_page()
