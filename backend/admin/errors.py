"""Errors of the admin services, each with a stable ``code`` (and the offending ``field``).

``extensions`` is read by graphql-core when it wraps an exception raised in a resolver, so these
surface as GraphQL errors with ``extensions: {code, field}`` and are never masked.
"""

from __future__ import annotations

from typing import Any


class AdminError(Exception):
    code = "ADMIN_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def extensions(self) -> dict[str, Any]:
        ext: dict[str, Any] = {"code": self.code}
        if self.field is not None:
            ext["field"] = self.field
        return ext


class InvalidInput(AdminError):
    code = "BAD_USER_INPUT"


class NotAuthenticated(AdminError):
    code = "UNAUTHENTICATED"


class Forbidden(AdminError):
    code = "FORBIDDEN"


class NotFound(AdminError):
    code = "NOT_FOUND"


class FailedPrecondition(AdminError):
    """The request is valid but the gateway is not set up for it (e.g. no secret key)."""

    code = "FAILED_PRECONDITION"
