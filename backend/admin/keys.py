"""Gateway API keys of users (user keys) and apps (app keys). The secret is returned once.

Rotation (``rotate_key``) issues a new key for the same owner with the same name, limits (the
administrator's locks included) and expiry, and retires the old one: at once (revoked), or at the
end of a grace period (it expires then), so clients can move to the new secret without an outage.
The new key continues the old key's counters: its spend cap counts what the old key spent this
period and its rate-limit windows hold the old key's recent requests (counters are scoped by
``lineage_id or id``, the first key of the rotation chain), so a rotation cannot reset a cap.
What the old key spent stays in the log under its prefix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from backend.admin import audit, limits
from backend.admin import validate as v
from backend.admin.access import Actor, SystemActor, is_admin, is_super, org_scope, require_org
from backend.admin.errors import Forbidden, InvalidInput
from backend.admin.lookup import found
from backend.admin.pagination import Page, Sort, keyset_page
from backend.budget.periods import period_kind, period_start
from backend.data import windows
from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import App, User
from backend.gateway import Gateway
from backend.security.api_keys import generate_key

MAX_RPM = 1_000_000
KEY_SORTS = {
    "CREATED_DESC": Sort("key:created_desc", "created_at", True),
    "CREATED_ASC": Sort("key:created_asc", "created_at", False),
    "NAME_ASC": Sort("key:name_asc", "name", False),
}
KEY_STATUSES = ("active", "revoked", "expired")
KEY_KINDS = ("user", "app")
#: Longest grace period a rotation may give the old key (30 days).
MAX_GRACE_S = 30 * 24 * 3600


def key_status(key: ApiKey, now: dt.datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


async def _check_owner(actor: Actor, user_id: int | None, app_id: int | None) -> None:
    """May ``actor`` manage keys of this user or app?"""
    if is_super(actor):
        return
    if user_id is not None:
        if not isinstance(actor, SystemActor) and actor.id == user_id:
            return
        if not is_admin(actor):
            raise Forbidden("you may only manage your own API keys")
        user = await User.get_or_none(id=user_id)
        if user is None or user.role == "super_admin":
            raise Forbidden("you may only manage API keys of your organization's users")
        require_org(actor, user.organization_id, "manage API keys")  # type: ignore[attr-defined]
        return
    if not is_admin(actor):
        raise Forbidden("you may only manage your own API keys")
    app = await App.get_or_none(id=app_id)
    require_org(actor, app.organization_id if app else None, "manage API keys")  # type: ignore[attr-defined]


async def get_key(actor: Actor, key_id: int) -> ApiKey:
    key = await found(ApiKey, key_id, "API key")
    await _check_owner(actor, key.user_id, key.app_id)  # type: ignore[attr-defined]
    return key


async def list_keys(
    actor: Actor,
    *,
    now: dt.datetime,
    user_id: int | None = None,
    app_id: int | None = None,
    status: str | None = None,
    search: str | None = None,
    kind: str | None = None,
    org_id: int | None = None,
    sort: str = "CREATED_DESC",
    first: int | None = None,
    after: str | None = None,
) -> Page[ApiKey]:
    qs: QuerySet[ApiKey] = ApiKey.all()
    if not is_admin(actor):
        # A member sees only their own user keys, whatever filters they pass.
        qs = qs.filter(user_id=actor.id)
    else:
        scope = org_scope(actor, "list API keys")
        if scope is not None:
            qs = qs.filter(
                Q(user__organization_id=scope, user__role__not="super_admin")
                | Q(app__organization_id=scope)
            )
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    if app_id is not None:
        qs = qs.filter(app_id=app_id)
    if status:
        v.choice(status, "status", KEY_STATUSES)
        if status == "revoked":
            qs = qs.filter(revoked_at__isnull=False)
        elif status == "expired":
            qs = qs.filter(revoked_at__isnull=True, expires_at__lte=now)
        else:
            qs = qs.filter(
                Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            )
    if kind:
        v.choice(kind, "kind", KEY_KINDS)
        qs = qs.filter(app_id__isnull=kind == "user")
    if org_id is not None:
        qs = qs.filter(Q(user__organization_id=org_id) | Q(app__organization_id=org_id))
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(prefix__icontains=search))
    return await keyset_page(qs, KEY_SORTS[sort], first=first, after=after)


async def create_key(gw: Gateway, actor: Actor, data: dict[str, Any]) -> tuple[ApiKey, str]:
    """Create a key for a user or an app (a member's own when neither is given)."""
    user_id, app_id = data.get("user_id"), data.get("app_id")
    if user_id is not None and app_id is not None:
        raise InvalidInput("a key belongs to a user or to an app, not both", field="appId")
    if user_id is None and app_id is None:
        if isinstance(actor, SystemActor):
            raise InvalidInput("userId or appId is required", field="userId")
        user_id = actor.id
    if user_id is not None and not await User.exists(id=user_id):
        raise InvalidInput(f"user {user_id} does not exist", field="userId")
    if app_id is not None and not await App.exists(id=app_id):
        raise InvalidInput(f"app {app_id} does not exist", field="appId")
    await _check_owner(actor, user_id, app_id)
    now = gw.clock()
    name = v.text(data.get("name"), "name", required=False)
    rpm = v.int_range(data.get("rate_limit_rpm"), "rateLimitRpm", 1, MAX_RPM)
    expires_at = v.future(data.get("expires_at"), "expiresAt", now)
    secret, prefix, digest = generate_key()
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=digest,
        user_id=user_id,
        app_id=app_id,
        expires_at=expires_at,
    )
    # An administrator's rate limit binds the owner (backend.admin.limits).
    limits.apply_to_key(actor, key, {"rate_limit_rpm": rpm}, now)
    await key.save()
    await audit.record(actor, "key.create", f"key:{key.prefix}", fields=sorted(data))
    await gw.config_changed("keys")
    return key, secret


