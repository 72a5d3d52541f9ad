"""Error reports (query + live subscription), client reports, and the audit trail.

Reports are scoped by the organization each was made under (``organizationId``), with the same
rule as gateway logs (``backend.admin.reports``; live events: ``backend.graphql.logs.can_see``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from backend.admin import reports as svc
from backend.data.models.logs import AuditLog, ErrorReport
from backend.graphql.common import Connection, connection
from backend.graphql.context import Info, viewer
from backend.graphql.logs import can_see
from backend.graphql.permissions import IsAuthenticated, IsSuperAdmin
from backend.graphql.tenancy import UserType, visible_user


@strawberry.type(name="ErrorReport")
class ErrorReportType:
    id: int | None = strawberry.field(description="null on live events not yet stored.")
    created_at: dt.datetime
    source: str = strawberry.field(description="gateway | client")
    type: str
    model: str | None
    error: str
    user_id: int | None
    organization_id: int | None = strawberry.field(
        description="The organization the report was made under (not the user's current one)."
    )
    agent: str | None
    version: str | None
    request_id: str | None

    @strawberry.field(
        description="Who reported; null below super_admin once they have left your organization."
    )
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)

    @staticmethod
    def of(e: ErrorReport) -> ErrorReportType:
        return ErrorReportType(
            id=e.id,
            created_at=e.created_at,
            source=e.source,
            type=e.type,
            model=e.model,
            error=e.error,
            user_id=e.user_id,
            organization_id=e.org_id,
            agent=e.agent,
            version=e.version,
            request_id=e.request_id,
        )

    @staticmethod
    def from_event(ev: dict[str, Any]) -> ErrorReportType:
        return ErrorReportType(
            id=ev.get("id"),
            created_at=dt.datetime.fromisoformat(ev["created_at"]),
            source=str(ev.get("source", "")),
            type=str(ev.get("type", "")),
            model=ev.get("model"),
            error=str(ev.get("error", "")),
            user_id=ev.get("user_id"),
            organization_id=ev.get("org_id"),
            agent=ev.get("agent"),
            version=ev.get("version"),
            request_id=ev.get("request_id"),
        )


@strawberry.type(name="AuditEntry")
class AuditEntryType:
    id: int
    created_at: dt.datetime
    actor_id: int | None = strawberry.field(description="null: the CLI / system.")
    action: str
    target: str
    detail: JSON = strawberry.field(description="Field names changed; never secret values.")

    @staticmethod
    def of(a: AuditLog) -> AuditEntryType:
        return AuditEntryType(
            id=a.id,
            created_at=a.created_at,
            actor_id=a.actor_id,
            action=a.action,
            target=a.target,
            detail=a.detail,
        )


@strawberry.input
class ErrorReportFilter:
    source: str | None = None
    type: str | None = None
    model: str | None = None
    user_id: int | None = None
    agent: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@strawberry.input
class ErrorReportInput:
    type: str
    error: str
    model: str | None = None
    agent: str | None = None
    version: str | None = None
    request_id: str | None = None


@strawberry.type
class ErrorsQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description=(
            "Newest first. org_admins: the reports made under their organization; members: their"
            " own made under their current organization."
        ),
    )
    async def error_reports(
        self,
        info: Info,
        filter: ErrorReportFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ErrorReportType]:
        f = filter or ErrorReportFilter()
        page = await svc.list_errors(
            viewer(info),
            svc.ErrorFilter(
                source=f.source,
                type=f.type,
                model=f.model,
                user_id=f.user_id,
                agent=f.agent,
                since=f.since,
                until=f.until,
            ),
            first=first,
            after=after,
        )
        return connection(page, ErrorReportType.of)

    @strawberry.field(permission_classes=[IsSuperAdmin], description="Newest first.")
    async def audit_log(
        self,
        info: Info,
        action: str | None = None,
        actor_id: int | None = None,
        since: dt.datetime | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEntryType]:
        page = await svc.list_audit(
            viewer(info),
            action=action,
            actor_filter=actor_id,
            since=since,
            first=first,
            after=after,
        )
        return connection(page, AuditEntryType.of)


@strawberry.type
class ErrorsMutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Report a client-side error (agents with an API key: POST /v1/error-reports).",
    )
    async def report_error(self, info: Info, input: ErrorReportInput) -> ErrorReportType:
        row = await svc.report_client_error(
            info.context.gateway,
            viewer(info),
            type=input.type,
            error=input.error,
            model=input.model,
            agent=input.agent,
            version=input.version,
            request_id=input.request_id,
        )
        return ErrorReportType.of(row)


@strawberry.type
class ErrorsSubscription:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated], description="Error reports as they are recorded."
    )
    async def error_reports(
        self,
        info: Info,
        # Not named ``source`` in Python: strawberry's permission extension passes a positional
        # ``source`` to resolvers and an argument of that name collides with it.
        origin: Annotated[
            str | None, strawberry.argument(name="source", description="gateway | client")
        ] = None,
        model: str | None = None,
    ) -> AsyncGenerator[ErrorReportType, None]:
        me = viewer(info)
        async with info.context.gateway.bus.subscribe("errors") as events:
            async for ev in events:
                if not can_see(me, ev):  # the same rule as the query, on the event's org_id
                    continue
                if origin and ev.get("source") != origin:
                    continue
                if model and ev.get("model") != model:
                    continue
                try:
                    out = ErrorReportType.from_event(ev)
                except (KeyError, TypeError, ValueError):
                    continue
                yield out
