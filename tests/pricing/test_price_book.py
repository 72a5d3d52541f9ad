"""PriceBook: overrides beat the table, Ollama is free, unknown stays unknown, cached rates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backend.ir.chat import Usage
from backend.pricing import table
from backend.pricing.book import PriceBook
from backend.routing.refs import ModelRef
from backend.state.snapshot import PriceOverride

D = Decimal


def test_table_price_for_known_models() -> None:
    book = PriceBook()
    p = book.price(ModelRef("openai", "gpt-4o-mini"))
    assert p is not None and p.source == "price-table"
    assert p.input_per_mtok == D("0.15") and p.output_per_mtok == D("0.6")
    assert p.cached_per_mtok == D("0.075")
    assert p.context_window == 128000
    gemini = book.price("gemini/gemini-2.5-flash")  # "gemini" is genai-prices' "google"
    assert gemini is not None and gemini.input_per_mtok == D("0.3")
    claude = book.price("anthropic/claude-sonnet-4-5")
    assert claude is not None and claude.output_per_mtok == D("15")


def test_cost_bills_cached_tokens_at_the_cached_rate() -> None:
    book = PriceBook()
    # 1000 input of which 200 cached: 800 * 0.15 + 200 * 0.075 + 100 * 0.6 = 195 per million.
    cost = book.cost(
        "openai/gpt-4o-mini", Usage(input_tokens=1000, output_tokens=100, cached_tokens=200)
    )
    assert cost == D("0.000195")
    uncached = book.cost("openai/gpt-4o-mini", Usage(input_tokens=1000, output_tokens=100))
    assert uncached == D("0.00021")


def test_anthropic_cache_reads_and_writes() -> None:
    book = PriceBook()
    # 700 fresh * 3 + 200 read * 0.3 + 100 written * 3.75 = 2535 per million.
    usage = Usage(input_tokens=1000, output_tokens=0, cached_tokens=200, cache_write_tokens=100)
    assert book.cost("anthropic/claude-sonnet-4-5", usage) == D("0.002535")


def test_override_beats_table_and_bills_cached_rate() -> None:
    overrides = {
        "openai/gpt-4o-mini": PriceOverride(D("1"), D("2"), D("0.5"), None),
        "custom-model": PriceOverride(D("10"), D("20")),
    }
    book = PriceBook(overrides)
    p = book.price("openai/gpt-4o-mini")
    assert p is not None and p.source == "override"
    assert (p.input_per_mtok, p.output_per_mtok, p.cached_per_mtok) == (D(1), D(2), D("0.5"))
    assert p.context_window == 128000  # the table's, since the override names none
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=400_000)
    # 600k * 1 + 400k * 0.5 + 1M * 2 = 2.8
    assert book.cost("openai/gpt-4o-mini", usage) == D("2.8")
    # A bare-name override applies to any provider's model of that name; no cached rate means
    # cached tokens cost the input rate.
    assert book.cost("groq/custom-model", usage) == D("30")


def test_ollama_is_free() -> None:
    book = PriceBook()
    p = book.price("ollama/llama3.2")
    assert p is not None and p.input_per_mtok == 0 and p.output_per_mtok == 0
    assert book.cost("ollama/llama3.2", Usage(input_tokens=5000, output_tokens=900)) == 0
    assert book.worst_case("ollama/llama3.2", 10_000, 4096) == 0


@pytest.mark.parametrize(
    "model", ["openai/not-a-real-model-xyz", "mylocal/llama-3.1-8b", "azure/my-deployment"]
)
def test_unknown_model_is_none_never_zero(model: str) -> None:
    book = PriceBook()
    assert book.price(model) is None
    assert book.cost(model, Usage(input_tokens=10, output_tokens=10)) is None
    assert book.worst_case(model, 10, 10) is None


def test_worst_case_is_uncached_input_plus_max_output() -> None:
    book = PriceBook()
    # 2000 * 0.15 + 4096 * 0.6 = 2757.6 per million
    assert book.worst_case("openai/gpt-4o-mini", 2000, 4096) == D("0.0027576")


def test_worst_case_counts_the_searches_a_request_allows() -> None:
    book = PriceBook()
    tokens = book.worst_case("anthropic/claude-sonnet-4-5", 1000, 100)
    assert tokens is not None
    # Anthropic's $10 per 1,000 searches, on top of the tokens.
    assert book.worst_case("anthropic/claude-sonnet-4-5", 1000, 100, 5) == tokens + D("0.05")
    assert book.worst_case("anthropic/claude-sonnet-4-5", 1000, 100, 0) == tokens


def test_lookups_are_memoized_per_book(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = table.lookup

    def counting(provider: str, model: str) -> table.TableModel | None:
        calls.append((provider, model))
        return real(provider, model)

    monkeypatch.setattr(table, "lookup", counting)
    book = PriceBook()
    for _ in range(3):
        book.price("openai/gpt-4o")
        book.cost("openai/gpt-4o", Usage(input_tokens=1))
        book.price("openai/unknown-zzz")
    assert calls == [("openai", "gpt-4o"), ("openai", "unknown-zzz")]
    PriceBook().price("openai/gpt-4o")  # a new book (new overrides) looks up afresh
    assert len(calls) == 3


def test_listed_models_apply_overrides() -> None:
    book = PriceBook({"gpt-4o-mini": PriceOverride(D("9"), D("9"))})
    listed = dict(book.listed("openai"))
    assert listed["gpt-4o-mini"].input_per_mtok == D(9)
    assert listed["gpt-4o"].source == "price-table"
    gemini = dict(book.listed("gemini"))
    assert "gemini-2.5-flash" in gemini
    assert not any(name.startswith("claude") for name in gemini)  # Vertex's Claude is not Gemini's


def test_linear_fast_path_equals_the_table_calculator() -> None:
    """Flat-rate table models are priced without genai-prices' calculator: same numbers."""
    import random

    from genai_prices import data_snapshot

    from backend.pricing import table
    from backend.pricing.book import _from_table

    rnd = random.Random(7)
    compared = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            rates = table._rates(model)
            if rates is None:
                continue
            entry = table.TableModel(provider, model, rates)
            if not entry.linear:
                continue
            for _ in range(3):
                i = rnd.randint(0, 300_000)
                c = rnd.randint(0, i)
                w = rnd.randint(0, i - c)
                o = rnd.randint(0, 50_000)
                try:
                    exact = entry.cost(i, o, c, w)
                except Exception:
                    continue
                assert _from_table(rates).linear_cost(i, o, c, w) == exact, model.id
                compared += 1
    assert compared > 1000


