"""The Router facade: live strategy switch, price book refresh, catalog, health, parsing."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

from backend.ir.errors import UpstreamError, UpstreamUnavailable
from backend.providers.base import ProviderConfig
from backend.routing.router import Router
from backend.state.snapshot import AgentInfo, GatewaySettings, PriceOverride, RoutingConfig
from tests.fakes.ollama_fake import OllamaFake
from tests.routing.helpers import FakeClock, user_principal

A, B, C = "openai/model-a", "openai/model-b", "openai/model-c"


def priced_routing() -> RoutingConfig:
    return RoutingConfig(
        prices={
            A: PriceOverride(Decimal(5), Decimal(5)),
            B: PriceOverride(Decimal(1), Decimal(1)),
            C: PriceOverride(Decimal(3), Decimal(3)),
        }
    )


def test_strategy_switch_takes_effect_on_the_very_next_order_call() -> None:
    settings = {"routing_strategy": "ordered"}
    routing = priced_routing()
    router = Router(strategy=lambda: settings["routing_strategy"], routing=lambda: routing)
    router.stats.latency.observe(A, 0.1)
    router.stats.latency.observe(B, 0.9)
    router.stats.latency.observe(C, 0.5)

    assert router.order([A, B, C]) == [A, B, C]
    settings["routing_strategy"] = "cheapest"
    assert router.strategy() == "cheapest"
    assert router.order([A, B, C]) == [B, C, A]
    settings["routing_strategy"] = "fastest"
    assert router.order([A, B, C]) == [A, C, B]
    settings["routing_strategy"] = "round-robin"
    assert router.order([A, B, C]) == [A, B, C]
    assert router.order([A, B, C]) == [B, C, A]
    settings["routing_strategy"] = "least-busy"
    with router.in_flight(A), router.in_flight(B):
        assert router.order([A, B, C]) == [C, A, B]
    settings["routing_strategy"] = "bogus"
    assert router.order([C, B, A]) == [C, B, A]


def test_price_book_follows_the_routing_snapshot() -> None:
    current = {"routing": priced_routing()}
    router = Router(routing=lambda: current["routing"])
    book = router.prices
    assert router.prices is book  # same snapshot: same memo
    p = book.price(A)
    assert p is not None and p.input_per_mtok == 5
    current["routing"] = RoutingConfig(prices={A: PriceOverride(Decimal(7), Decimal(7))})
    p = router.prices.price(A)
    assert router.prices is not book and p is not None and p.input_per_mtok == 7


def test_without_a_routing_getter_the_last_resolved_snapshot_prices() -> None:
    router = Router()
    routing = RoutingConfig(
        global_aliases={"x": "gpt-4o"},
        prices={"openai/gpt-4o": PriceOverride(Decimal(1), Decimal(2))},
    )
    res = router.resolve("x", user_principal(1), routing)
    assert res.primary == "openai/gpt-4o"
    p = router.prices.price("openai/gpt-4o")
    assert p is not None and p.source == "override"


def test_resolve_and_parse_know_custom_providers_and_ollama_models() -> None:
    router = Router(providers=lambda: ["groq", "openai"])
    router.set_ollama_models(["llama3.2:latest", "qwen3:8b"], healthy=True)
    ref = router.parse("groq/llama-3.1-8b")
    assert (ref.provider, ref.model) == ("groq", "llama-3.1-8b")
    assert router.parse("ollama/qwen3:8b").model == "qwen3:8b"
    res = router.resolve("llama3.2", None, RoutingConfig(), tier=None)
    assert res.candidates == ["ollama/llama3.2"]


def test_catalog_lists_every_servable_model() -> None:
    clock = FakeClock()
    routing = RoutingConfig(
        global_aliases={"fast": "groq/llama-3.1-8b-instant"},
        org_aliases={3: {"fast": "azure/prod-4o"}},
        agents={
            "coder": AgentInfo("coder", "Coder", "", "anthropic/claude-sonnet-4-5", None, None)
        },
        chains={"openai/gpt-4o": ("gemini/gemini-2.5-flash",)},
        prices={"azure/prod-4o": PriceOverride(Decimal(2), Decimal(8), Decimal(1), 128000)},
    )
    router = Router(routing=lambda: routing, clock=clock, wall=clock, failure_threshold=1)
    router.set_ollama_models(["llama3.2:latest", "qwen3:8b"], healthy=True)
    router.record_failure("openai/gpt-4o", UpstreamError("boom"))  # open circuit: unreachable now

    entries = {e.model: e for e in router.catalog(["openai", "anthropic", "ollama", "azure"])}
    # Looking at the catalog creates no breakers: health lists only what was called.
    breakers = [r for r in router.health() if r["kind"] == "breaker"]
    assert [(r["provider"], r["model"]) for r in breakers] == [
        ("openai", None),
        ("openai", "gpt-4o"),
    ]

    mini = entries["openai/gpt-4o-mini"]
    assert (mini.source, mini.provider, mini.reachable) == ("price-table", "openai", True)
    assert mini.input_per_mtok == Decimal("0.15") and mini.output_per_mtok == Decimal("0.6")
    assert mini.cached_per_mtok == Decimal("0.075") and mini.context_window == 128000
    assert entries["openai/gpt-4o"].reachable is False
    assert entries["anthropic/claude-sonnet-4-5"].source == "price-table"

    llama = entries["ollama/llama3.2"]
    assert (llama.source, llama.input_per_mtok, llama.output_per_mtok, llama.reachable) == (
        "ollama",
        0,
        0,
        True,
    )
    assert "ollama/qwen3:8b" in entries

    azure = entries["azure/prod-4o"]  # named by an org alias, priced by an override
    assert (azure.source, azure.input_per_mtok, azure.context_window) == ("config", 2, 128000)
    # Named by config but its provider is not configured: listed, not reachable, price known.
    gemini = entries["gemini/gemini-2.5-flash"]
    assert (gemini.source, gemini.reachable) == ("config", False)
    assert gemini.input_per_mtok == Decimal("0.3")
    # An alias target at a provider the gateway does not know is not servable: not listed.
    assert "groq/llama-3.1-8b-instant" not in entries
    # Gemini's table is not listed wholesale when gemini is not configured.
    assert "gemini/gemini-2.5-pro" not in entries
    assert not any(e.provider == "azure" and e.source == "price-table" for e in entries.values())

    # A custom OpenAI-compatible provider named like a table provider gets the table's models.
    entries = {e.model: e for e in router.catalog(["groq"])}
    groq = entries["groq/llama-3.1-8b-instant"]
    assert (groq.source, groq.reachable) == ("price-table", True)
    assert groq.input_per_mtok == Decimal("0.05")


def test_catalog_marks_ollama_unreachable_when_discovery_fails() -> None:
    router = Router()
    router.set_ollama_models(["llama3.2:latest"], healthy=True)
    router.set_ollama_models(None, healthy=False, error="connection failed (ConnectError)")
    entries = {e.model: e for e in router.catalog(["ollama"])}
    assert entries["ollama/llama3.2"].reachable is False  # last known list, marked down
    assert router.available("ollama/llama3.2")  # one failed probe alone does not block requests
    router.set_ollama_models(None, healthy=False, error="connection failed (ConnectError)")
    assert not router.available("ollama/llama3.2")
    # A request refused for it learns why (run_with_fallback's circuit_open message).
    assert router.why_unavailable("ollama/llama3.2") == (
        "ollama/llama3.2 is unavailable: Ollama failed 2 discovery probes in a row; "
        "last: connection failed (ConnectError)"
    )
    status = router.ollama_status()
    assert status["healthy"] is False and status["models"] == ["ollama/llama3.2"]
    assert "ConnectError" in status["error"]


def test_health_rows() -> None:
    clock = FakeClock()
    router = Router(clock=clock, wall=lambda: 99.0, failure_threshold=2)
    assert router.health() == []
    router.record_failure("anthropic/claude-haiku-4-5", UpstreamUnavailable("refused"))
    router.record_failure("anthropic/claude-haiku-4-5", UpstreamUnavailable("refused"))
    router.set_ollama_models([], healthy=False, error="timeout")
    rows = router.health()
    assert {
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "state": "open",
        "failures": 2,
        "since": 99.0,
        "kind": "breaker",
    } in rows
    assert rows[0]["provider"] == "anthropic" and rows[0]["model"] is None
    assert rows[-1]["kind"] == "discovery" and rows[-1]["state"] == "down"
    router.reset_ollama()
    assert all(r["kind"] == "breaker" for r in router.health())


class Store:
    """Stands in for ConfigStore: snapshots replaced whole, as the real store does."""

    def __init__(self) -> None:
        self.routing = priced_routing()
        self.settings = GatewaySettings(routing_strategy="ordered")


def test_router_reads_strategy_and_routing_from_a_store() -> None:
    store = Store()
    router = Router(store)
    assert router.order([A, B, C]) == [A, B, C]
    store.settings = GatewaySettings(routing_strategy="cheapest")  # an admin change reloads it
    assert router.order([A, B, C]) == [B, C, A]
    store.routing = RoutingConfig(prices={A: PriceOverride(Decimal(0), Decimal(0))})
    assert router.order([B, A]) == [A, B]


async def test_refresh_prices_drops_the_book() -> None:
    router = Router(Store())
    book = router.prices
    await router.refresh_prices()
    assert router.prices is not book


def test_a_datetime_clock_is_accepted() -> None:
    now = {"t": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}
    router = Router(clock=lambda: now["t"], failure_threshold=1, cooldown_s=30)
    router.record_failure(A, UpstreamError("x"))
    assert not router.available(A)
    row = router.health()[-1]
    assert row["since"] == now["t"].timestamp()  # the datetime clock is also the wall clock
    now["t"] += dt.timedelta(seconds=30)
    assert router.available(A)


class Registry:
    """Stands in for ProviderRegistry: names() and config(name)."""

    def __init__(self, configs: dict[str, ProviderConfig]) -> None:
        self.configs = configs

    def names(self) -> list[str]:
        return sorted(self.configs)

    def config(self, name: str) -> ProviderConfig:
        return self.configs[name]


async def test_start_discovers_ollama_from_the_registry_and_close_stops() -> None:
    fake = OllamaFake()
    with fake:
        registry = Registry(
            {
                "ollama": ProviderConfig("ollama", "ollama", fake.base_url),
                "groq": ProviderConfig("groq", "openai", "http://groq.invalid/v1"),
            }
        )
        router = Router(Store())
        await router.start(registry, ollama_interval_s=3600)
        try:
            for _ in range(200):
                if router.ollama_status()["healthy"]:
                    break
                await asyncio.sleep(0.01)
            assert router.ollama_models() == ["llama3.2", "qwen3:8b", "nomic-embed-text"]
            assert router.parse("groq/llama-3.1-8b").provider == "groq"  # names from the registry
            fake.models.append("phi4:14b")
            assert "phi4:14b" in await router.refresh_ollama()
            del registry.configs["ollama"]  # Ollama unconfigured
            assert await router.refresh_ollama() == []
            assert router.ollama_status()["healthy"] is None
        finally:
            await router.close()
    assert await router.refresh_ollama() == []
