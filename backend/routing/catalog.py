"""The model catalog ("Available Models"): every model the gateway can serve, with its prices.

Sources, first one wins for a given ``provider/model``:

- ``ollama``       models discovered on Ollama (when Ollama is configured), $0
- ``price-table``  the genai-prices table's current models for each configured provider that
                   the table knows (openai, anthropic, gemini; custom providers named like a
                   table provider, e.g. groq; not azure, whose names are deployments)
- ``config``       every model named by an alias target, a fallback chain or an agent tier

Prices always come from the ``PriceBook`` (overrides applied), ``None`` when unknown.
``reachable``: its provider is configured, no open circuit blocks it, and for Ollama the last
discovery succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from backend.ir.errors import GatewayError
from backend.pricing.book import ModelPricing, PriceBook
from backend.routing.refs import ModelRef, parse_model_ref
from backend.state.snapshot import RoutingConfig

CatalogSource = Literal["price-table", "ollama", "config"]

#: Providers whose table entries are not names a client can call.
_NOT_LISTED = frozenset({"azure", "ollama"})


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    model: str  # "provider/name"
    provider: str
    context_window: int | None
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_per_mtok: Decimal | None
    reachable: bool
    source: CatalogSource


def configured_model_names(routing: RoutingConfig) -> list[str]:
    """Model names the routing configuration mentions (alias targets, chains, agent tiers)."""
    names: list[str] = list(routing.global_aliases.values())
    for aliases in routing.org_aliases.values():
        names.extend(aliases.values())
    for primary, chain in routing.chains.items():
        names.append(primary)
        names.extend(chain)
    for agent in routing.agents.values():
        names.extend(m for m in (agent.normal_model, agent.heavy_model, agent.max_model) if m)
    return names


def build_catalog(
    providers_configured: Collection[str],
    *,
    prices: PriceBook,
    routing: RoutingConfig,
    ollama_models: Iterable[str],
    ollama_healthy: bool | None,
    available: Callable[[ModelRef], bool],
    known_providers: Collection[str],
) -> list[CatalogEntry]:
    configured = set(providers_configured)
    entries: dict[str, CatalogEntry] = {}
    ollama_names = list(ollama_models)

    def add(ref: ModelRef, source: CatalogSource, pricing: ModelPricing | None) -> None:
        if ref.key in entries:
            return
        reachable = ref.provider in configured and available(ref)
        if ref.provider == "ollama" and ollama_healthy is False:
            reachable = False
        entries[ref.key] = CatalogEntry(
            model=ref.key,
            provider=ref.provider,
            context_window=pricing.context_window if pricing else None,
            input_per_mtok=pricing.input_per_mtok if pricing else None,
            output_per_mtok=pricing.output_per_mtok if pricing else None,
            cached_per_mtok=_cached_rate(pricing),
            reachable=reachable,
            source=source,
        )

    if "ollama" in configured:
        for name in ollama_names:
            ref = ModelRef("ollama", name)
            add(ref, "ollama", prices.price(ref))
    for provider in sorted(configured - _NOT_LISTED):
        for name, pricing in prices.listed(provider):
            add(ModelRef(provider, name), "price-table", pricing)
    aliases = set(routing.global_aliases)
    for org_aliases in routing.org_aliases.values():
        aliases.update(org_aliases)
    for name in configured_model_names(routing):
        if name in aliases:
            continue  # an alias pointing at an alias: its final target is listed on its own
        try:
            ref = parse_model_ref(
                name, providers=known_providers, ollama_models=frozenset(ollama_names)
            )
        except GatewayError:
            continue
        add(ref, "config", prices.price(ref))
    return sorted(entries.values(), key=lambda e: (e.provider, e.model))


def _cached_rate(pricing: ModelPricing | None) -> Decimal | None:
    if pricing is None:
        return None
    return (
        pricing.cached_per_mtok if pricing.cached_per_mtok is not None else pricing.input_per_mtok
    )
