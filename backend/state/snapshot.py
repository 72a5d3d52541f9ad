"""Immutable views of configuration the hot path reads without touching the database.

Each domain is a frozen object replaced as a whole when the database changes (``ConfigStore``), so
a request sees one consistent version and readers never lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Limits:
    """What an organization, user, app or key may use, beyond the caps older columns hold.

    ``None`` means no limit. ``allowed_models`` holds glob patterns of models or aliases.
    ``spend_cap_usd`` / ``cap_period`` are set for apps and keys only (users and organizations
    keep their caps in their own columns).
    """

    rpm: int | None = None
    tpm: int | None = None
    allowed_models: tuple[str, ...] | None = None
    spend_cap_usd: Decimal | None = None
    cap_period: str = "monthly"


NO_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class OrgInfo:
    id: int
    name: str
    slug: str
    spend_cap_usd: Decimal | None = None
    cap_period: str = "monthly"  # weekly | monthly
    rollover: bool = False
    dlp_enabled: bool = False
    limits: Limits = field(default_factory=lambda: NO_LIMITS)


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    email: str
    status: str = "active"
    role: str = "member"
    weekly_cap_usd: Decimal | None = None
    org_id: int | None = None
    limits: Limits = field(default_factory=lambda: NO_LIMITS)


@dataclass(frozen=True, slots=True)
class AppInfo:
    id: int
    name: str
    slug: str
    active: bool = True
    dlp_enabled: bool = False
    org_id: int | None = None
    limits: Limits = field(default_factory=lambda: NO_LIMITS)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: int
    prefix: str
    user_id: int | None
    app_id: int | None
    rate_limit_rpm: int | None = None
    expires_at: dt.datetime | None = None
    revoked: bool = False
    #: Tokens per minute, the key's own spend cap and its model allowlist (``rate_limit_rpm``
    #: above is its requests per minute).
    limits: Limits = field(default_factory=lambda: NO_LIMITS)
    #: First key of its rotation chain (``ApiKey.lineage_id``); None: this key is the first.
    lineage_id: int | None = None

    @property
    def counter_id(self) -> int:
        """Id scoping the key's spend-cap and rate-limit counters: shared by a key and the keys
        rotated from it, so rotating does not reset them."""
        return self.id if self.lineage_id is None else self.lineage_id


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key and what it belongs to, resolved once per request."""

    key: KeyInfo
    user: UserInfo | None
    app: AppInfo | None
    org: OrgInfo | None

    @property
    def org_id(self) -> int | None:
        return self.org.id if self.org else None


@dataclass(frozen=True, slots=True)
class Tenancy:
    orgs: dict[int, OrgInfo] = field(default_factory=dict)
    users: dict[int, UserInfo] = field(default_factory=dict)
    apps: dict[int, AppInfo] = field(default_factory=dict)
    #: Users' opted-in features: user id -> feature names.
    user_features: dict[int, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Keys:
    by_hash: dict[str, KeyInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentInfo:
    agent_id: str
    name: str
    role: str
    normal_model: str
    heavy_model: str | None
    max_model: str | None


@dataclass(frozen=True, slots=True)
class PriceOverride:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_per_mtok: Decimal | None = None
    context_window: int | None = None


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    #: requested model -> target, global aliases.
    global_aliases: dict[str, str] = field(default_factory=dict)
    #: org id -> (requested model -> target).
    org_aliases: dict[int, dict[str, str]] = field(default_factory=dict)
    agents: dict[str, AgentInfo] = field(default_factory=dict)
    #: primary model -> ordered fallback models.
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    prices: dict[str, PriceOverride] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Values of the ``settings`` table with defaults applied."""

    routing_strategy: str = "ordered"
    ollama_base_url: str | None = None
    #: Features users may opt into (e.g. {"response_cache"}).
    offered_features: frozenset[str] = frozenset()
    response_cache_ttl_s: int = 300
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DlpPolicyInfo:
    id: int
    scope: str  # org | app
    org_id: int | None
    app_id: int | None
    rules: tuple[str, ...]
    custom_rules: tuple[tuple[str, str], ...]
