"""Users, organizations and apps: create, read, update, delete, scoped by role.

Updates take a ``changes`` dict holding only the fields the caller sets (a key with ``None``
clears a nullable field). Every mutation reloads the ``tenancy`` hot-path domain.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import (
    ROLES,
    Actor,
    SystemActor,
    is_super,
    org_scope,
    require_org,
    require_super,
    require_user_access,
)
from backend.admin.errors import Forbidden, InvalidInput
from backend.admin.lookup import found
from backend.admin.pagination import Page, Sort, keyset_page
from backend.data.models.tenancy import App, Organization, User
from backend.gateway import Gateway
from backend.security import sessions
from backend.security.passwords import hash_password, password_problem

STATUSES = ("active", "suspended")
CAP_PERIODS = ("daily", "weekly", "monthly")

USER_SORTS = {
    "CREATED_DESC": Sort("user:created_desc", "created_at", True),
    "CREATED_ASC": Sort("user:created_asc", "created_at", False),
    "NAME_ASC": Sort("user:name_asc", "name", False),
    "NAME_DESC": Sort("user:name_desc", "name", True),
    "EMAIL_ASC": Sort("user:email_asc", "email", False),
}
ORG_SORTS = {
    "CREATED_DESC": Sort("org:created_desc", "created_at", True),
    "CREATED_ASC": Sort("org:created_asc", "created_at", False),
    "NAME_ASC": Sort("org:name_asc", "name", False),
    "NAME_DESC": Sort("org:name_desc", "name", True),
    "SLUG_ASC": Sort("org:slug_asc", "slug", False),
}
APP_SORTS = {
    "CREATED_DESC": Sort("app:created_desc", "created_at", True),
    "CREATED_ASC": Sort("app:created_asc", "created_at", False),
    "NAME_ASC": Sort("app:name_asc", "name", False),
    "NAME_DESC": Sort("app:name_desc", "name", True),
    "SLUG_ASC": Sort("app:slug_asc", "slug", False),
}


async def _password(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput("password must be a string", field="password")
    problem = password_problem(value)
    if problem:
        raise InvalidInput(f"password {problem}", field="password")
    # argon2 takes ~50 ms and releases the GIL: off the loop so other requests go on meanwhile.
    # Only admins reach this, so the default thread pool's bound is enough.
    return await asyncio.to_thread(hash_password, value)


async def _org_exists(org_id: int | None, field: str = "organizationId") -> int | None:
    if org_id is not None and not await Organization.exists(id=org_id):
        raise InvalidInput(f"organization {org_id} does not exist", field=field)
    return org_id


# -- users -------------------------------------------------------------------------------------


async def get_user(actor: Actor, user_id: int) -> User:
    user = await found(User, user_id, "user")
    require_user_access(actor, user, "view", self_ok=True)
    return user


async def list_users(
    actor: Actor,
    *,
    search: str | None = None,
    role: str | None = None,
    status: str | None = None,
    organization_id: int | None = None,
    sort: str = "CREATED_DESC",
    first: int | None = None,
    after: str | None = None,
) -> Page[User]:
    scope = org_scope(actor, "list users")
    qs: QuerySet[User] = User.all()
    if scope is not None:
        qs = qs.filter(organization_id=scope).exclude(role="super_admin")
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    if role:
        qs = qs.filter(role=v.choice(role, "role", ROLES))
    if status:
        qs = qs.filter(status=v.choice(status, "status", STATUSES))
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(email__icontains=search))
    return await keyset_page(qs, USER_SORTS[sort], first=first, after=after)


async def _check_role_grant(actor: Actor, role: str) -> None:
    if role == "super_admin":
        require_super(actor, "grant the super_admin role")


async def create_user(gw: Gateway, actor: Actor, data: dict[str, Any]) -> User:
    org_id = data.get("organization_id")
    if not is_super(actor):
        # An org_admin's new users land in their own organization.
        org_id = org_scope(actor, "create users") if org_id is None else org_id
        require_org(actor, org_id, "create users")
    fields: dict[str, Any] = {
        "name": v.text(data.get("name"), "name"),
        "email": v.email(data.get("email")),
        "role": v.choice(data.get("role", "member"), "role", ROLES),
        "status": v.choice(data.get("status", "active"), "status", STATUSES),
        "weekly_cap_usd": v.money(data.get("weekly_cap_usd"), "weeklyCapUsd"),
        "organization_id": await _org_exists(org_id),
    }
    await _check_role_grant(actor, fields["role"])
    if data.get("password") is not None:
        fields["password_hash"] = await _password(data["password"])
    if await User.exists(email=fields["email"]):
        raise InvalidInput("a user with this email already exists", field="email")
    user = await User.create(**fields)
    await audit.record(actor, "user.create", f"user:{user.id}", fields=sorted(data))
    await gw.config_changed("tenancy")
    return user


async def _is_last_super_admin(user: User) -> bool:
    if user.role != "super_admin" or user.status != "active":
        return False
    return await User.filter(role="super_admin", status="active").count() <= 1


async def update_user(gw: Gateway, actor: Actor, user_id: int, changes: dict[str, Any]) -> User:
    user = await get_user(actor, user_id)
    require_user_access(actor, user, "update", self_ok=False)
    if "name" in changes:
        user.name = v.text(changes["name"], "name")
    if "email" in changes:
        addr = v.email(changes["email"])
        if addr != user.email and await User.exists(email=addr):
            raise InvalidInput("a user with this email already exists", field="email")
        user.email = addr
    demoting = False
    if "role" in changes:
        role = v.choice(changes["role"], "role", ROLES)
        await _check_role_grant(actor, role)
        demoting = role != "super_admin"
        user.role = role
    was_active = user.status == "active"
    if "status" in changes:
        user.status = v.choice(changes["status"], "status", STATUSES)
    if "weekly_cap_usd" in changes:
        user.weekly_cap_usd = v.money(changes["weekly_cap_usd"], "weeklyCapUsd")
    if "organization_id" in changes:
        org_id = await _org_exists(changes["organization_id"])
        if not is_super(actor):
            require_org(actor, org_id, "move users")
        user.organization_id = org_id  # type: ignore[attr-defined]
    if "password" in changes:
        user.password_hash = (
            None if changes["password"] is None else await _password(changes["password"])
        )
    if (demoting or user.status != "active") and await _is_last_super_admin(
        await User.get(id=user.id)
    ):
        raise InvalidInput(
            "the last active super_admin cannot be demoted or suspended", field="role"
        )
    await user.save()
    await audit.record(actor, "user.update", f"user:{user.id}", fields=sorted(changes))
    if was_active and user.status != "active":
        # Suspended: their sessions end for good (reactivation does not bring them back), and
        # their live subscriptions close on every instance.
        await sessions.revoke_sessions(user.id, now=gw.clock())
        await sessions.announce_session_change(gw.bus, user.id)
    await gw.config_changed("tenancy")
    return user


async def delete_user(gw: Gateway, actor: Actor, user_id: int) -> int:
    user = await get_user(actor, user_id)
    require_user_access(actor, user, "delete", self_ok=False)
    if not isinstance(actor, SystemActor) and actor.id == user.id:
        raise InvalidInput("you cannot delete yourself", field="id")
    if await _is_last_super_admin(user):
        raise InvalidInput("the last active super_admin cannot be deleted", field="id")
    # owner_id is a plain column (no FK constraint), so clear it by hand.
    await Organization.filter(owner_id=user.id).update(owner_id=None)
    await user.delete()
    await audit.record(actor, "user.delete", f"user:{user_id}")
    await gw.config_changed("tenancy")
    await gw.config_changed("keys")
    return user_id


# -- organizations -----------------------------------------------------------------------------


async def get_org(actor: Actor, org_id: int) -> Organization:
    org = await found(Organization, org_id, "organization")
    if not is_super(actor):
        if isinstance(actor, SystemActor) or actor.organization_id != org.id:  # type: ignore[attr-defined]
            raise Forbidden("you may only view your own organization")
    return org


async def list_orgs(
    actor: Actor,
    *,
    search: str | None = None,
    sort: str = "CREATED_DESC",
    first: int | None = None,
    after: str | None = None,
) -> Page[Organization]:
    scope = org_scope(actor, "list organizations")
    qs: QuerySet[Organization] = Organization.all()
    if scope is not None:
        qs = qs.filter(id=scope)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    return await keyset_page(qs, ORG_SORTS[sort], first=first, after=after)


async def _owner(owner_id: Any) -> int | None:
    if owner_id is not None and not await User.exists(id=owner_id):
        raise InvalidInput(f"user {owner_id} does not exist", field="ownerId")
    return owner_id  # type: ignore[no-any-return]


async def create_org(gw: Gateway, actor: Actor, data: dict[str, Any]) -> Organization:
    require_super(actor, "create organizations")
    fields: dict[str, Any] = {
        "name": v.text(data.get("name"), "name"),
        "slug": v.slug(data.get("slug")),
        "owner_id": await _owner(data.get("owner_id")),
        "spend_cap_usd": v.money(data.get("spend_cap_usd"), "spendCapUsd"),
        "cap_period": v.choice(data.get("cap_period", "monthly"), "capPeriod", CAP_PERIODS),
        "rollover": bool(data.get("rollover", False)),
        "dlp_enabled": bool(data.get("dlp_enabled", False)),
        "sso_only": bool(data.get("sso_only", False)),
    }
    if await Organization.exists(slug=fields["slug"]):
        raise InvalidInput("an organization with this slug already exists", field="slug")
    org = await Organization.create(**fields)
    await audit.record(actor, "org.create", f"org:{org.id}", fields=sorted(data))
    await gw.config_changed("tenancy")
    return org


async def update_org(
    gw: Gateway, actor: Actor, org_id: int, changes: dict[str, Any]
) -> Organization:
    require_super(actor, "update organizations")
    org = await get_org(actor, org_id)
    if "name" in changes:
        org.name = v.text(changes["name"], "name")
    if "slug" in changes:
        new_slug = v.slug(changes["slug"])
        if new_slug != org.slug and await Organization.exists(slug=new_slug):
            raise InvalidInput("an organization with this slug already exists", field="slug")
        org.slug = new_slug
    if "owner_id" in changes:
        org.owner_id = await _owner(changes["owner_id"])  # type: ignore[attr-defined]
    if "spend_cap_usd" in changes:
        org.spend_cap_usd = v.money(changes["spend_cap_usd"], "spendCapUsd")
    if "cap_period" in changes:
        org.cap_period = v.choice(changes["cap_period"], "capPeriod", CAP_PERIODS)
    if "rollover" in changes:
        org.rollover = bool(changes["rollover"])
    if "dlp_enabled" in changes:
        org.dlp_enabled = bool(changes["dlp_enabled"])
    if "sso_only" in changes:
        org.sso_only = bool(changes["sso_only"])
    await org.save()
    await audit.record(actor, "org.update", f"org:{org.id}", fields=sorted(changes))
    await gw.config_changed("tenancy")
    return org


async def delete_org(gw: Gateway, actor: Actor, org_id: int) -> int:
    require_super(actor, "delete organizations")
    org = await get_org(actor, org_id)
    await org.delete()
    await audit.record(actor, "org.delete", f"org:{org_id}")
    for domain in ("tenancy", "routing", "dlp"):
        await gw.config_changed(domain)
    return org_id


# -- apps --------------------------------------------------------------------------------------


async def get_app(actor: Actor, app_id: int) -> App:
    app = await found(App, app_id, "app")
    require_org(actor, app.organization_id, "view apps")  # type: ignore[attr-defined]
    return app


async def list_apps(
    actor: Actor,
    *,
    search: str | None = None,
    organization_id: int | None = None,
    active: bool | None = None,
    sort: str = "CREATED_DESC",
    first: int | None = None,
    after: str | None = None,
) -> Page[App]:
    scope = org_scope(actor, "list apps")
    qs: QuerySet[App] = App.all()
    if scope is not None:
        qs = qs.filter(organization_id=scope)
    if organization_id is not None:
        qs = qs.filter(organization_id=organization_id)
    if active is not None:
        qs = qs.filter(active=active)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    return await keyset_page(qs, APP_SORTS[sort], first=first, after=after)


async def create_app(gw: Gateway, actor: Actor, data: dict[str, Any]) -> App:
    org_id = data.get("organization_id")
    if not is_super(actor):
        org_id = org_scope(actor, "create apps") if org_id is None else org_id
        require_org(actor, org_id, "create apps")
    fields: dict[str, Any] = {
        "name": v.text(data.get("name"), "name"),
        "slug": v.slug(data.get("slug")),
        "contact": v.text(data.get("contact"), "contact", max_len=320, required=False),
        "active": bool(data.get("active", True)),
        "dlp_enabled": bool(data.get("dlp_enabled", False)),
        "organization_id": await _org_exists(org_id),
    }
    if await App.exists(slug=fields["slug"]):
        raise InvalidInput("an app with this slug already exists", field="slug")
    app = await App.create(**fields)
    await audit.record(actor, "app.create", f"app:{app.id}", fields=sorted(data))
    await gw.config_changed("tenancy")
    return app


async def update_app(gw: Gateway, actor: Actor, app_id: int, changes: dict[str, Any]) -> App:
    app = await get_app(actor, app_id)
    require_org(actor, app.organization_id, "update apps")  # type: ignore[attr-defined]
    if "name" in changes:
        app.name = v.text(changes["name"], "name")
    if "slug" in changes:
        new_slug = v.slug(changes["slug"])
        if new_slug != app.slug and await App.exists(slug=new_slug):
            raise InvalidInput("an app with this slug already exists", field="slug")
        app.slug = new_slug
    if "contact" in changes:
        app.contact = v.text(changes["contact"], "contact", max_len=320, required=False)
    if "active" in changes:
        app.active = bool(changes["active"])
    if "dlp_enabled" in changes:
        app.dlp_enabled = bool(changes["dlp_enabled"])
    if "organization_id" in changes:
        org_id = await _org_exists(changes["organization_id"])
        require_org(actor, org_id, "move apps")
        app.organization_id = org_id  # type: ignore[attr-defined]
    await app.save()
    await audit.record(actor, "app.update", f"app:{app.id}", fields=sorted(changes))
    await gw.config_changed("tenancy")
    return app


async def delete_app(gw: Gateway, actor: Actor, app_id: int) -> int:
    app = await get_app(actor, app_id)
    await app.delete()
    await audit.record(actor, "app.delete", f"app:{app_id}")
    for domain in ("tenancy", "keys", "dlp"):
        await gw.config_changed(domain)
    return app_id


async def member_counts(org_ids: list[int]) -> dict[int, int]:
    from tortoise.functions import Count

    rows = (
        await User.filter(organization_id__in=org_ids)
        .annotate(n=Count("id"))
        .group_by("organization_id")
        .values("organization_id", "n")
    )
    return {r["organization_id"]: r["n"] for r in rows}