# -- server-tool fees ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-sonnet-4-6", "claude-haiku-4-5"])
def test_web_searches_cost_what_genai_prices_says(model: str) -> None:
    """Tiered (4.5) and flat (4.6) table entries: the book's cost equals genai-prices' own
    calculator given the searches, $10 per 1,000 on top of the tokens."""
    from genai_prices import Usage as PriceUsage

    found = table.lookup("anthropic", model)
    assert found is not None and found.rates.web_search_per_k == D("10")
    usage = Usage(input_tokens=1000, output_tokens=100, web_search_requests=3)
    cost = PriceBook().cost(f"anthropic/{model}", usage)
    calc = found._model.calc_price(
        PriceUsage(input_tokens=1000, output_tokens=100, web_searches=3), found._provider
    )
    assert cost == Decimal(calc.total_price)
    without = PriceBook().cost(f"anthropic/{model}", Usage(input_tokens=1000, output_tokens=100))
    assert cost is not None and without is not None and cost - without == D("0.03")


def test_web_searches_without_a_table_rate_cost_the_documented_ten_dollars() -> None:
    book = PriceBook({"anthropic/claude-sonnet-4-5": PriceOverride(D("1"), D("2"))})
    # An override prices tokens; the searches keep their price: 1000 * 1 + 10 * 2 per million.
    usage = Usage(input_tokens=1000, output_tokens=10, web_search_requests=2)
    assert book.cost("anthropic/claude-sonnet-4-5", usage) == D("0.00102") + D("0.02")
    # claude-3-haiku has no search rate in the table: the documented one applies.
    haiku = table.lookup("anthropic", "claude-3-haiku")
    assert haiku is not None and haiku.rates.web_search_per_k is None
    plain = PriceBook().cost("anthropic/claude-3-haiku", Usage(input_tokens=1000))
    searched = PriceBook().cost(
        "anthropic/claude-3-haiku", Usage(input_tokens=1000, web_search_requests=1)
    )
    assert (
        plain is not None
        and searched == plain + table.DOCUMENTED_WEB_SEARCH_PER_K["anthropic"] / 1000
    )
    # Ollama is free, searches or not.
    assert PriceBook().cost("ollama/llama3.2", Usage(web_search_requests=5)) == 0
