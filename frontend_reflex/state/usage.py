"""Per-User Usage, User Activity Export and Error Reports: read-only views of what happened."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import reflex as rx

from frontend_reflex import api, fmt, queries
from frontend_reflex.api import ApiError
from frontend_reflex.state.base import AuthState
from frontend_reflex.state.choices import Choices
from frontend_reflex.state.log_rows import request_href
from frontend_reflex.state.pager import ListQuery, Page, ServerList
from frontend_reflex.state.ranges import RangeState


def usage_row(u: Mapping[str, Any]) -> dict[str, str]:
    user = u.get("user") or {}
    return {
        "id": str(u.get("userId") or user.get("id") or ""),
        "user": fmt.text(user.get("name") or f"user {u.get('userId')}"),
        "email": fmt.text(user.get("email")),
        "requests": fmt.number(u.get("requests")),
        "input": fmt.number(u.get("inputTokens")),
        "output": fmt.number(u.get("outputTokens")),
        "cost": fmt.spend(u.get("costUsd"), u.get("unknownCostRequests")),
    }


def error_row(e: Mapping[str, Any]) -> dict[str, str]:
    user = e.get("user")
    return {
        "time": fmt.when(e.get("createdAt")),
        "source": queries.stored(e.get("source"), "—"),
        "type": fmt.text(e.get("type")),
        "model": fmt.text(e.get("model")),
        "error": fmt.text(e.get("error"))[:300],
        "user": fmt.name_of(user, "email") if user else "—",
        "agent": fmt.text(e.get("agent")),
        "version": fmt.text(e.get("version")),
        # The request the report is about, opened in Request detail ("" when none was named).
        "href": request_href(e["requestId"]) if e.get("requestId") else "",
    }


def csv_name(email: str, user_id: str) -> str:
    return f"activity-{(email or user_id).replace('@', '_at_')}.csv"


class ExportMixin(rx.State, mixin=True):
    export_error: str = ""
    export_ok: str = ""

    async def _export(self, user_id: str, email: str) -> Any:
        if not user_id:
            self.export_error = "Pick a user first."
            return None
        try:
            data = await api.download(
                queries.activity_csv_path(user_id),
                token=self.token,  # type: ignore[attr-defined]
            )
        except ApiError as exc:
            self.export_error = exc.message
            return self._on_api_error(exc)  # type: ignore[attr-defined]
        self.export_error = ""
        lines = max(0, data.count(b"\n") - 1)
        self.export_ok = f"Exported {lines} row(s) for {email or user_id}."
        return rx.download(data=data, filename=csv_name(email, user_id), mime_type="text/csv")


def usage_line(g: Mapping[str, Any]) -> dict[str, str]:
    """A user's or an app's line of the usage tables (an ``analytics`` group)."""
    t = g.get("totals") or {}
    label = str(g.get("label") or "")
    name, _, email = label.partition(" <")
    return {
        "id": str(g.get("entityId") or ""),
        "user": name or label,
        "email": email.rstrip(">"),
        "requests": fmt.number(t.get("requests")),
        "errors": fmt.number(t.get("errors")),
        "input": fmt.number(t.get("inputTokens")),
        "output": fmt.number(t.get("outputTokens")),
        "cost": fmt.spend(t.get("costUsd"), t.get("unknownCostRequests")),
    }


class UsageGroups(ServerList, mixin=True):
    """A usage table: one page of ``analytics`` groups of ``DIMENSION`` at a time, highest cost
    first, with the window's true number of groups. ``analytics`` pages by limit/offset, so the
    "cursor" of a page is its offset. Group 0 ("app keys: no user" / "user keys: no app") is a
    line of its own, so the lines add up to the window's total."""

    DIMENSION: ClassVar[str] = "user"

    async def _span(self) -> tuple[dt.datetime, dt.datetime] | None:
        raise NotImplementedError

    async def _page(self, first: int, after: str) -> Page:
        span = await self._span()
        if span is None:
            return Page([], "", 0)
        offset = int(after or 0)
        data = await self._gql(  # type: ignore[attr-defined]
            *queries.usage_groups(self.DIMENSION, *span, limit=first, offset=offset)
        )
        result = data.get("analytics") or {}
        total = int(fmt.to_float(result.get("groupCount")))
        following = str(offset + first) if offset + first < total else ""
        return Page(list(result.get("groups") or []), following, total)

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return usage_line(node)


class UsageState(ExportMixin, RangeState, UsageGroups, AuthState):
    """Users over the chosen window (default: last 30 days, said so); the apps' table is
    ``UsageAppsState``, over the same window."""

    preset: str = "30d"

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._refresh()

    async def _span(self) -> tuple[dt.datetime, dt.datetime] | None:
        return self._window()

    async def _refresh(self) -> Any:
        if self._window() is None:
            self.loading = False
            return None
        failed = await self._first_page()
        return failed if failed is not None else UsageAppsState.start

    @rx.event
    async def export(self, row: dict[str, str]) -> Any:
        return await self._export(row.get("id", ""), row.get("email", ""))


class UsageAppsState(UsageGroups, AuthState):
    """The apps' table of the Usage page: its window is ``UsageState``'s."""

    DIMENSION: ClassVar[str] = "app"

    async def _span(self) -> tuple[dt.datetime, dt.datetime] | None:
        usage = await self.get_state(UsageState)
        return usage._window()

    @rx.event
    async def start(self) -> Any:
        self.loading = True
        yield
        yield await self._first_page()


class ExportState(Choices, ExportMixin, AuthState):
    """Pick a user (a bounded select with Find: ``choices``), download their CSV."""

    CHOICE_KIND: ClassVar[str] = "user"

    chosen: str = ""
    loading: bool = False
    error: str = ""

    def _kept_choice(self) -> str:
        return self.chosen

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        await self._load_choices()
        self.loading = False

    @rx.event
    def choose(self, value: str) -> None:
        self.chosen = value
        self.export_ok = ""

    @rx.event
    async def export(self) -> Any:
        label = next((o["label"] for o in self.choice_options if o["value"] == self.chosen), "")
        email = label.partition("<")[2].rstrip(">")
        return await self._export(self.chosen, email)


class ErrorsState(ServerList, AuthState):
    """Error reports, newest first, a server page at a time with the true total."""

    def _query(self) -> ListQuery:
        return ListQuery(queries.ERRORS, {}, "errorReports")

    def _row(self, node: dict[str, Any]) -> dict[str, str]:
        return error_row(node)

    @rx.event
    async def load(self) -> Any:
        redirect = await self._guard(admin=True)
        if redirect is not None:
            yield redirect
            return
        self.loading = True
        yield
        yield await self._first_page()
