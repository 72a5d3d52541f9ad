"""Reasoning: one effort <-> budget table for every provider (pure functions).

A client asks in its own terms (``ChatRequest.reasoning``: an OpenAI-style effort word and/or
an Anthropic/Gemini token budget); each encoder derives what its provider takes from here.
"""

from __future__ import annotations

import re

from backend.ir.chat import Reasoning

#: Effort word -> thinking budget in tokens (Anthropic ``budget_tokens``, Gemini
#: ``thinkingBudget``). 1024 is Anthropic's smallest budget; ``none`` turns thinking off.
EFFORT_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 32768,
}

#: Budget -> the effort OpenAI reasoning models accept (low/medium/high): the first whose
#: budget covers it.
_BUDGET_EFFORTS: tuple[tuple[int, str], ...] = ((2048, "low"), (8192, "medium"))

#: Anthropic ``output_config.effort`` when ``thinking: {type: adaptive}`` names none.
ADAPTIVE_DEFAULT_EFFORT = "high"

#: Ollama ``think`` levels (models such as gpt-oss take a level; others take true/false).
OLLAMA_THINK_LEVELS: dict[str, str] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
_OLLAMA_LEVEL_MODELS = re.compile(r"gpt-oss")


def reasoning_budget(r: Reasoning) -> int:
    """Thinking budget in tokens for ``r`` (0: no thinking)."""
    if r.budget_tokens is not None:
        return max(0, r.budget_tokens)
    return EFFORT_BUDGETS.get(r.effort or "", EFFORT_BUDGETS["medium"])


def reasoning_effort(r: Reasoning) -> str | None:
    """The OpenAI ``reasoning_effort`` for ``r``: low, medium or high (None: thinking off)."""
    if r.budget_tokens is None and r.effort in ("minimal", "low", "medium", "high"):
        return "low" if r.effort == "minimal" else r.effort
    budget = reasoning_budget(r)
    if budget <= 0:
        return None
    for ceiling, effort in _BUDGET_EFFORTS:
        if budget <= ceiling:
            return effort
    return "high"


def ollama_think(r: Reasoning, model: str) -> bool | str:
    """Ollama ``think``: a level for models that take one, else true/false."""
    if reasoning_budget(r) <= 0:
        return False
    if _OLLAMA_LEVEL_MODELS.match(model):
        return OLLAMA_THINK_LEVELS.get(reasoning_effort(r) or "medium", "medium")
    return True