async def update_key(gw: Gateway, actor: Actor, key_id: int, changes: dict[str, Any]) -> ApiKey:
    key = await get_key(actor, key_id)
    if "name" in changes:
        key.name = v.text(changes["name"], "name", required=False)
    if "rate_limit_rpm" in changes:
        rpm = v.int_range(changes["rate_limit_rpm"], "rateLimitRpm", 1, MAX_RPM)
        limits.apply_to_key(actor, key, {"rate_limit_rpm": rpm}, gw.clock())
    if "expires_at" in changes:
        key.expires_at = v.future(changes["expires_at"], "expiresAt", gw.clock())
    await key.save()
    await audit.record(actor, "key.update", f"key:{key.prefix}", fields=sorted(changes))
    await gw.config_changed("keys")
    return key


async def revoke_key(gw: Gateway, actor: Actor, key_id: int) -> ApiKey:
    key = await get_key(actor, key_id)
    if key.revoked_at is None:
        key.revoked_at = gw.clock()
        await key.save(update_fields=["revoked_at"])
        await audit.record(actor, "key.revoke", f"key:{key.prefix}")
        await gw.config_changed("keys")
    return key


async def delete_key(gw: Gateway, actor: Actor, key_id: int) -> int:
    key = await get_key(actor, key_id)
    await key.delete()
    await audit.record(actor, "key.delete", f"key:{key.prefix}")
    await gw.config_changed("keys")
    return key_id


async def rotate_key(
    gw: Gateway, actor: Actor, key_id: int, grace_s: int | None
) -> tuple[ApiKey, ApiKey, str]:
    """(old key, new key, new secret): see the module docstring."""
    old = await get_key(actor, key_id)
    now = gw.clock()
    status = key_status(old, now)
    if status != "active":
        raise InvalidInput(f"key {old.prefix} is {status}: only an active key can be rotated")
    grace = v.int_range(grace_s, "graceSeconds", 0, MAX_GRACE_S) or 0
    secret, prefix, digest = generate_key()
    new = ApiKey(
        name=old.name,
        prefix=prefix,
        key_hash=digest,
        user_id=old.user_id,  # type: ignore[attr-defined]
        app_id=old.app_id,  # type: ignore[attr-defined]
        rate_limit_rpm=old.rate_limit_rpm,
        rate_limit_tpm=old.rate_limit_tpm,
        spend_cap_usd=old.spend_cap_usd,
        cap_period=old.cap_period,
        allowed_models=old.allowed_models,
        # The locks go along: rotating must not free an owner from an administrator's limit.
        # (A record that is not an object holds no lock: limits.stored_locks.)
        admin_limits=dict(old.admin_limits) if isinstance(old.admin_limits, dict) else {},
        expires_at=old.expires_at,
        # Same counters as the old key (see the module docstring).
        lineage_id=old.lineage_id if old.lineage_id is not None else old.id,
    )
    if grace:
        retire = now + dt.timedelta(seconds=grace)
        if old.expires_at is None or old.expires_at > retire:
            old.expires_at = retire
    else:
        old.revoked_at = now
    async with in_transaction():
        await new.save()
        await old.save(update_fields=["expires_at", "revoked_at"])
    await audit.record(
        actor, "key.rotate", f"key:{old.prefix}", new_key=new.prefix, grace_seconds=grace
    )
    await gw.config_changed("keys")
    return old, new, secret


