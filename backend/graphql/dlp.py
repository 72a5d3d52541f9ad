"""DLP protection per organization or app, its rules, and its activity."""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import dlp as svc
from backend.data.models.dlp import DlpActivity
from backend.dlp.rules import BUILTIN_RULES
from backend.graphql.common import Connection, changes, connection
from backend.graphql.context import Info, viewer
from backend.graphql.permissions import IsAdmin


@strawberry.type
class DlpRuleInfo:
    id: str
    kind: str = strawberry.field(description="Placeholder kind, e.g. EMAIL gives [EMAIL_1].")
    label: str
    description: str


@strawberry.type
class CustomDlpRule:
    name: str
    pattern: str


@strawberry.input
class CustomDlpRuleInput:
    name: str
    pattern: str = strawberry.field(description="A Python regular expression.")


@strawberry.type
class DlpProtection:
    scope: str = strawberry.field(description="org (user keys) | app (app keys)")
    target_id: int
    name: str
    organization_id: int | None
    enabled: bool
    rules: list[str] = strawberry.field(description="Enabled built-in rule ids.")
    custom_rules: list[CustomDlpRule]
    last_activity_at: dt.datetime | None

    @strawberry.field
    def status(self) -> str:
        """on | off"""
        return "on" if self.enabled else "off"

    @strawberry.field(description="Rules enabled: built-in plus custom.")
    def rules_enabled(self) -> int:
        return len(self.rules) + len(self.custom_rules)

    @staticmethod
    def of(t: svc.DlpTarget) -> DlpProtection:
        return DlpProtection(
            scope=t.scope,
            target_id=t.target_id,
            name=t.name,
            organization_id=t.org_id,
            enabled=t.enabled,
            rules=t.rules,
            custom_rules=[
                CustomDlpRule(name=r["name"], pattern=r["pattern"]) for r in t.custom_rules
            ],
            last_activity_at=t.last_activity_at,
        )


@strawberry.type(name="DlpActivity")
class DlpActivityType:
    id: int
    created_at: dt.datetime
    kind: str = strawberry.field(description="redact | restore | block")
    scope: str
    organization_id: int | None
    app_id: int | None
    rule: str
    matches: int
    size: int
    request_id: str | None
    detail: str

    @staticmethod
    def of(a: DlpActivity) -> DlpActivityType:
        return DlpActivityType(
            id=a.id,
            created_at=a.created_at,
            kind=a.kind,
            scope=a.scope,
            organization_id=a.org_id,
            app_id=a.app_id,
            rule=a.rule,
            matches=a.matches,
            size=a.size,
            request_id=a.request_id,
            detail=a.detail,
        )


@strawberry.input
class DlpPolicyInput:
    rules: list[str] | None = strawberry.field(default=UNSET, description="Built-in rule ids.")
    custom_rules: list[CustomDlpRuleInput] | None = UNSET


@strawberry.input
class DlpActivityFilter:
    scope: str | None = None
    target_id: int | None = None
    kind: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@strawberry.type
class DlpQuery:
    @strawberry.field(description="Built-in detection rules.")
    def dlp_rules(self) -> list[DlpRuleInfo]:
        return [
            DlpRuleInfo(id=r.id, kind=r.kind, label=r.label, description=r.description)
            for r in BUILTIN_RULES
        ]

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Every organization and app you administer, with its DLP protection.",
    )
    async def dlp_protections(self, info: Info, scope: str | None = None) -> list[DlpProtection]:
        return [DlpProtection.of(t) for t in await svc.list_targets(viewer(info), scope=scope)]

    @strawberry.field(permission_classes=[IsAdmin])
    async def dlp_protection(self, info: Info, scope: str, target_id: int) -> DlpProtection:
        return DlpProtection.of(await svc.get_target(viewer(info), scope, target_id))

    @strawberry.field(permission_classes=[IsAdmin], description="Newest first.")
    async def dlp_activity(
        self,
        info: Info,
        filter: DlpActivityFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[DlpActivityType]:
        f = filter or DlpActivityFilter()
        page = await svc.list_activity(
            viewer(info),
            scope=f.scope,
            target_id=f.target_id,
            kind=f.kind,
            since=f.since,
            until=f.until,
            first=first,
            after=after,
        )
        return connection(page, DlpActivityType.of)


@strawberry.type
class DlpMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Turn protection on or off for an organization (user keys) or app (app keys).",
    )
    async def set_dlp_protection(
        self, info: Info, scope: str, target_id: int, enabled: bool
    ) -> DlpProtection:
        t = await svc.set_protection(info.context.gateway, viewer(info), scope, target_id, enabled)
        return DlpProtection.of(t)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_dlp_policy(
        self, info: Info, scope: str, target_id: int, input: DlpPolicyInput
    ) -> DlpProtection:
        data = changes(input)
        if data.get("custom_rules") is not None:
            data["custom_rules"] = [
                {"name": r.name, "pattern": r.pattern} for r in data["custom_rules"]
            ]
        t = await svc.update_policy(info.context.gateway, viewer(info), scope, target_id, data)
        return DlpProtection.of(t)
