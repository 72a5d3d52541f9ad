"""First-run setup: make sure a super_admin exists and hand out a fresh API key for it."""

from __future__ import annotations

from backend.admin import validate as v
from backend.admin.errors import InvalidInput
from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import User
from backend.security.api_keys import generate_key
from backend.security.passwords import hash_password, password_problem


async def bootstrap_super_admin(
    email: str, password: str, name: str | None = None
) -> tuple[User, str]:
    """Create or update the super_admin ``email``, set its password, return a NEW key's secret.

    Idempotent for the user (running it twice leaves one user, active, super_admin, with the
    latest password); every run adds one API key, since a key's secret cannot be shown again.
    Running gateways pick the key up on their next key reload (an unknown key triggers one).
    """
    addr = v.email(email)
    problem = password_problem(password)
    if problem:
        raise InvalidInput(f"password {problem}", field="password")
    display = v.text(name, "name") if name else None
    user = await User.get_or_none(email=addr)
    if user is None:
        user = await User.create(
            name=display or addr.split("@")[0],
            email=addr,
            role="super_admin",
            status="active",
            password_hash=hash_password(password),
        )
    else:
        user.role = "super_admin"
        user.status = "active"
        user.password_hash = hash_password(password)
        if display:
            user.name = display
        await user.save()
    secret, prefix, digest = generate_key()
    await ApiKey.create(name="bootstrap", prefix=prefix, key_hash=digest, user=user)
    return user, secret