@dataclass(frozen=True, slots=True)
class KeySpend:
    period: str
    period_start: dt.datetime
    cost_usd: Decimal
    requests: int
    #: Requests answered by a model without a known price (not in cost_usd).
    unknown_cost_requests: int


def spend_period(key: ApiKey, now: dt.datetime) -> tuple[str, dt.datetime]:
    """The key's cap period (monthly without a cap) and its start."""
    kind = period_kind(key.cap_period)
    return kind, period_start(kind, now)


async def spend_since(items: Sequence[tuple[str, str, dt.datetime]]) -> list[KeySpend]:
    """Spend of keys since their period starts, for (prefix, period, start) items: from the
    key rollups (``data.windows``: daily rows for whole days, hourly ones for the rest; not
    superseded attempts), one grouped query per distinct start (at most three)."""
    by_start: dict[dt.datetime, set[str]] = {}
    for prefix, _, start in items:
        by_start.setdefault(start, set()).add(prefix)
    found: dict[tuple[str, dt.datetime], tuple[Decimal, int, int]] = {}
    # Up to tomorrow: periods run until now (rows dated later, from a clock ahead, count too).
    until = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    until += dt.timedelta(days=1)
    for start, prefixes in by_start.items():

        def these(qs: QuerySet[Any], wanted: list[str] = sorted(prefixes)) -> QuerySet[Any]:
            return qs.filter(key_prefix__in=wanted)

        rows = await windows.grouped(
            "key",
            start,
            max(until, start + dt.timedelta(hours=1)),
            group_by=("key_prefix",),
            sums=("cost_usd", "requests", "unknown_cost_requests"),
            narrow=these,
        )
        for r in rows:
            found[(r["key_prefix"], start)] = (
                r["cost_usd"],
                r["requests"],
                r["unknown_cost_requests"],
            )
    out = []
    for prefix, period, start in items:
        cost, n, unknown_n = found.get((prefix, start), (Decimal("0.00000000"), 0, 0))
        out.append(KeySpend(period, start, cost, n, unknown_n))
    return out


def counter_id(key: ApiKey) -> int:
    """The id scoping the key's cap and rate-limit counters (``KeyInfo.counter_id``)."""
    return key.id if key.lineage_id is None else key.lineage_id


async def chain_spend_since(items: Sequence[tuple[int, str, dt.datetime]]) -> list[KeySpend]:
    """Spend of key chains, for (counter id, period, start) items: the sum over every key of
    the rotation chain (they share one cap counter, so the cap is measured against it)."""
    ids = sorted({item[0] for item in items})
    rows = await ApiKey.filter(Q(id__in=ids) | Q(lineage_id__in=ids)).values_list(
        "id", "lineage_id", "prefix"
    )
    prefixes: dict[int, list[str]] = {}
    for key_id, lineage_id, prefix in rows:
        prefixes.setdefault(key_id if lineage_id is None else lineage_id, []).append(prefix)
    wanted = sorted(
        {(p, period, start) for cid, period, start in items for p in prefixes.get(cid, ())}
    )
    spent = dict(zip(wanted, await spend_since(wanted) if wanted else [], strict=True))
    out = []
    for cid, period, start in items:
        parts = [spent[(p, period, start)] for p in prefixes.get(cid, ())]
        out.append(
            KeySpend(
                period,
                start,
                sum((x.cost_usd for x in parts), Decimal("0.00000000")),
                sum(x.requests for x in parts),
                sum(x.unknown_cost_requests for x in parts),
            )
        )
    return out
