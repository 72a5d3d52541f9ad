"""Error reports (query + live subscription), client reports, and the audit trail.

Reports are scoped by the organization each was made under (``organizationId``), with the same
rule as gateway logs (``backend.admin.reports``; live events: ``backend.graphql.logs.can_see``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from backend.admin import reports as svc
from backend.data.models.logs import AuditLog, ErrorReport
from backend.graphql.common import After, Connection, First, from_row, paged, related
from backend.graphql.context import Info, viewer
from backend.graphql.enums import ErrorSource, stored
from backend.graphql.logs import live_events
from backend.graphql.permissions import IsAuthenticated, IsSuperAdmin
from backend.graphql.tenancy import UserType, visible_user

_TYPE = "The error's type, e.g. a status class or the client's own name for it."
_AGENT = "The reporting agent's name."
_VERSION = "The reporting agent's version."
_REQUEST_ID = "The x-request-id of the request that failed."


@strawberry.type(name="ErrorReport", description="An error a client or the gateway recorded.")
class ErrorReportType:
    id: int | None = strawberry.field(description="null on live events not yet stored.")
    created_at: dt.datetime = strawberry.field(description="When it was recorded.")
    source: ErrorSource = strawberry.field(description="Who recorded it.")
    type: str = strawberry.field(description=_TYPE)
    model: str | None = strawberry.field(description="The model involved; null: unknown.")
    error: str = strawberry.field(description="The error message (no secrets).")
    user_id: int | None = strawberry.field(description="The user it concerns; null: none.")
    organization_id: int | None = strawberry.field(
        description="The organization the report was made under (not the user's current one)."
    )
    agent: str | None = strawberry.field(description=_AGENT)
    version: str | None = strawberry.field(description=_VERSION)
    request_id: str | None = strawberry.field(description=_REQUEST_ID)

    @strawberry.field(
        description="Who reported; null below super_admin once they have left your organization."
    )
    async def user(self, info: Info) -> UserType | None:
        return await visible_user(info, self.user_id)

    @staticmethod
    def of(e: ErrorReport) -> ErrorReportType:
        return from_row(ErrorReportType, e, source=ErrorSource(e.source), organization_id=e.org_id)

    @staticmethod
    def from_event(ev: dict[str, Any]) -> ErrorReportType:
        return ErrorReportType(
            id=ev.get("id"),
            created_at=dt.datetime.fromisoformat(ev["created_at"]),
            source=ErrorSource(ev.get("source")),
            type=str(ev.get("type", "")),
            model=ev.get("model"),
            error=str(ev.get("error", "")),
            user_id=ev.get("user_id"),
            organization_id=ev.get("org_id"),
            agent=ev.get("agent"),
            version=ev.get("version"),
            request_id=ev.get("request_id"),
        )


@strawberry.type(name="AuditEntry", description="An administrative change, who made it and when.")
class AuditEntryType:
    id: int = strawberry.field(description="The entry's id.")
    created_at: dt.datetime = strawberry.field(description="When the change was made.")
    actor_id: int | None = strawberry.field(description="null: the CLI / system.")
    action: str = strawberry.field(description="What was done, e.g. 'user.update'.")
    target: str = strawberry.field(description="What it was done to, e.g. 'user:42'.")
    detail: JSON = strawberry.field(description="Field names changed; never secret values.")

    @strawberry.field(description="Who made the change; null: the CLI / system, or a deleted user.")
    async def actor(self, info: Info) -> UserType | None:
        # One batch per request (Context.loaders): a page of entries costs one users query.
        return await related(info.context.loaders.user, self.actor_id, UserType.of)

    @staticmethod
    def of(a: AuditLog) -> AuditEntryType:
        return from_row(AuditEntryType, a)


@strawberry.input(description="Which error reports to list (all given conditions apply).")
class ErrorReportFilter:
    source: ErrorSource | None = strawberry.field(default=None, description="Only this source.")
    type: str | None = strawberry.field(default=None, description="Only this type.")
    model: str | None = strawberry.field(default=None, description="Only this model.")
    user_id: int | None = strawberry.field(default=None, description="Only this user's.")
    agent: str | None = strawberry.field(default=None, description="Only this agent's.")
    since: dt.datetime | None = strawberry.field(default=None, description="From this time on.")
    until: dt.datetime | None = strawberry.field(default=None, description="Before this time.")


@strawberry.input(description="An error a client met.")
class ErrorReportInput:
    type: str = strawberry.field(description=_TYPE)
    error: str = strawberry.field(
        description="The error message (its first 4000 characters are kept)."
    )
    model: str | None = strawberry.field(default=None, description="The model involved.")
    agent: str | None = strawberry.field(default=None, description=_AGENT)
    version: str | None = strawberry.field(default=None, description=_VERSION)
    request_id: str | None = strawberry.field(default=None, description=_REQUEST_ID)


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
        filter: Annotated[
            ErrorReportFilter | None, strawberry.argument(description="Which reports; null: all.")
        ] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[ErrorReportType]:
        f = filter or ErrorReportFilter()
        return await paged(
            info,
            svc.list_errors,
            ErrorReportType.of,
            filters=svc.ErrorFilter(
                source=stored(f.source),
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

    @strawberry.field(permission_classes=[IsSuperAdmin], description="Newest first.")
    async def audit_log(
        self,
        info: Info,
        action: Annotated[
            str | None, strawberry.argument(description="Only this action, e.g. 'user.update'.")
        ] = None,
        actor_id: Annotated[
            int | None, strawberry.argument(description="Only this user's changes.")
        ] = None,
        since: Annotated[
            dt.datetime | None, strawberry.argument(description="From this time on.")
        ] = None,
        first: First = None,
        after: After = None,
        until: Annotated[
            dt.datetime | None, strawberry.argument(description="Before this time.")
        ] = None,
        target: Annotated[
            str | None,
            strawberry.argument(description="Targets starting with this ('user:42', 'alias')."),
        ] = None,
    ) -> Connection[AuditEntryType]:
        return await paged(
            info,
            svc.list_audit,
            AuditEntryType.of,
            action=action,
            actor_filter=actor_id,
            since=since,
            first=first,
            after=after,
            until=until,
            target=target,
        )


@strawberry.type
class ErrorsMutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Report a client-side error (agents with an API key: POST /v1/error-reports).",
    )
    async def report_error(
        self,
        info: Info,
        input: Annotated[ErrorReportInput, strawberry.argument(description="The error.")],
    ) -> ErrorReportType:
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
            ErrorSource | None,
            strawberry.argument(name="source", description="Only this source."),
        ] = None,
        model: Annotated[str | None, strawberry.argument(description="Only this model.")] = None,
    ) -> AsyncGenerator[ErrorReportType, None]:

        def wanted(ev: dict[str, Any]) -> bool:
            if origin and ev.get("source") != stored(origin):
                return False
            return not (model and ev.get("model") != model)

        live = live_events(info, "errors", wanted, ErrorReportType.from_event)
        async with aclosing(live) as events:
            async for out in events:
                yield out
