"""Limits providers enforce per model with a 400, as tables read by pure functions.

- ``MAX_OUTPUT``: the most output tokens a model takes. A larger ``max_tokens`` (Claude Code
  sends 32000 whatever the model) is clamped to it: a ceiling the model cannot reach anyway
  changes no answer, while the real APIs answer 400 to it (gpt-4o-mini above 16384). Models not
  in the table get the client's value as asked.
- ``GEMINI_THINKING``: each Gemini thinking model's ``thinkingBudget`` range. A budget outside
  it is clamped into it; ``none`` (budget 0) on a model that cannot turn thinking off (2.5 Pro)
  becomes its smallest budget, with the thoughts not shown (the client asked for none).
- Anthropic sampling: Claude models from Opus 4.1 on take ``temperature`` or ``top_p``, not both
  (a value of 1, the default, is left out instead); with thinking on, ``temperature`` must be 1,
  ``top_k`` is not allowed, ``top_p`` must lie in [0.95, 1] and no tool can be forced. A request
  that breaks one of these is refused with a 400 naming the parameter and the model
  (``anthropic_sampling_refusal``), so fallback can skip the candidate; the API would refuse it
  too.
"""

from __future__ import annotations

import re
from typing import Any

from backend.ir.chat import ChatRequest
from backend.ir.errors import InvalidRequest
from backend.protocols.reasoning import reasoning_budget

#: (provider kinds, model id pattern, most output tokens); the first match wins. Model ids are
#: matched from their start (dated snapshots and ``-latest`` included).
MAX_OUTPUT: tuple[tuple[frozenset[str], re.Pattern[str], int], ...] = (
    (frozenset({"openai"}), re.compile(r"gpt-5(?:\.\d+)?-chat"), 16384),
    (frozenset({"openai"}), re.compile(r"gpt-5"), 128000),
    (frozenset({"openai"}), re.compile(r"o1-mini"), 65536),
    (frozenset({"openai"}), re.compile(r"o\d+(?:$|-)"), 100000),
    (frozenset({"openai"}), re.compile(r"gpt-4\.1"), 32768),
    (frozenset({"openai"}), re.compile(r"gpt-4o-2024-05-13"), 4096),
    (frozenset({"openai"}), re.compile(r"(?:gpt-4o|chatgpt-4o)"), 16384),
    (frozenset({"openai"}), re.compile(r"gpt-4-(?:turbo|\d{4}|1106|0125)"), 4096),
    (frozenset({"openai"}), re.compile(r"gpt-4(?:$|-0613)"), 8192),
    (frozenset({"openai"}), re.compile(r"gpt-3\.5-turbo"), 4096),
    (frozenset({"anthropic"}), re.compile(r"claude-opus-4(?:$|-0|-1|-20\d{6})"), 32000),
    (frozenset({"anthropic"}), re.compile(r"claude-(?:opus|sonnet|haiku)-4"), 64000),
    (frozenset({"anthropic"}), re.compile(r"claude-3-7-sonnet"), 64000),
    (frozenset({"anthropic"}), re.compile(r"claude-3-5-(?:sonnet|haiku)"), 8192),
    (frozenset({"anthropic"}), re.compile(r"claude-3-(?:opus|sonnet|haiku)"), 4096),
    (frozenset({"gemini"}), re.compile(r"(?:models/)?gemini-2\.5"), 65536),
    (frozenset({"gemini"}), re.compile(r"(?:models/)?gemini-(?:2\.0|1\.5)"), 8192),
)


def max_output(kind: str, model: str) -> int | None:
    """The most output tokens ``model`` (on a provider of codec ``kind``) takes, if known."""
    for kinds, pattern, limit in MAX_OUTPUT:
        if kind in kinds and pattern.match(model):
            return limit
    return None


def clamp_output(kind: str, model: str, value: int) -> int:
    """``value`` as a model's output ceiling: at most what the model takes."""
    limit = max_output(kind, model)
    return value if limit is None else min(value, limit)


# -- Gemini thinking budgets ---------------------------------------------------------------------
#: (model id pattern, smallest budget, largest budget, 0 turns thinking off)
GEMINI_THINKING: tuple[tuple[re.Pattern[str], int, int, bool], ...] = (
    (re.compile(r"(?:models/)?gemini-2\.5-pro"), 128, 32768, False),
    (re.compile(r"(?:models/)?gemini-2\.5-flash-lite"), 512, 24576, True),
    (re.compile(r"(?:models/)?gemini-2\.5-flash"), 1, 24576, True),
)


