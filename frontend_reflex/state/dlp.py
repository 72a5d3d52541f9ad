"""DLP: protection per organization (user keys) or per app (app keys), and recent activity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

from frontend_reflex import fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.log_rows import request_href
from frontend_reflex.state.pager import ListQuery, ServerList


def protection_row(p: Mapping[str, Any]) -> dict[str, str]:
    scope = queries.stored(p.get("scope"))
    enabled = bool(p.get("enabled"))
    return {
        "scope": scope,
        "id": str(p.get("targetId") or ""),
        "name": f"{'Organization' if scope == 'org' else 'App'}: {p.get('name')}",
        "status": "protected" if enabled else "off",
        "rules": fmt.number(p.get("rulesEnabled")) if enabled else "—",
        "last": fmt.when(p.get("lastActivityAt")) if p.get("lastActivityAt") else "never",
    }


def activity_row(a: Mapping[str, Any]) -> dict[str, str]:
    return {
        "when": fmt.when(a.get("createdAt")),
        "kind": queries.stored(a.get("kind"), "—"),
        "scope": fmt.text(a.get("scope")),
        "rule": fmt.text(a.get("rule")),
        "matches": fmt.number(a.get("matches")),
        "size": fmt.number(a.get("size")),
        "request": fmt.text(a.get("requestId")),
        "href": request_href(a.get("requestId")),
        "detail": fmt.text(a.get("detail")),
    }


class DlpActivityState(ServerList, AuthState):
    """Recent activity, newest first, a server page at a time with its true total (it grows
    with every protected request: never a silent cut at the first 50)."""

    def _query(self) -> ListQuery:
        return ListQuery(queries.DLP_ACTIVITY, {}, "dlpActivity")

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return activity_row(node)

    @rx.event
    async def start(self) -> Any:
        self.loading = True
        yield
        yield await self._first_page()


class DlpState(ServerList, AuthState):
    """Protections: one row per organization and app (organizations first, each by name), a
    server page at a time with the API's true total (``dlpProtectionsPaged``): the table grows
    with every organization and app."""

    table_error: str = ""

    def _query(self) -> ListQuery:
        return ListQuery(queries.DLP, {}, "dlpProtectionsPaged")

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return protection_row(node)

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        failed = await self._first_page()
        yield failed if failed is not None else DlpActivityState.start

    @rx.event
    async def toggle(self, row: dict[str, str]) -> Any:
        try:
            await self._gql(*queries.set_dlp(row["scope"], row["id"], row["status"] != "protected"))
        except ApiError as exc:
            self.table_error = f"{row.get('name')}: {exc.message}"
            return self._on_api_error(exc)
        self.table_error = ""
        # The same page again (the row stays where it was: the order is by name).
        return await self._read_page()
