"""Prices and costs: ``PriceBook`` (overrides, then the genai-prices table; Ollama free)."""

from backend.pricing.book import ModelPricing, PriceBook

__all__ = ["ModelPricing", "PriceBook"]
