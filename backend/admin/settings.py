"""Gateway-wide settings (routing strategy, Ollama, offered features) and users' opt-ins.

Settings are rows of the ``settings`` table (one JSON value per key) and hot: each change
reloads the ``settings`` domain on every instance. Opt-ins are ``UserFeature`` rows (``tenancy``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import orjson
from tortoise.exceptions import IntegrityError

from backend.admin import audit
from backend.admin import validate as v
from backend.admin.access import Actor, require_super, require_user_access
from backend.admin.errors import InvalidInput
from backend.admin.lookup import found
from backend.data.models.settings import Setting, UserFeature
from backend.data.models.tenancy import User
from backend.gateway import Gateway
from backend.routing.strategy import STRATEGIES

ROUTING_STRATEGIES = STRATEGIES
#: Features users may opt into, with what they do (shown on the dashboard).
KNOWN_FEATURES: dict[str, str] = {
    "response_cache": "Exact-match response cache: identical requests are answered from the "
    "cache at no cost (never shared across organizations)",
}
MAX_CACHE_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class FeatureOptIn:
    name: str
    description: str
    offered: bool
    enabled: bool


async def _put(gw: Gateway, actor: Actor, key: str, value: Any) -> None:
    """Store a setting (None deletes it: the default applies)."""
    if value is None:
        await Setting.filter(key=key).delete()
    else:
        # Tortoise's JSONField takes a str as JSON *text* and cannot save a bare JSON string
        # through a model instance, so the value is written as JSON text by an UPDATE (which
        # stores text as given), creating the row first with a placeholder when it is missing.
        text = orjson.dumps(value).decode()
        if not await Setting.filter(key=key).update(value=text):
            with contextlib.suppress(IntegrityError):  # another instance created it meanwhile
                await Setting.create(key=key, value={})
            await Setting.filter(key=key).update(value=text)
    await audit.record(actor, "setting.set", f"setting:{key}")
    await gw.config_changed("settings")


async def set_routing_strategy(gw: Gateway, actor: Actor, strategy: str) -> str:
    require_super(actor, "change the routing strategy")
    value = v.choice(strategy, "strategy", ROUTING_STRATEGIES)
    await _put(gw, actor, "routing_strategy", value)
    return value


async def set_ollama_base_url(gw: Gateway, actor: Actor, base_url: str | None) -> str | None:
    """Point the gateway at an Ollama instance (None disconnects it)."""
    require_super(actor, "change the Ollama connection")
    value = v.http_url(base_url, "baseUrl")
    await _put(gw, actor, "ollama_base_url", value)
    return value


async def set_offered_features(gw: Gateway, actor: Actor, features: list[str]) -> list[str]:
    require_super(actor, "change offered features")
    for name in features:
        v.choice(name, "features", frozenset(KNOWN_FEATURES))
    value = sorted(set(features))
    await _put(gw, actor, "offered_features", value)
    return value


async def set_response_cache_ttl(gw: Gateway, actor: Actor, ttl_s: int) -> int:
    require_super(actor, "change the response cache TTL")
    value = v.int_range(ttl_s, "ttlSeconds", 1, MAX_CACHE_TTL_S, optional=False)
    await _put(gw, actor, "response_cache_ttl_s", value)
    return int(value or 0)


async def user_features(gw: Gateway, actor: Actor, user_id: int) -> list[FeatureOptIn]:
    user = await found(User, user_id, "user")
    require_user_access(actor, user, "view the feature opt-ins of", self_ok=True)
    offered = gw.store.settings.offered_features
    enabled = {f.feature for f in await UserFeature.filter(user_id=user_id, enabled=True)}
    return [
        FeatureOptIn(name, desc, name in offered, name in enabled and name in offered)
        for name, desc in KNOWN_FEATURES.items()
    ]


async def set_user_feature(
    gw: Gateway, actor: Actor, user_id: int, feature: str, enabled: bool
) -> list[FeatureOptIn]:
    """Opt a user in or out of an offered feature (members: only themselves)."""
    user = await found(User, user_id, "user")
    require_user_access(actor, user, "change the feature opt-ins of", self_ok=True)
    v.choice(feature, "feature", frozenset(KNOWN_FEATURES))
    if enabled and feature not in gw.store.settings.offered_features:
        raise InvalidInput(f"the gateway does not offer {feature!r}", field="feature")
    # Uniqueness of (user, feature) is kept here: the migration cannot declare it on SQLite.
    rows = await UserFeature.filter(user_id=user_id, feature=feature).order_by("id")
    if rows:
        rows[0].enabled = enabled
        await rows[0].save(update_fields=["enabled"])
        for extra in rows[1:]:
            await extra.delete()
    else:
        await UserFeature.create(user_id=user_id, feature=feature, enabled=enabled)
    await audit.record(actor, "feature.set", f"user:{user_id}", feature=feature, enabled=enabled)
    await gw.config_changed("tenancy")
    return await user_features(gw, actor, user_id)
