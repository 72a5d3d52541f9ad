"""The schema's fixed sets of values as GraphQL enums.

Each Python value is the string the gateway stores and its services validate (``ROLES``,
``STATUSES``, ``STRATEGIES``...: ``tests/graphql/test_enums.py`` holds them equal), so the database,
the admin services and the request path keep their strings; only the GraphQL layer converts, with
``stored`` on the way in and ``Enum(value)`` on the way out. GraphQL names are the values in
upper case with ``_`` for ``-`` (``least-busy`` is ``LEAST_BUSY``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar, overload

import strawberry
from strawberry import enum_value as value

E = TypeVar("E", bound=Enum)


@overload
def stored(member: Enum) -> str: ...
@overload
def stored(member: Enum | None) -> str | None: ...
def stored(member: Enum | None) -> str | None:
    """The stored string of an enum argument (``None`` stays ``None``)."""
    return None if member is None else str(member.value)


def plain(data: Any) -> Any:
    """``data`` with every enum member, also inside lists, replaced by its stored string."""
    if isinstance(data, Enum):
        return str(data.value)
    if isinstance(data, list):
        return [plain(x) for x in data]
    return data


def known(enum: type[E], values: Any) -> list[E]:
    """The members of ``values`` this enum knows, in order (a stale stored name is dropped)."""
    names = {str(m.value) for m in enum}
    return [enum(v) for v in values if v in names]


@strawberry.enum(description="What a user may do.")
class Role(Enum):
    SUPER_ADMIN = value("super_admin", description="Everything, in every organization.")
    ORG_ADMIN = value(
        "org_admin", description="Administers the users, apps and keys of their organization."
    )
    MEMBER = value("member", description="Uses the gateway with their own keys.")


@strawberry.enum(description="Whether a user may use the gateway and the dashboard.")
class UserStatus(Enum):
    ACTIVE = value("active", description="May log in and make requests.")
    SUSPENDED = value("suspended", description="Refused: no login, keys refused.")


@strawberry.enum(description="The period a spend cap covers (UTC).")
class CapPeriod(Enum):
    DAILY = value("daily", description="Calendar day (00:00 UTC).")
    WEEKLY = value("weekly", description="ISO week (Monday 00:00 UTC).")
    MONTHLY = value("monthly", description="Calendar month (UTC).")


@strawberry.enum(description="Whether an API key is accepted now.")
class ApiKeyStatus(Enum):
    ACTIVE = value("active", description="Accepted.")
    REVOKED = value("revoked", description="Revoked: refused for good.")
    EXPIRED = value("expired", description="Past its expiry time: refused.")


@strawberry.enum(description="Whom an API key belongs to.")
class ApiKeyKind(Enum):
    USER = value("user", description="A user's key: billed to the user and their organization.")
    APP = value("app", description="An app's key: billed to the app's organization.")


@strawberry.enum(description="Where a model alias applies.")
class AliasScope(Enum):
    GLOBAL = value("global", description="Every organization (unless it has its own alias).")
    ORG = value("org", description="One organization; beats a global alias of the same name.")


@strawberry.enum(description="How a request's candidates (primary, fallbacks) are ordered.")
class RoutingStrategy(Enum):
    ORDERED = value("ordered", description="As configured: the primary, then its chain in order.")
    CHEAPEST = value("cheapest", description="Lowest price per token first.")
    FASTEST = value("fastest", description="Lowest recent latency first.")
    LEAST_BUSY = value("least-busy", description="Fewest requests in flight first.")
    ROUND_ROBIN = value("round-robin", description="Rotate the candidates, one step per request.")


@strawberry.enum(description="Where a catalog model's entry comes from.")
class CatalogSource(Enum):
    PRICE_TABLE = value("price-table", description="The gateway's built-in price table.")
    OLLAMA = value("ollama", description="Discovered on the connected Ollama instance.")
    CONFIG = value(
        "config", description="Named by an alias target, a fallback chain or an agent tier."
    )


@strawberry.enum(description="The API a provider connection speaks.")
class ProviderKind(Enum):
    OPENAI = value("openai", description="OpenAI (or an OpenAI-compatible server at baseUrl).")
    AZURE = value("azure", description="Azure OpenAI (deployment and API version).")
    ANTHROPIC = value("anthropic", description="Anthropic Messages API.")
    GEMINI = value("gemini", description="Google Gemini.")
    OLLAMA = value("ollama", description="An Ollama server.")


@strawberry.enum(description="What DLP protection is attached to.")
class DlpScope(Enum):
    ORG = value("org", description="An organization: applies to its users' keys.")
    APP = value("app", description="An app: applies to the app's keys.")


@strawberry.enum(description="Whether DLP protection is on.")
class DlpStatus(Enum):
    ON = value("on", description="Requests are scanned and redacted.")
    OFF = value("off", description="Requests pass unscanned.")


@strawberry.enum(description="What DLP did to a request.")
class DlpActivityKind(Enum):
    REDACT = value("redact", description="Replaced matches with placeholders before sending.")
    RESTORE = value("restore", description="Put the original values back into the answer.")
    BLOCK = value("block", description="Refused the request.")


@strawberry.enum(description="Who recorded an error report.")
class ErrorSource(Enum):
    GATEWAY = value("gateway", description="The gateway, on a failed request.")
    CLIENT = value("client", description="A client (reportError or POST /v1/error-reports).")


@strawberry.enum(description="A provider's health, from its circuit breakers.")
class ProviderHealth(Enum):
    HEALTHY = value("healthy", description="Every breaker closed.")
    DEGRADED = value("degraded", description="Some models' breakers open.")
    RECOVERING = value("recovering", description="The provider's breaker is trying again.")
    DOWN = value("down", description="The provider's breaker is open: requests skip it.")


@strawberry.enum(description="An agent's model tier ('agent/<id>:<tier>' or x-switchboard-tier).")
class AgentTier(Enum):
    NORMAL = value("normal", description="The agent's normal model (the default).")
    HEAVY = value("heavy", description="The agent's heavy model (else the normal one).")
    MAX = value("max", description="The agent's max model (else the normal one).")


@strawberry.enum(description="An optional feature the gateway may offer and users opt into.")
class Feature(Enum):
    RESPONSE_CACHE = value(
        "response_cache",
        description="Exact-match response cache: identical requests answered at no cost.",
    )
