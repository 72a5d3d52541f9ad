"""Provider health agrees with the error counts shown beside it, and an Ollama configured through
OLLAMA_BASE_URL (not the gateway setting) reads as configured, with its discovery state."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from backend.admin.dashboard import health_of
from backend.data.models.logs import UsageRollup
from backend.providers.base import ProviderConfig
from tests.graphql.harness import T0, Env, World, data, gql, roll_up_days

LOAD = "{ dashboard { providerLoad { provider requests errors errorRate health } } }"
SETTINGS = "{ gatewaySettings { ollama { baseUrl connected configuredBy healthy lastError } } }"


@pytest.mark.parametrize(
    ("rate", "breaker", "health"),
    [
        (0.0, None, "healthy"),
        (0.04, "healthy", "healthy"),
        (0.05, None, "degraded"),
        (0.5, "healthy", "down"),
        (1.0, "healthy", "down"),
        (0.0, "down", "down"),
        (0.1, "recovering", "degraded"),
        (0.0, "recovering", "recovering"),
    ],
)
def test_health_is_the_worse_of_error_rate_and_breakers(
    rate: float, breaker: str | None, health: str
) -> None:
    assert health_of(rate, breaker) == health


class ClosedBreakers:
    def health(self) -> list[dict[str, Any]]:
        return [{"provider": "anthropic", "model": None, "state": "closed"}]


async def test_all_errors_never_read_healthy(env: Env, world: World) -> None:
    bucket = T0.replace(minute=0, second=0) - dt.timedelta(hours=1)
    for provider, n, errors in (("anthropic", 22, 22), ("openai", 40, 1)):
        await UsageRollup.create(
            bucket=bucket,
            user_id=world.users["member_a"].id,
            org_id=world.org_a.id,
            model=f"{provider}/m",
            provider=provider,
            requests=n,
            errors=errors,
            cost_usd=Decimal(0),
        )
    await roll_up_days()
    env.gw.router = ClosedBreakers()  # its breakers are closed: they alone would say healthy
    rows = data(await gql(env, LOAD, token=world.token("super")))["dashboard"]["providerLoad"]
    by_name = {r["provider"]: (r["errors"], r["requests"], r["health"]) for r in rows}
    assert by_name == {"anthropic": (22, 22, "DOWN"), "openai": (1, 40, "HEALTHY")}


class EnvOllama:
    def configured(self) -> dict[str, ProviderConfig]:
        return {"ollama": ProviderConfig("ollama", "ollama", "http://10.0.0.5:11434")}


class Discovery:
    def ollama_status(self) -> dict[str, Any]:
        return {"healthy": True, "models": ["ollama/llama3.2"], "error": None}


async def test_ollama_from_the_environment_reads_configured(env: Env, world: World) -> None:
    sup = world.token("super")
    off = data(await gql(env, SETTINGS, token=sup))["gatewaySettings"]["ollama"]
    assert off == {
        "baseUrl": None,
        "connected": False,
        "configuredBy": None,
        "healthy": None,
        "lastError": None,
    }
    env.gw.providers = EnvOllama()
    env.gw.router = Discovery()
    on = data(await gql(env, SETTINGS, token=sup))["gatewaySettings"]["ollama"]
    assert on == {
        "baseUrl": "http://10.0.0.5:11434",
        "connected": True,
        "configuredBy": "provider",
        "healthy": True,
        "lastError": None,
    }
