"""PriceBook: what a model costs, from the admin's overrides first, then the maintained table.

Rules (DESIGN.md, "Money"):

- An override (``RoutingConfig.prices``, keyed ``provider/model`` or the bare model name) wins,
  for Ollama models too (an administrator deliberately pricing their own hardware).
- Otherwise Ollama models cost $0.
- Otherwise the ``genai-prices`` table (``backend.pricing.table``), which also applies tiered and
  time-dependent prices exactly when computing a cost.
- A model nobody prices is *unknown*: ``price``/``cost``/``worst_case`` return ``None``, never 0.

Token accounting follows the IR: ``Usage.input_tokens`` includes ``cached_tokens`` (read from the
provider's prompt cache) and ``cache_write_tokens``. Cached tokens are billed at the cached rate
(the input rate when a price has none); cache writes at the table's cache-write rate (overrides
have none, so the input rate). Web searches a server tool ran (``Usage.web_search_requests``)
are billed per search on top: the table's rate, else the provider's documented one
(``table.DOCUMENTED_WEB_SEARCH_PER_K``: Anthropic's $10 per 1,000), overrides included (an
override prices tokens, not searches).

A book is immutable apart from its memo: build a new one when overrides change (``Router`` does
this whenever the routing snapshot is replaced), so memoised answers never go stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from backend.ir.chat import Usage
from backend.pricing import table
from backend.routing.refs import ModelRef
from backend.state.snapshot import PriceOverride

MTOK = Decimal(1_000_000)
ZERO = Decimal(0)

#: ``unpriced-default``: the operator's price for unpriced models, applied to capped callers only
#: (``backend.policies.budget``); a book never answers with it.
PriceSource = Literal["override", "price-table", "ollama", "unpriced-default"]


@dataclass(frozen=True, slots=True)
class ModelPricing:
    """USD per million tokens. ``cached_per_mtok`` ``None``: cached input costs the input rate."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_per_mtok: Decimal | None
    context_window: int | None
    source: PriceSource
    cache_write_per_mtok: Decimal | None = None
    #: USD per 1,000 web searches (None: the provider bills none).
    web_search_per_k: Decimal | None = None

    def linear_cost(
        self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, cache_write: int = 0
    ) -> Decimal:
        cached = min(max(cached_tokens, 0), max(input_tokens, 0))
        write = min(max(cache_write, 0), max(input_tokens, 0) - cached)
        fresh = max(input_tokens, 0) - cached - write
        cached_rate = (
            self.cached_per_mtok if self.cached_per_mtok is not None else self.input_per_mtok
        )
        write_rate = (
            self.cache_write_per_mtok
            if self.cache_write_per_mtok is not None
            else self.input_per_mtok
        )
        total = (
            fresh * self.input_per_mtok
            + cached * cached_rate
            + write * write_rate
            + max(output_tokens, 0) * self.output_per_mtok
        )
        return total / MTOK


FREE = ModelPricing(ZERO, ZERO, ZERO, None, "ollama")


def _as_ref(model: ModelRef | str) -> ModelRef:
    return model if isinstance(model, ModelRef) else ModelRef.from_key(model)


