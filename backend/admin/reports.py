"""Error reports (the gateway's own and those clients send) and the audit trail.

A report belongs to the organization it was made under (``org_id``, from the reporter's principal
or the dashboard user's organization at the time), never to the user's current one, exactly as
request log rows do (``backend.admin.logs``): org_admins see the reports made under their
organization, members their own made under their current organization, super_admins all.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from tortoise.queryset import QuerySet

from backend.admin import validate as v
from backend.admin.access import Actor, actor_id, own_org, require_super
from backend.admin.errors import InvalidInput
from backend.admin.logs import log_scope
from backend.admin.pagination import Page, Sort, keyset_page
from backend.data.log_record import ErrorRecord
from backend.data.models.logs import AuditLog, ErrorReport
from backend.gateway import Gateway

log = logging.getLogger("switchboard.admin")

NEWEST = Sort("errors:newest", "id", True)
AUDIT_NEWEST = Sort("audit:newest", "id", True)
SOURCES = ("gateway", "client")
LIMITS = {"type": 100, "model": 200, "agent": 100, "version": 50, "request_id": 64}


@dataclass(frozen=True, slots=True)
class ErrorFilter:
    source: str | None = None
    type: str | None = None
    model: str | None = None
    user_id: int | None = None
    agent: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _scoped_errors(actor: Actor) -> QuerySet[ErrorReport]:
    # Reports carry user_id and org_id as log rows do, and follow the same rule.
    return ErrorReport.filter(**log_scope(actor, "view error reports"))


async def list_errors(
    actor: Actor, filters: ErrorFilter, *, first: int | None = None, after: str | None = None
) -> Page[ErrorReport]:
    qs = _scoped_errors(actor)
    f = filters
    if f.source:
        qs = qs.filter(source=v.choice(f.source, "source", SOURCES))
    if f.type:
        qs = qs.filter(type=f.type)
    if f.model:
        qs = qs.filter(model=f.model)
    if f.user_id is not None:
        qs = qs.filter(user_id=f.user_id)
    if f.agent:
        qs = qs.filter(agent=f.agent)
    if f.since is not None:
        qs = qs.filter(created_at__gte=v.aware(f.since, "since"))
    if f.until is not None:
        qs = qs.filter(created_at__lt=v.aware(f.until, "until"))
    return await keyset_page(qs, NEWEST, first=first, after=after)


async def report_client_error(
    gw: Gateway,
    actor: Actor,
    *,
    type: str,
    error: str,
    model: str | None = None,
    agent: str | None = None,
    version: str | None = None,
    request_id: str | None = None,
) -> ErrorReport:
    """An error a dashboard user or script reports (agents with API keys use the proxy route)."""
    values = {
        "type": v.text(type, "type", max_len=LIMITS["type"]),
        "model": v.optional_text(model, "model", max_len=LIMITS["model"]),
        "agent": v.optional_text(agent, "agent", max_len=LIMITS["agent"]),
        "version": v.optional_text(version, "version", max_len=LIMITS["version"]),
        "request_id": v.optional_text(request_id, "requestId", max_len=LIMITS["request_id"]),
    }
    if not isinstance(error, str) or not error.strip():
        raise InvalidInput("error must not be empty", field="error")
    record = ErrorRecord(
        created_at=gw.clock(),
        source="client",
        error=error[:4000],
        user_id=actor_id(actor),
        org_id=own_org(actor),
        **values,  # type: ignore[arg-type]
    )
    row = await ErrorReport.create(
        created_at=record.created_at,
        source=record.source,
        type=record.type,
        error=record.error,
        model=record.model,
        user_id=record.user_id,
        org_id=record.org_id,
        agent=record.agent,
        version=record.version,
        request_id=record.request_id,
    )
    try:
        await gw.bus.publish("errors", {**record.event(), "id": row.id})
    except Exception as exc:  # the report is stored; only live subscribers miss it
        log.warning("publishing an errors event failed: %s", exc.__class__.__name__)
    return row


async def list_audit(
    actor: Actor,
    *,
    action: str | None = None,
    actor_filter: int | None = None,
    since: dt.datetime | None = None,
    first: int | None = None,
    after: str | None = None,
    until: dt.datetime | None = None,
    target: str | None = None,
) -> Page[AuditLog]:
    require_super(actor, "view the audit log")
    qs: QuerySet[AuditLog] = AuditLog.all()
    if action:
        qs = qs.filter(action__startswith=action)
    if actor_filter is not None:
        qs = qs.filter(actor_id=actor_filter)
    if since is not None:
        qs = qs.filter(created_at__gte=v.aware(since, "since"))
    if until is not None:
        qs = qs.filter(created_at__lt=v.aware(until, "until"))
    if target:
        qs = qs.filter(target__startswith=target)
    return await keyset_page(qs, AUDIT_NEWEST, first=first, after=after)
