"""Caller authentication for the proxy endpoints: key -> Principal, from the hot config cache.

Accepts ``Authorization: Bearer <key>``, ``x-api-key: <key>`` (the Anthropic SDK sends either) and
``x-goog-api-key: <key>`` (Gemini's; the Gemini door also takes ``?key=``, see ``proxy.gemini``).
No database round trip: keys, users, apps and organizations come from the ``ConfigStore``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from backend.ir.errors import AuthenticationError, PermissionDenied
from backend.security.api_keys import hash_key
from backend.state.snapshot import Keys, Principal, Tenancy
from backend.state.store import ConfigStore


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in ("x-api-key", "x-goog-api-key"):  # Anthropic's header, Gemini's
        key = headers.get(name)
        if key and key.strip():
            return key.strip()
    return None


def authenticate(
    headers: Mapping[str, str], keys: Keys, tenancy: Tenancy, now: dt.datetime
) -> Principal:
    secret = presented_key(headers)
    if secret is None:
        raise AuthenticationError(
            "Missing API key: send it as 'Authorization: Bearer <key>', 'x-api-key: <key>' or "
            "(Gemini API) 'x-goog-api-key: <key>' or the 'key' query parameter.",
            code="missing_api_key",
        )
    info = keys.by_hash.get(hash_key(secret))
    if info is None:
        raise AuthenticationError("Invalid API key.", code="invalid_api_key")
    if info.revoked:
        raise AuthenticationError(
            f"API key {info.prefix} has been revoked.",
            code="revoked_api_key",
            detail={"key_prefix": info.prefix},
        )
    if info.expires_at is not None and info.expires_at <= now:
        raise AuthenticationError(
            f"API key {info.prefix} expired at {info.expires_at.isoformat()}.",
            code="expired_api_key",
            detail={"key_prefix": info.prefix},
        )
    user = tenancy.users.get(info.user_id) if info.user_id is not None else None
    app = tenancy.apps.get(info.app_id) if info.app_id is not None else None
    if user is None and app is None:
        raise AuthenticationError(
            "Invalid API key (its owner no longer exists).", code="invalid_api_key"
        )
    if user is not None and user.status != "active":
        raise PermissionDenied(
            f"User {user.email} is suspended.",
            code="user_suspended",
            detail={"key_prefix": info.prefix},
        )
    if app is not None and not app.active:
        raise PermissionDenied(
            f"App {app.slug} is inactive.", code="app_inactive", detail={"key_prefix": info.prefix}
        )
    org_id = user.org_id if user is not None else (app.org_id if app is not None else None)
    org = tenancy.orgs.get(org_id) if org_id is not None else None
    return Principal(info, user, app, org)


async def principal_for(
    headers: Mapping[str, str], store: ConfigStore, now: dt.datetime
) -> Principal:
    """``authenticate`` against the cache; an unknown key triggers one throttled key reload.

    That lets a key created outside any running instance (``switchboard bootstrap``) work at once
    without putting a database query on the path of every request.
    """
    try:
        return authenticate(headers, store.keys, store.tenancy, now)
    except AuthenticationError as err:
        if err.code != "invalid_api_key" or not await store.refresh_keys_throttled():
            raise
    return authenticate(headers, store.keys, store.tenancy, now)
