"""DLP protection per organization or app, its rules, and its activity."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry
from strawberry.types.unset import UNSET

from backend.admin import dlp as svc
from backend.data.models.dlp import DlpActivity
from backend.dlp.rules import BUILTIN_RULES
from backend.graphql.common import After, Connection, First, changes, from_row, paged, run
from backend.graphql.context import Info, viewer
from backend.graphql.declare import Changes
from backend.graphql.enums import DlpActivityKind, DlpScope, DlpStatus, stored
from backend.graphql.permissions import IsAdmin


@strawberry.type(description="A built-in DLP detection rule.")
class DlpRuleInfo:
    id: str = strawberry.field(description="The rule's id (as in DlpPolicyInput.rules).")
    kind: str = strawberry.field(description="Placeholder kind, e.g. EMAIL gives [EMAIL_1].")
    label: str = strawberry.field(description="Short name for people.")
    description: str = strawberry.field(description="What the rule detects.")


_RULE_NAME = "The rule's name (in placeholders and activity)."
_PATTERN = "A regular expression (RE2 syntax: no backreferences or lookaround)."


@strawberry.type(description="An operator's own DLP rule.")
class CustomDlpRule:
    name: str = strawberry.field(description=_RULE_NAME)
    pattern: str = strawberry.field(description=_PATTERN)


@strawberry.input(description="An operator's own DLP rule.")
class CustomDlpRuleInput:
    name: str = strawberry.field(description=_RULE_NAME)
    pattern: str = strawberry.field(description=_PATTERN)


@strawberry.type(description="An organization's or app's DLP protection.")
class DlpProtection:
    scope: DlpScope = strawberry.field(description="What the protection is attached to.")
    target_id: int = strawberry.field(description="The organization's or app's id.")
    name: str = strawberry.field(description="The organization's or app's name.")
    organization_id: int | None = strawberry.field(
        description="The organization (of the app); null: an app without one."
    )
    enabled: bool = strawberry.field(description="Requests are scanned.")
    rules: list[str] = strawberry.field(description="Enabled built-in rule ids.")
    custom_rules: list[CustomDlpRule] = strawberry.field(description="The operator's own rules.")
    last_activity_at: dt.datetime | None = strawberry.field(
        description="The latest DLP activity; null: none."
    )

    @strawberry.field(description="Whether protection is on (as `enabled`).")
    def status(self) -> DlpStatus:
        return DlpStatus.ON if self.enabled else DlpStatus.OFF

    @strawberry.field(description="Rules enabled: built-in plus custom.")
    def rules_enabled(self) -> int:
        return len(self.rules) + len(self.custom_rules)

    @staticmethod
    def of(t: svc.DlpTarget) -> DlpProtection:
        return DlpProtection(
            scope=DlpScope(t.scope),
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


@strawberry.type(name="DlpActivity", description="What DLP did to one request, per rule.")
class DlpActivityType:
    id: int = strawberry.field(description="The entry's id.")
    created_at: dt.datetime = strawberry.field(description="When the request was made.")
    kind: DlpActivityKind = strawberry.field(description="What DLP did.")
    scope: str = strawberry.field(
        description="Whose protection applied: 'org:<slug>' or 'app:<slug>' at the time."
    )
    organization_id: int | None = strawberry.field(description="The organization; null: none.")
    app_id: int | None = strawberry.field(description="The app (app keys); null: a user key.")
    rule: str = strawberry.field(description="The rule id or custom rule name involved.")
    matches: int = strawberry.field(description="Values matched (0 for BLOCK).")
    size: int = strawberry.field(description="Size of the scanned text, in characters.")
    request_id: str | None = strawberry.field(description="The request's x-request-id.")
    detail: str = strawberry.field(description="What happened, for people.")

    @staticmethod
    def of(a: DlpActivity) -> DlpActivityType:
        return from_row(DlpActivityType, a, kind=DlpActivityKind(a.kind), organization_id=a.org_id)


@strawberry.input(description="Changes to a DLP policy: only the fields sent change.")
class DlpPolicyInput:
    rules: list[str] | None = strawberry.field(default=UNSET, description="Built-in rule ids.")
    custom_rules: list[CustomDlpRuleInput] | None = strawberry.field(
        default=UNSET, description="The operator's own rules (replaces the list)."
    )


@strawberry.input(description="Which DLP activity to list (all given conditions apply).")
class DlpActivityFilter:
    scope: DlpScope | None = strawberry.field(
        default=None, description="Only organizations' (user keys) or apps' activity."
    )
    target_id: int | None = strawberry.field(
        default=None, description="Only this organization's or app's (needs scope)."
    )
    kind: DlpActivityKind | None = strawberry.field(default=None, description="Only this kind.")
    since: dt.datetime | None = strawberry.field(default=None, description="From this time on.")
    until: dt.datetime | None = strawberry.field(default=None, description="Before this time.")


_Scope = Annotated[DlpScope, strawberry.argument(description="An organization or an app.")]
_TargetId = Annotated[int, strawberry.argument(description="The organization's or app's id.")]


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
    async def dlp_protections(
        self,
        info: Info,
        scope: Annotated[
            DlpScope | None, strawberry.argument(description="Only organizations or only apps.")
        ] = None,
    ) -> list[DlpProtection]:
        rows = await svc.list_targets(viewer(info), scope=stored(scope))
        return [DlpProtection.of(t) for t in rows]

    @strawberry.field(
        permission_classes=[IsAdmin],
        description=(
            "dlpProtections a page at a time (organizations, then apps, each by name), with "
            "the total: for a dashboard's table (dlpProtections answers the whole list)."
        ),
    )
    async def dlp_protections_paged(
        self,
        info: Info,
        scope: Annotated[
            DlpScope | None, strawberry.argument(description="Only organizations or only apps.")
        ] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[DlpProtection]:
        return await paged(
            info, svc.page_targets, DlpProtection.of, scope=stored(scope), first=first, after=after
        )

    @strawberry.field(
        permission_classes=[IsAdmin], description="One organization's or app's DLP protection."
    )
    async def dlp_protection(
        self, info: Info, scope: _Scope, target_id: _TargetId
    ) -> DlpProtection:
        return DlpProtection.of(await svc.get_target(viewer(info), stored(scope), target_id))

    @strawberry.field(permission_classes=[IsAdmin], description="Newest first.")
    async def dlp_activity(
        self,
        info: Info,
        filter: Annotated[
            DlpActivityFilter | None, strawberry.argument(description="Which activity; null: all.")
        ] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[DlpActivityType]:
        f = filter or DlpActivityFilter()
        return await paged(
            info,
            svc.list_activity,
            DlpActivityType.of,
            scope=stored(f.scope),
            target_id=f.target_id,
            kind=stored(f.kind),
            since=f.since,
            until=f.until,
            first=first,
            after=after,
        )


@strawberry.type
class DlpMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Turn protection on or off for an organization (user keys) or app (app keys).",
    )
    async def set_dlp_protection(
        self,
        info: Info,
        scope: _Scope,
        target_id: _TargetId,
        enabled: Annotated[bool, strawberry.argument(description="true: on; false: off.")],
    ) -> DlpProtection:
        return await run(
            info, svc.set_protection, stored(scope), target_id, enabled, convert=DlpProtection.of
        )

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Choose the rules of an organization's or app's protection.",
    )
    async def update_dlp_policy(
        self,
        info: Info,
        scope: _Scope,
        target_id: _TargetId,
        input: Changes[DlpPolicyInput],
    ) -> DlpProtection:
        data = changes(input)
        if data.get("custom_rules") is not None:
            data["custom_rules"] = [
                {"name": r.name, "pattern": r.pattern} for r in data["custom_rules"]
            ]
        return await run(
            info, svc.update_policy, stored(scope), target_id, data, convert=DlpProtection.of
        )
