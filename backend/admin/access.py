"""Who may do what: roles and organization scope, checked by every admin service.

- ``super_admin``: everything.
- ``org_admin``: users, apps, keys, aliases, DLP and usage of their own organization.
- ``member``: their own keys, usage and feature opt-ins.

``SYSTEM`` is the CLI and internal callers: unrestricted, and deliberately a distinct object so
that a missing viewer (``None``) can never be mistaken for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.admin.errors import Forbidden
from backend.data.models.tenancy import User

ROLES = ("super_admin", "org_admin", "member")


@dataclass(frozen=True)
class SystemActor:
    role: str = "super_admin"
    id: None = None


SYSTEM = SystemActor()

Actor = User | SystemActor


def actor_id(actor: Actor) -> int | None:
    return None if isinstance(actor, SystemActor) else actor.id


def is_super(actor: Actor) -> bool:
    return actor.role == "super_admin"


def is_admin(actor: Actor) -> bool:
    return actor.role in ("super_admin", "org_admin")


def own_org(actor: Actor) -> int | None:
    return None if isinstance(actor, SystemActor) else actor.organization_id  # type: ignore[attr-defined]


def require_super(actor: Actor, action: str) -> None:
    if not is_super(actor):
        raise Forbidden(f"only a super_admin may {action}")


def require_admin(actor: Actor, action: str) -> None:
    if not is_admin(actor):
        raise Forbidden(f"only a super_admin or org_admin may {action}")


def org_scope(actor: Actor, action: str) -> int | None:
    """The organization an admin's reads are limited to: None means every organization.

    An org_admin without an organization has nothing to administer and is refused.
    """
    require_admin(actor, action)
    if is_super(actor):
        return None
    org_id = own_org(actor)
    if org_id is None:
        raise Forbidden(f"an org_admin without an organization cannot {action}")
    return org_id


def require_org(actor: Actor, org_id: int | None, action: str) -> None:
    """An admin acting on something that belongs to ``org_id`` (None: global)."""
    scope = org_scope(actor, action)
    if scope is not None and org_id != scope:
        raise Forbidden(f"you may only {action} in your own organization")


def require_user_access(actor: Actor, user: User, action: str, *, self_ok: bool) -> None:
    """Admins of the user's organization, or the user themself when ``self_ok``."""
    if is_super(actor):
        return
    if self_ok and not isinstance(actor, SystemActor) and actor.id == user.id:
        return
    if actor.role == "org_admin":
        if user.role == "super_admin":
            raise Forbidden(f"an org_admin may not {action} a super_admin")
        require_org(actor, user.organization_id, action)  # type: ignore[attr-defined]
        return
    raise Forbidden(f"you may not {action} another user")
