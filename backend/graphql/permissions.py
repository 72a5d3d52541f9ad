"""Coarse role gates for fields; row-level scope is checked by the admin services.

Each gate raises an ``AdminError`` itself so the GraphQL error says exactly what is missing
(``UNAUTHENTICATED`` without a valid token, ``FORBIDDEN`` for a role that may not).
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from backend.admin.access import is_admin, is_super
from backend.admin.errors import Forbidden
from backend.graphql.context import Info, viewer


class IsAuthenticated(BasePermission):
    message = "authentication required"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer(info)
        return True


class IsAdmin(BasePermission):
    message = "only a super_admin or org_admin may do this"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not is_admin(viewer(info)):
            raise Forbidden(self.message)
        return True


class IsSuperAdmin(BasePermission):
    message = "only a super_admin may do this"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not is_super(viewer(info)):
            raise Forbidden(self.message)
        return True
