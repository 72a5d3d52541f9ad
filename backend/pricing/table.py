"""The maintained price table (the ``genai-prices`` package) behind one small interface.

Only this module knows genai-prices' types. Lookups there match model names by rules over
every model of a provider, which is slow on a miss; ``PriceBook`` memoises what this returns.

Provider names map to genai-prices ids: ``gemini`` -> ``google``; ``ollama`` has no entry (it is
free, handled by the book); any other name (openai, anthropic, azure, groq, mistral...) is used
as is, so a custom OpenAI-compatible provider named after a known host gets its prices.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from genai_prices import Usage as PriceUsage
from genai_prices import data_snapshot, types

log = logging.getLogger("switchboard.pricing")

TABLE_PROVIDER_IDS: dict[str, str] = {"gemini": "google"}

#: USD per 1,000 web searches where the table has no rate for a model (an admin override, a
#: model the table lacks). Anthropic: "$10 per 1,000 searches, plus standard token costs"
#: (docs.claude.com/en/docs/agents-and-tools/tool-use/web-search-tool, "Usage and pricing";
#: genai-prices 0.2.3 lists the same $10 for every Claude model with web search).
DOCUMENTED_WEB_SEARCH_PER_K: dict[str, Decimal] = {"anthropic": Decimal(10)}

#: genai-prices' Google provider also lists Vertex's Claude models; the Gemini API serves these.
_GEMINI_API_PREFIXES = ("gemini", "gemma", "text-embedding", "embedding")


@dataclass(frozen=True, slots=True)
class TableRates:
    """Base rates (USD per million tokens) of one model in the table, now."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_per_mtok: Decimal | None
    cache_write_per_mtok: Decimal | None
    context_window: int | None
    #: USD per 1,000 web searches a server tool runs (the table's ``web_searches_kcount``).
    web_search_per_k: Decimal | None = None


class TableModel:
    """One resolved table entry: its rates and an exact cost calculation (tiers included)."""

    __slots__ = ("_model", "_provider", "linear", "model_id", "rates")

    def __init__(self, provider: types.Provider, model: types.ModelInfo, rates: TableRates) -> None:
        self._provider = provider
        self._model = model
        self.model_id = model.id
        self.rates = rates
        #: Flat per-token rates only: cost is a sum of tokens x rates, no need to run the
        #: table's calculator (a fifth of the gateway's CPU per request when it did).
        self.linear = _is_linear(model)

    def cost(
        self, input_tokens: int, output_tokens: int, cached_tokens: int, cache_write_tokens: int
    ) -> Decimal:
        # genai-prices counts cache reads and writes inside input_tokens, as the IR does.
        usage = PriceUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cached_tokens,
            cache_write_tokens=cache_write_tokens,
        )
        calc = self._model.calc_price(usage, self._provider)
        return Decimal(calc.total_price)


_LINEAR_FIELDS = frozenset({"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"})
#: Priced units our usage never reports (audio, images, pages...): they add nothing to a token
#: cost. Web searches are reported, and the book adds them itself (``TableRates.web_search_per_k``),
#: so the token calculation leaves them out too. ``requests_kcount`` is not here: it charges every
#: request.
_UNREPORTED_UNITS = frozenset(
    {
        "audio_hours",
        "cache_audio_read_mtok",
        "cache_image_read_mtok",
        "cache_write_1h_mtok",
        "input_annotated_document_kpages",
        "input_audio_hours",
        "input_audio_mtok",
        "input_document_kpages",
        "input_image_mtok",
        "input_mchars",
        "input_text_messages_kcount",
        "input_video_mtok",
        "output_audio_mtok",
        "output_citation_mtok",
        "output_image_mtok",
        "output_reasoning_mtok",
        "output_video_mtok",
        "storage_searches_kcount",
        "web_searches_kcount",
    }
)


def _is_linear(model: types.ModelInfo) -> bool:
    # Variants (service tier, batch) only apply with a price context, which we never pass.
    prices = model.prices
    if isinstance(prices, list):
        return False
    used = {k: v for k, v in vars(prices).items() if v is not None}
    tokens = {k: v for k, v in used.items() if k in _LINEAR_FIELDS}
    return set(used) - set(tokens) <= _UNREPORTED_UNITS and all(
        isinstance(v, Decimal) for v in tokens.values()
    )


def warm() -> None:
    """Load the bundled table now (about half a second) instead of on the first request."""
    data_snapshot.get_snapshot()


def table_provider_id(provider: str) -> str:
    return TABLE_PROVIDER_IDS.get(provider, provider)


def _rate(value: Any) -> Decimal | None:
    if value is None:
        return None
    base = getattr(value, "base", value)  # TieredPrices: the first tier is the list price
    return Decimal(base)


def _rates(model: types.ModelInfo) -> TableRates | None:
    prices = model.get_prices(dt.datetime.now(dt.UTC))
    input_rate = _rate(getattr(prices, "input_mtok", None))
    output_rate = _rate(getattr(prices, "output_mtok", None))
    if input_rate is None and output_rate is None:
        return None  # priced per image/second/request only: not a token price we can use
    return TableRates(
        input_per_mtok=input_rate or Decimal(0),
        output_per_mtok=output_rate or Decimal(0),
        cached_per_mtok=_rate(getattr(prices, "cache_read_mtok", None)),
        cache_write_per_mtok=_rate(getattr(prices, "cache_write_mtok", None)),
        context_window=model.context_window,
        web_search_per_k=_rate(getattr(prices, "web_searches_kcount", None)),
    )


def _find_provider(provider: str) -> types.Provider | None:
    pid = table_provider_id(provider)
    for p in data_snapshot.get_snapshot().providers:
        if p.id == pid:
            return p
    return None


def lookup(provider: str, model: str) -> TableModel | None:
    """The table entry for ``model`` at ``provider``, or ``None`` if the table does not know it."""
    table_provider = _find_provider(provider)
    if table_provider is None:
        return None
    snapshot = data_snapshot.get_snapshot()
    try:
        found = table_provider.find_model(model.lower(), all_providers=snapshot.providers)
    except Exception:  # the table's matchers are data; a bad entry must not fail a request
        log.warning("price table lookup failed for %s/%s", provider, model, exc_info=True)
        return None
    if found is None:
        return None
    rates = _rates(found)
    if rates is None:
        return None
    return TableModel(table_provider, found, rates)


def listed_models(provider: str) -> list[TableModel]:
    """Every current (not deprecated), token-priced model the table lists for ``provider``."""
    table_provider = _find_provider(provider)
    if table_provider is None:
        return []
    out: list[TableModel] = []
    for m in table_provider.models:
        if m.deprecated or not _api_name(m.id):
            continue
        if provider == "gemini" and not m.id.startswith(_GEMINI_API_PREFIXES):
            continue
        rates = _rates(m)
        if rates is not None:
            out.append(TableModel(table_provider, m, rates))
    return out


def _api_name(model_id: str) -> bool:
    # Some table ids are match stems, not callable names ("ft:gpt-4o", "gpt-4o-mini-...ft-").
    return not (model_id.startswith("ft:") or model_id.endswith("-") or ".ft-" in model_id)