def gemini_thinking(model: str, budget: int) -> dict[str, Any]:
    """``thinkingConfig`` for a thinking budget (0: off) on ``model``, within its range."""
    for pattern, low, high, can_disable in GEMINI_THINKING:
        if pattern.match(model):
            if budget <= 0:
                if can_disable:
                    return {"thinkingBudget": 0}
                # Thinking cannot be off: the least there is, and no thoughts shown.
                return {"thinkingBudget": low, "includeThoughts": False}
            return {"thinkingBudget": max(low, min(budget, high)), "includeThoughts": True}
    if budget <= 0:
        return {"thinkingBudget": 0}
    return {"thinkingBudget": budget, "includeThoughts": True}


# -- Anthropic sampling and thinking ---------------------------------------------------------------
#: Anthropic's smallest ``thinking.budget_tokens``.
ANTHROPIC_MIN_THINKING_BUDGET = 1024
#: Claude models before Opus 4.1 take ``temperature`` and ``top_p`` together; later (and
#: unknown, newer) ones take one of them.
_CLAUDE_TWO_SAMPLERS = re.compile(
    r"claude-(?:instant|2|3)|claude-(?:opus|sonnet)-4(?:$|-0|-20\d{6})"
)


def one_sampler(model: str) -> bool:
    """True for Claude models that refuse ``temperature`` and ``top_p`` together."""
    return _CLAUDE_TWO_SAMPLERS.match(model) is None


def anthropic_thinking(req: ChatRequest, max_tokens: int | None) -> dict[str, Any] | None:
    """The ``thinking`` config an Anthropic upstream gets for ``req``.

    An Anthropic client's config verbatim; another protocol's reasoning ask as a budget
    (``reasoning.EFFORT_BUDGETS``) kept below ``max_tokens`` as the API requires, or none when
    that leaves less than the smallest budget (a documented no-op); effort ``none`` disables it.
    """
    if req.thinking is not None:
        return req.thinking
    if req.reasoning is None:
        return None
    budget = reasoning_budget(req.reasoning)
    if budget <= 0:
        return {"type": "disabled"}
    if max_tokens is not None:
        budget = min(budget, max_tokens - 1)
        if budget < ANTHROPIC_MIN_THINKING_BUDGET:
            return None
    return {"type": "enabled", "budget_tokens": budget}


def anthropic_sampling_refusal(
    req: ChatRequest, model: str, where: str, top_k: Any
) -> InvalidRequest | None:
    """The 400 ``req``'s sampling earns on Claude ``model`` (see the module docstring)."""
    max_tokens = req.max_tokens
    if max_tokens is not None:
        max_tokens = clamp_output("anthropic", model, max_tokens)
    thinking = anthropic_thinking(req, max_tokens)
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        why = "with thinking on"
        if req.temperature is not None and req.temperature != 1:
            return _refuse("temperature", req.temperature, where, f"{why} it must be 1")
        if top_k is not None:
            return _refuse("top_k", top_k, where, f"{why} top-k sampling is not allowed")
        if req.top_p is not None and not 0.95 <= req.top_p <= 1:
            return _refuse("top_p", req.top_p, where, f"{why} it must lie between 0.95 and 1")
        choice = req.tool_choice
        if choice is not None and choice.mode in ("required", "tool") and req.tools:
            return _refuse("tool_choice", choice.mode, where, f"{why} no tool can be forced")
    if one_sampler(model) and not _default(req.temperature) and not _default(req.top_p):
        return InvalidRequest(
            f"Unsupported value: 'temperature' and 'top_p' cannot both be specified for "
            f"{where}. Please use only one.",
            param="top_p",
            code="unsupported_value",
        )
    return None


def anthropic_sampling(req: ChatRequest, model: str) -> dict[str, float]:
    """``temperature`` / ``top_p`` for the body: on one-sampler models a default (1) beside the
    other is left out (both non-default were refused by ``anthropic_sampling_refusal``)."""
    out: dict[str, float] = {}
    if req.temperature is not None:
        # Anthropic's range ends at 1, OpenAI's at 2: the most random setting either offers.
        out["temperature"] = min(req.temperature, 1)
    if req.top_p is not None:
        out["top_p"] = req.top_p
    if len(out) == 2 and one_sampler(model):
        if _default(req.temperature):
            del out["temperature"]
        elif _default(req.top_p):
            del out["top_p"]
    return out


def _default(value: float | None) -> bool:
    return value is None or value == 1


def _refuse(param: str, value: Any, where: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Unsupported value: '{param}' {value!r} cannot be honoured by {where}: {why}.",
        param=param,
        code="unsupported_value",
    )