class PriceBook:
    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None) -> None:
        self._overrides = dict(overrides or {})
        # Memo per canonical key: (pricing, exact table entry); both None = unknown.
        self._memo: dict[str, tuple[ModelPricing | None, table.TableModel | None]] = {}
        self._listed: dict[str, list[tuple[str, ModelPricing]]] = {}

    def price(self, model: ModelRef | str) -> ModelPricing | None:
        """Rates of ``model`` (a ``ModelRef`` or canonical ``provider/model``), or ``None``."""
        return self._entry(_as_ref(model))[0]

    def cost(self, model: ModelRef | str, usage: Usage) -> Decimal | None:
        """What ``usage`` on ``model`` costs in USD, or ``None`` when the price is unknown."""
        pricing, exact = self._entry(_as_ref(model))
        if pricing is None:
            return None
        inp = max(usage.input_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), inp)
        write = min(max(usage.cache_write_tokens, 0), inp - cached)
        out = max(usage.output_tokens, 0)
        fees = _search_fees(pricing, usage)
        if exact is not None and not exact.linear:
            try:
                return exact.cost(inp, out, cached, write) + fees
            except Exception:  # table data the calculator rejects: the list rates still apply
                pass
        return pricing.linear_cost(inp, out, cached, write) + fees

    def worst_case(
        self,
        model: ModelRef | str,
        input_tokens_estimate: int,
        max_output_tokens: int,
        web_searches: int = 0,
    ) -> Decimal | None:
        """Upper bound for a reservation: every input token uncached, every output token used,
        every web search the request allows run."""
        usage = Usage(
            input_tokens=input_tokens_estimate,
            output_tokens=max_output_tokens,
            web_search_requests=web_searches,
        )
        return self.cost(model, usage)

    def listed(self, provider: str) -> list[tuple[str, ModelPricing]]:
        """The table's models of ``provider`` with their pricing (overrides applied)."""
        cached = self._listed.get(provider)
        if cached is None:
            cached = []
            for entry in table.listed_models(provider):
                ref = ModelRef(provider, entry.model_id)
                override = self._override(ref)
                pricing = (
                    _from_override(override, entry.rates.context_window, _search_rate(ref, entry))
                    if override is not None
                    else _from_table(entry.rates, _search_rate(ref, entry))
                )
                cached.append((entry.model_id, pricing))
                self._memo.setdefault(ref.key, (pricing, None if override is not None else entry))
            self._listed[provider] = cached
        return list(cached)

    # -- internals ---------------------------------------------------------------------------------

    def _override(self, ref: ModelRef) -> PriceOverride | None:
        found = self._overrides.get(ref.key)
        if found is None:
            found = self._overrides.get(ref.model)
        return found

    def _entry(self, ref: ModelRef) -> tuple[ModelPricing | None, table.TableModel | None]:
        memo = self._memo.get(ref.key)
        if memo is not None:
            return memo
        override = self._override(ref)
        result: tuple[ModelPricing | None, table.TableModel | None]
        if override is not None:
            window = override.context_window
            found = None if ref.provider == "ollama" else table.lookup(ref.provider, ref.model)
            if window is None and found is not None:
                window = found.rates.context_window
            result = (_from_override(override, window, _search_rate(ref, found)), None)
        elif ref.provider == "ollama":
            result = (FREE, None)
        else:
            found = table.lookup(ref.provider, ref.model)
            result = (
                (_from_table(found.rates, _search_rate(ref, found)), found)
                if found is not None
                else (None, None)
            )
        self._memo[ref.key] = result
        return result


def _search_rate(ref: ModelRef, found: table.TableModel | None) -> Decimal | None:
    """USD per 1,000 web searches on ``ref``: the table's, else the provider's documented."""
    if found is not None and found.rates.web_search_per_k is not None:
        return found.rates.web_search_per_k
    return table.DOCUMENTED_WEB_SEARCH_PER_K.get(ref.provider)


def _search_fees(pricing: ModelPricing, usage: Usage) -> Decimal:
    searches = max(usage.web_search_requests, 0)
    if not searches or pricing.web_search_per_k is None:
        return ZERO
    return searches * pricing.web_search_per_k / 1000


def _from_override(
    o: PriceOverride, context_window: int | None, web_search_per_k: Decimal | None
) -> ModelPricing:
    return ModelPricing(
        input_per_mtok=Decimal(o.input_per_mtok),
        output_per_mtok=Decimal(o.output_per_mtok),
        cached_per_mtok=Decimal(o.cached_per_mtok) if o.cached_per_mtok is not None else None,
        context_window=o.context_window if o.context_window is not None else context_window,
        source="override",
        web_search_per_k=web_search_per_k,
    )


def _from_table(r: table.TableRates, web_search_per_k: Decimal | None = None) -> ModelPricing:
    return ModelPricing(
        input_per_mtok=r.input_per_mtok,
        output_per_mtok=r.output_per_mtok,
        cached_per_mtok=r.cached_per_mtok,
        context_window=r.context_window,
        source="price-table",
        cache_write_per_mtok=r.cache_write_per_mtok,
        web_search_per_k=web_search_per_k,
    )
