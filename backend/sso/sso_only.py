"""Organizations that sign in with SSO only: their members' passwords are refused.

Applies to the organization's members and org_admins. super_admins keep their password even in
such an organization: they are the way back in when the provider is down or misconfigured
(break-glass). Automation tokens (``sba-``) are not passwords and keep working.
"""

from __future__ import annotations

from backend.admin.errors import AdminError
from backend.data.models.tenancy import Organization, User

MESSAGE = (
    "your organization signs in with single sign-on only: use 'Sign in with SSO' on the "
    "dashboard's login page"
)


class SsoRequired(AdminError):
    code = "SSO_REQUIRED"


async def password_refused(user: User) -> bool:
    """True when ``user`` may not use a password (their organization is SSO-only)."""
    org_id = user.organization_id  # type: ignore[attr-defined]
    if org_id is None or user.role == "super_admin":
        return False
    return await Organization.filter(id=org_id, sso_only=True).exists()
