"""DLP protection per organization (user keys) or per app (app keys), and its activity.

Protection on/off is the ``dlp_enabled`` flag of the organization or app; which rules apply is
its ``DlpPolicy`` row (created with every built-in rule the first time protection is turned on).
Rules are validated with the DLP engine's own checks, so a policy saved here always compiles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, org_scope, require_org
from backend.admin.errors import InvalidInput, NotFound
from backend.admin.pagination import (
    Page,
    Sort,
    encode_cursor,
    keyset_page,
    offset_of,
    page_size,
)
from backend.data.models.dlp import DlpActivity, DlpPolicy
from backend.data.models.tenancy import App, Organization
from backend.dlp.rules import BUILTIN_RULES, InvalidRule, check_custom_rule
from backend.dlp.rules import DlpPolicy as RulePolicy
from backend.gateway import Gateway

SCOPES = ("org", "app")
MAX_CUSTOM_RULES = 50
ACTIVITY_SORT = Sort("dlp:activity", "id", True)
TARGETS_KEY = "dlp:targets"


@dataclass(frozen=True, slots=True)
class DlpTarget:
    """One row of the DLP table: an organization or an app, and its protection."""

    scope: str
    target_id: int
    name: str
    org_id: int | None
    enabled: bool
    policy: DlpPolicy | None

    @property
    def rules(self) -> list[str]:
        if self.policy is None:
            return [r.id for r in BUILTIN_RULES]
        return list(self.policy.rules)

    @property
    def custom_rules(self) -> list[dict[str, str]]:
        return list(self.policy.custom_rules) if self.policy else []

    @property
    def last_activity_at(self) -> dt.datetime | None:
        return self.policy.last_activity_at if self.policy else None


async def _target(actor: Actor, scope: str, target_id: int) -> Organization | App:
    v.choice(scope, "scope", SCOPES)
    obj: Organization | App | None
    if scope == "org":
        obj = await Organization.get_or_none(id=target_id)
        owner = obj.id if obj else None
    else:
        obj = await App.get_or_none(id=target_id)
        owner = obj.organization_id if obj else None  # type: ignore[attr-defined]
    if obj is None:
        raise NotFound(f"{scope} {target_id} does not exist")
    require_org(actor, owner, "manage DLP")
    return obj


async def _policy(scope: str, target_id: int) -> DlpPolicy | None:
    filt = {"organization_id": target_id} if scope == "org" else {"app_id": target_id}
    return await DlpPolicy.filter(scope=scope, **filt).order_by("id").first()


def _target_sets(
    actor: Actor, scope: str | None
) -> tuple[QuerySet[Organization] | None, QuerySet[App] | None]:
    """The organizations and the apps the actor's DLP table lists (None: that scope left out)."""
    own = org_scope(actor, "view DLP")
    if scope is not None:
        v.choice(scope, "scope", SCOPES)
    orgs = (Organization.all() if own is None else Organization.filter(id=own)).order_by(
        "name", "id"
    )
    apps = (App.all() if own is None else App.filter(organization_id=own)).order_by("name", "id")
    return (orgs if scope in (None, "org") else None), (apps if scope in (None, "app") else None)


async def _targets(orgs: list[Organization], apps: list[App]) -> list[DlpTarget]:
    """Rows for these organizations and apps, with their policies (one query for all)."""
    if not orgs and not apps:
        return []
    found = await DlpPolicy.filter(
        Q(scope="org", organization_id__in=[o.id for o in orgs] or [0])
        | Q(scope="app", app_id__in=[a.id for a in apps] or [0])
    ).order_by("-id")
    # The oldest policy of a target wins (as ``_policy``): later ones overwrite newer ones.
    by_key = {
        (p.scope, p.organization_id if p.scope == "org" else p.app_id): p  # type: ignore[attr-defined]
        for p in found
    }
    out = [
        DlpTarget("org", o.id, o.name, o.id, o.dlp_enabled, by_key.get(("org", o.id))) for o in orgs
    ]
    out += [
        DlpTarget(
            "app",
            a.id,
            a.name,
            a.organization_id,  # type: ignore[attr-defined]
            a.dlp_enabled,
            by_key.get(("app", a.id)),
        )
        for a in apps
    ]
    return out


async def list_targets(actor: Actor, *, scope: str | None = None) -> list[DlpTarget]:
    """Every organization then every app (each by name): the whole table at once."""
    orgs_qs, apps_qs = _target_sets(actor, scope)
    orgs = await orgs_qs if orgs_qs is not None else []
    apps = await apps_qs if apps_qs is not None else []
    return await _targets(list(orgs), list(apps))


