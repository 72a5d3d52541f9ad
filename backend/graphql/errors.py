"""Error reports (query + live subscription), client reports, and the audit trail."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from backend.admin import reports as svc
from backend.admin.access import is_admin, is_super, own_org
from backend.data.models.logs import AuditLog, ErrorReport
from backend.data.models.tenancy import User
from backend.graphql.common import Connection, connection
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAuthenticated, IsSuperAdmin
from backend.graphql.tenancy import UserType


@strawberry.type(name="ErrorReport")
class ErrorReportType:
    id: int | None = strawberry.field(description="null on live events not yet stored.")
    created_at: dt.datetime
    source: str = strawberry.field(description="gateway | client")
    type: str
    model: str | None
    error: str
    user_id: int | None
    agent: str | None
    version: str | None
    request_id: str | None

    @strawberry.field
    async def user(self, info: Info) -> UserType | None:
        if self.user_id is None:
            return None
        user = await info.context.loaders.user.load(self.user_id)
        return UserType.of(user) if user else None

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
        description="Newest first. org_admins: their users' reports; members: their own.",
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


def _visible(me: User, ev: dict[str, Any], org_users: set[int]) -> bool:
    if is_super(me):
        return True
    if is_admin(me):
        return ev.get("user_id") in org_users
    return ev.get("user_id") == me.id


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
        org = own_org(me)
        async with info.context.gateway.bus.subscribe("errors") as events:
            async for ev in events:
                org_users: set[int] = set()
                uid = ev.get("user_id")
                if uid is not None and not is_super(me) and is_admin(me) and org is not None:
                    # Looked up per event: users join and leave the organization over time.
                    if await User.exists(id=uid, organization_id=org):
                        org_users = {uid}
                if not _visible(me, ev, org_users):
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
