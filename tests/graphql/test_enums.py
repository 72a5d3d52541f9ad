"""The GraphQL enums carry exactly the values the gateway stores and validates.

Each enum's Python values are the strings of the database and the admin services, so a value
added on one side only (a new role, a new strategy) fails here instead of in production, where
a stored value without an enum member could not be answered.
"""

from __future__ import annotations

from enum import Enum
from typing import get_args

import pytest

from backend.admin.access import ROLES
from backend.admin.dlp import SCOPES as DLP_SCOPES
from backend.admin.keys import KEY_STATUSES
from backend.admin.reports import SOURCES
from backend.admin.settings import KNOWN_FEATURES
from backend.admin.tenancy import CAP_PERIODS, STATUSES
from backend.graphql import enums
from backend.providers.credentials import KINDS
from backend.routing.catalog import CatalogSource
from backend.routing.resolve import TIERS
from backend.routing.strategy import STRATEGIES

STORED: list[tuple[type[Enum], object]] = [
    (enums.Role, ROLES),
    (enums.UserStatus, STATUSES),
    (enums.CapPeriod, CAP_PERIODS),
    (enums.ApiKeyStatus, KEY_STATUSES),
    (enums.RoutingStrategy, STRATEGIES),
    (enums.CatalogSource, get_args(CatalogSource)),
    (enums.ProviderKind, KINDS),
    (enums.DlpScope, DLP_SCOPES),
    (enums.ErrorSource, SOURCES),
    (enums.AgentTier, TIERS),
    (enums.Feature, tuple(KNOWN_FEATURES)),
]


@pytest.mark.parametrize(("enum", "values"), STORED, ids=[e.__name__ for e, _ in STORED])
def test_enum_values_are_the_stored_strings(enum: type[Enum], values: object) -> None:
    assert {m.value for m in enum} == set(values)  # type: ignore[call-overload]


@pytest.mark.parametrize(("enum", "_"), STORED, ids=[e.__name__ for e, _ in STORED])
def test_graphql_names_are_the_values_in_upper_case(enum: type[Enum], _: object) -> None:
    for member in enum:
        assert member.name == str(member.value).upper().replace("-", "_")


def test_stored_and_plain_give_the_database_strings() -> None:
    assert enums.stored(enums.Role.ORG_ADMIN) == "org_admin"
    assert enums.stored(None) is None
    assert enums.plain([enums.RoutingStrategy.LEAST_BUSY, "x"]) == ["least-busy", "x"]
    assert enums.known(enums.Feature, ["response_cache", "retired"]) == [
        enums.Feature.RESPONSE_CACHE
    ]
