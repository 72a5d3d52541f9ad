"""Vocabulary shared by the OpenAI chat codec's directions: finish reasons, usage, extras, flags.

Codec flags: a request decoded by this codec carries ``extra[FLAGS_KEY]``, a dict of wire details
the IR has no field for, so that re-encoding to an OpenAI upstream is faithful:

- ``max_tokens_field``: ``"max_completion_tokens"`` when the client used that name (newer models
  refuse ``max_tokens``; older compatible servers only know ``max_tokens``).
- ``system_role``: ``"developer"`` when the leading instructions came as ``developer`` messages.
- ``strict_tools``: ``{tool name: bool}`` for tools that set ``function.strict``.

The marker also says "this request came from an OpenAI client": ``encode_request`` forwards
``extra`` keys only then, so another protocol's extras never reach an OpenAI upstream.
"""

from __future__ import annotations

from typing import Any

from backend.ir.chat import FinishReason, Usage

FLAGS_KEY = "_openai"

#: Request parameters the IR models (everything else is kept verbatim in ``ChatRequest.extra``
#: and sent only to an OpenAI-format upstream: the passthrough).
MODELLED_PARAMS: frozenset[str] = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "stream",
        "stream_options",
        "metadata",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "temperature",
        "top_p",
        "stop",
        "response_format",
        "user",
        "functions",
        "function_call",
    }
)

#: OpenAI request parameters with no IR meaning that the field table (``model_rules``) knows:
#: translated or refused for other providers. Unknown ones are refused there.
EXTRA_PARAMS: frozenset[str] = frozenset(
    {
        "audio",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "modalities",
        "moderation",
        "n",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "safety_identifier",
        "seed",
        "service_tier",
        "store",
        "top_logprobs",
        "verbosity",
        "web_search_options",
    }
)

#: ``reasoning_effort`` values of the installed SDK's ``ReasoningEffort``.
REASONING_EFFORTS: tuple[str, ...] = (
    "none",
    "minimal",
    "low",
    "medium",
    "high",
    "xhigh",
    "max",
)

#: ``ChatResponse.extra`` keys of an OpenAI upstream's answer: the first choice's ``logprobs`` and
#: the choices after the first (``n > 1``), both verbatim. Only an OpenAI client gets them back.
LOGPROBS_KEY = "openai_logprobs"
CHOICES_KEY = "openai_choices"
#: Unmodelled keys of choice 0's message (``annotations``, ``audio``...), verbatim; the other
#: keys of ``ChatResponse.extra`` are the answer's unmodelled top-level fields.
MESSAGE_KEY = "openai_message"
#: The upstream's usage object verbatim (its details beyond the IR's counts: audio tokens...).
USAGE_KEY = "openai_usage"
#: Answer keys the codec models (``choices``: choice 0 is the IR answer).
ANSWER_KEYS = frozenset({"id", "object", "created", "model", "choices", "usage"})
MESSAGE_KEYS = frozenset({"role", "content", "refusal", "tool_calls", "reasoning_content"})

_FINISH_FROM_WIRE: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}

_FINISH_TO_WIRE: dict[str, str] = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    # OpenAI has no "error" finish; a stream that failed is reported with an error frame instead.
    "error": "stop",
}


def finish_from_wire(value: Any) -> FinishReason:
    if isinstance(value, str):
        return _FINISH_FROM_WIRE.get(value, "stop")
    return "stop"


def finish_to_wire(reason: str) -> str:
    return _FINISH_TO_WIRE.get(reason, "stop")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_wire(obj: Any) -> Usage:
    """``prompt_tokens``/``completion_tokens``/``prompt_tokens_details`` -> ``Usage``."""
    if not isinstance(obj, dict):
        return Usage()
    details = obj.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    output_details = obj.get("completion_tokens_details")
    output_details = output_details if isinstance(output_details, dict) else {}
    return Usage(
        input_tokens=_int(obj.get("prompt_tokens")),
        output_tokens=_int(obj.get("completion_tokens")),
        cached_tokens=_int(details.get("cached_tokens")),
        cache_write_tokens=_int(details.get("cache_write_tokens")),
        reasoning_tokens=_int(output_details.get("reasoning_tokens")),
    )


def usage_to_wire(usage: Usage) -> dict[str, Any]:
    details: dict[str, Any] = {"cached_tokens": usage.cached_tokens}
    if usage.cache_write_tokens:
        details["cache_write_tokens"] = usage.cache_write_tokens
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": details,
    }
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def codec_flags(extra: dict[str, Any]) -> dict[str, Any] | None:
    flags = extra.get(FLAGS_KEY)
    return flags if isinstance(flags, dict) else None


def merge_usage(raw: Any, usage: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI upstream's usage ``raw`` with the IR's counts on top (details kept)."""
    if not isinstance(raw, dict):
        return usage
    out = {**raw, **usage}
    for key in ("prompt_tokens_details", "completion_tokens_details"):
        if isinstance(raw.get(key), dict) and isinstance(usage.get(key), dict):
            out[key] = {**raw[key], **usage[key]}
    return out
