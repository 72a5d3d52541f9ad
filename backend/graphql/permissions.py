"""Coarse role gates for fields; row-level scope is checked by the admin services.

Each gate raises an ``AdminError`` itself so the GraphQL error says exactly what is missing
(``UNAUTHENTICATED`` without a valid token, ``FORBIDDEN`` for a role that may not). ``roles`` is
the whole rule of a gate: the authorization audit (``backend.graphql.authz``) reads it to build
docs/AUTHZ.md, so a gate must not decide on anything else.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from backend.admin.access import ROLES
from backend.admin.errors import Forbidden
from backend.graphql.context import Info, viewer


class RoleGate(BasePermission):
    """Let through an authenticated viewer whose role is in ``roles``."""

    roles: ClassVar[frozenset[str]] = frozenset()
    message = "not allowed"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if viewer(info).role not in self.roles:
            raise Forbidden(self.message)
        return True


class IsAuthenticated(RoleGate):
    roles = frozenset(ROLES)
    message = "authentication required"


class IsAdmin(RoleGate):
    roles = frozenset({"super_admin", "org_admin"})
    message = "only a super_admin or org_admin may do this"


class IsSuperAdmin(RoleGate):
    roles = frozenset({"super_admin"})
    message = "only a super_admin may do this"
