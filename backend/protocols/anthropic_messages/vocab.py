"""Vocabulary shared by both directions: stop reasons, usage, cache breakpoints, extra fields.

Usage convention: the IR counts ``input_tokens`` the OpenAI way (cache reads and writes are
included, ``cached_tokens`` / ``cache_write_tokens`` are subsets of it). Anthropic's
``input_tokens`` counts only the uncached remainder; its total input is
``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``.
"""

from __future__ import annotations

import re
from typing import Any

from backend.ir.chat import FinishReason, Usage

#: Anthropic ``stop_reason`` -> canonical finish reason.
STOP_TO_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # A paused server-tool turn ended normally from the client's point of view.
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}

FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
    "error": "end_turn",
}

#: Top-level request fields the IR models. Every other field is kept verbatim in
#: ``ChatRequest.extra`` and sent again only to an Anthropic upstream (the passthrough); the
#: encoder forwards ``extra`` only for requests from an Anthropic client, so another protocol's
#: leftovers can never reach Anthropic as unknown fields. (``top_k`` and ``output_config`` stay in
#: ``extra`` although other providers translate them: see ``model_rules``.)
MODELLED_FIELDS: frozenset[str] = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "temperature",
        "top_p",
        "stop_sequences",
        "stream",
        "metadata",
        "thinking",
        "tools",
        "tool_choice",
    }
)

#: Usage keys the IR counts (everything else in an answer's usage is kept for the client).
USAGE_FIELDS: frozenset[str] = frozenset(
    {"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}
)

SERVICE_TIERS = frozenset({"auto", "standard_only"})

#: Fields ``/v1/messages/count_tokens`` accepts; anything else there is a 400.
COUNT_TOKENS_FIELDS: frozenset[str] = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
        "context_management",
        "mcp_servers",
        "speed",
    }
)

#: ``ChatRequest.extra`` key holding block-level ``cache_control`` markers. The IR parts have no
#: cache field, so the markers travel beside them, addressed by IR position:
#: ``["system", i]``, ``["tools", i]``, ``["messages", i, j]`` (part j of message i) and
#: ``["messages", i, j, k]`` (item k of a tool result's content). Prompt caching is most of the
#: cost of agent traffic, so dropping the markers on an Anthropic-to-Anthropic hop is not an
#: option. The leading underscore marks it as internal: it is never sent as a field.
CACHE_KEY = "_anthropic_cache_control"

#: ``ChatRequest.extra`` key of Claude Code's attribution block (``{"index": i, "block": ...}``:
#: its position among the system blocks and the block verbatim), kept for Anthropic only.
BILLING_KEY = "_anthropic_billing_header"
#: The text such a block starts with.
BILLING_HEADER = re.compile(r"x-anthropic-billing-header:")

DEFAULT_MAX_TOKENS = 4096


def usage_from_wire(u: Any) -> Usage:
    """Anthropic usage object -> IR usage (input made inclusive of cache reads and writes)."""
    if not isinstance(u, dict):
        return Usage()
    fresh = _int(u.get("input_tokens"))
    read = _int(u.get("cache_read_input_tokens"))
    write = _int(u.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=fresh + read + write,
        output_tokens=_int(u.get("output_tokens")),
        cached_tokens=read,
        cache_write_tokens=write,
        web_search_requests=web_searches(u),
    )


def web_searches(u: dict[str, Any]) -> int:
    """``server_tool_use.web_search_requests`` of an Anthropic usage object (billed per search)."""
    server = u.get("server_tool_use")
    return _int(server.get("web_search_requests")) if isinstance(server, dict) else 0


def usage_to_wire(u: Usage, *, output_tokens: int | None = None) -> dict[str, int]:
    """IR usage -> Anthropic usage, in the key order the API uses."""
    fresh = max(0, u.input_tokens - u.cached_tokens - u.cache_write_tokens)
    return {
        "input_tokens": fresh,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "output_tokens": u.output_tokens if output_tokens is None else output_tokens,
    }


def finish_from_stop(stop_reason: Any) -> FinishReason:
    if isinstance(stop_reason, str):
        return STOP_TO_FINISH.get(stop_reason, "stop")
    return "stop"


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