async def page_targets(
    actor: Actor, *, scope: str | None = None, first: int | None = None, after: str | None = None
) -> Page[DlpTarget]:
    """One page of ``list_targets``' order (organizations, then apps), read from the database a
    page at a time: the cursor holds the offset into organizations-then-apps."""
    orgs_qs, apps_qs = _target_sets(actor, scope)
    size, start = page_size(first), offset_of(after, TARGETS_KEY)
    n_orgs = await orgs_qs.count() if orgs_qs is not None else 0
    n_apps = await apps_qs.count() if apps_qs is not None else 0
    orgs: list[Organization] = []
    if orgs_qs is not None and start < n_orgs:
        orgs = list(await orgs_qs.offset(start).limit(size))
    apps: list[App] = []
    if apps_qs is not None and len(orgs) < size:
        apps = list(await apps_qs.offset(max(0, start - n_orgs)).limit(size - len(orgs)))
    items = await _targets(orgs, apps)
    total, end = n_orgs + n_apps, start + len(items)

    async def count() -> int:
        return total

    cursor = encode_cursor({"k": TARGETS_KEY, "o": end}) if items else None
    return Page(items, end < total, cursor, count)


async def get_target(actor: Actor, scope: str, target_id: int) -> DlpTarget:
    obj = await _target(actor, scope, target_id)
    org_id = obj.id if scope == "org" else obj.organization_id  # type: ignore[union-attr]
    return DlpTarget(scope, obj.id, obj.name, org_id, obj.dlp_enabled, await _policy(scope, obj.id))


def _check_rules(
    rules: list[Any], custom: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, str]]]:
    if len(custom) > MAX_CUSTOM_RULES:
        raise InvalidInput(f"at most {MAX_CUSTOM_RULES} custom rules", field="customRules")
    clean_custom: list[dict[str, str]] = []
    for i, rule in enumerate(custom):
        name = v.text(rule.get("name"), f"customRules[{i}].name", max_len=100)
        pattern = rule.get("pattern")
        if not isinstance(pattern, str):
            raise InvalidInput("pattern must be a string", field=f"customRules[{i}].pattern")
        try:
            check_custom_rule(name, pattern)
        except InvalidRule as exc:
            raise InvalidInput(str(exc), field=f"customRules[{i}].pattern") from None
        clean_custom.append({"name": name, "pattern": pattern})
    clean_rules = [v.text(r, "rules", max_len=100) for r in rules]
    try:
        RulePolicy(clean_rules, [(r["name"], r["pattern"]) for r in clean_custom]).validate()
    except InvalidRule as exc:
        field = "customRules" if "custom rule" in str(exc) else "rules"
        raise InvalidInput(str(exc), field=field) from None
    return sorted(set(clean_rules)), clean_custom


async def set_protection(
    gw: Gateway, actor: Actor, scope: str, target_id: int, enabled: bool
) -> DlpTarget:
    obj = await _target(actor, scope, target_id)
    obj.dlp_enabled = enabled
    await obj.save(update_fields=["dlp_enabled"])
    if enabled and await _policy(scope, obj.id) is None:
        await DlpPolicy.create(
            scope=scope,
            organization_id=obj.id if scope == "org" else None,
            app_id=obj.id if scope == "app" else None,
            rules=[r.id for r in BUILTIN_RULES],
            custom_rules=[],
        )
    await audit.record(actor, "dlp.protection", f"{scope}:{obj.id}", enabled=enabled)
    await gw.config_changed("tenancy")
    await gw.config_changed("dlp")
    return await get_target(actor, scope, target_id)


async def update_policy(
    gw: Gateway, actor: Actor, scope: str, target_id: int, changes: dict[str, Any]
) -> DlpTarget:
    """Set the enabled built-in rules and/or the custom regex rules of a scope."""
    obj = await _target(actor, scope, target_id)
    policy = await _policy(scope, obj.id)
    rules = changes.get("rules", policy.rules if policy else [r.id for r in BUILTIN_RULES])
    custom = changes.get("custom_rules", policy.custom_rules if policy else [])
    clean_rules, clean_custom = _check_rules(list(rules or []), list(custom or []))
    if policy is None:
        await DlpPolicy.create(
            scope=scope,
            organization_id=obj.id if scope == "org" else None,
            app_id=obj.id if scope == "app" else None,
            rules=clean_rules,
            custom_rules=clean_custom,
        )
    else:
        policy.rules = clean_rules
        policy.custom_rules = clean_custom
        await policy.save()
    await audit.record(actor, "dlp.policy", f"{scope}:{obj.id}", fields=sorted(changes))
    await gw.config_changed("dlp")
    return await get_target(actor, scope, target_id)


async def list_activity(
    actor: Actor,
    *,
    scope: str | None = None,
    target_id: int | None = None,
    kind: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[DlpActivity]:
    own = org_scope(actor, "view DLP activity")
    qs: QuerySet[DlpActivity] = DlpActivity.all()
    if own is not None:
        app_ids = await App.filter(organization_id=own).values_list("id", flat=True)
        qs = qs.filter(Q(org_id=own) | Q(app_id__in=list(app_ids)))
    if scope is not None:
        v.choice(scope, "scope", SCOPES)
        if target_id is None:
            qs = qs.filter(app_id__isnull=scope == "org")
    if target_id is not None:
        if scope is None:
            raise InvalidInput("scope is required with targetId", field="scope")
        qs = qs.filter(
            **(
                {"app_id": target_id}
                if scope == "app"
                else {"org_id": target_id, "app_id__isnull": True}
            )
        )
    if kind:
        qs = qs.filter(kind=kind)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    return await keyset_page(qs, ACTIVITY_SORT, first=first, after=after)
