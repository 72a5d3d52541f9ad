"""Vocabulary shared by the Responses codec's directions: flags, item kinds, usage, ids, status.

Extras (``backend.ir.chat``): a request decoded here has ``protocol = PROTOCOL``; hosted tools
are ``Opaque`` tools, hosted-tool items, ``item_reference`` and file parts ``Opaque`` parts (see
``items``), OpenAI's encrypted reasoning ``ThinkingPart.extra["_encrypted_content"]``. Codec
bookkeeping sits in ``extra[FLAGS_KEY]``, one dict (judged by ``rules``, never by another
codec, so no Responses field reaches another provider by accident):

- ``echo``: the request fields a ``response`` object repeats back, as the client sent them.
- ``params``: top-level fields with no IR meaning (``include``, ``truncation``, ``service_tier``,
  ``prompt_cache_key``, ``client_metadata``...): verbatim to OpenAI's Responses API, elsewhere
  a documented no-op or a 400 (``rules.RESPONSES_PARAMS``).
- ``hosted_choice``: a ``tool_choice`` naming a hosted tool (OpenAI only).
- ``namespaces``: ``{name: the namespace tool without its tools}`` for tools the client grouped
  (flattened to ``<namespace>__<name>`` function tools, regrouped for OpenAI and the answer).
- ``instructions`` (1 when the system text starts with ``instructions``), ``system_role``,
  ``strict_tools``, ``summary`` (``reasoning.summary``).

Reasoning signatures: Anthropic signs its thinking and needs it back verbatim in later turns. A
Responses client carries reasoning as ``reasoning`` items whose ``encrypted_content`` is opaque to
it, so an Anthropic signature (or redacted block) travels there, wrapped as ``SIGNED_PREFIX`` +
base64url(JSON). In answers from OpenAI's own Responses API the IR's ``ThinkingPart.signature``
holds the upstream's encrypted content behind ``OPENAI_ENCRYPTED``, so the encoder gives it back
unwrapped; those answers only ever reach a Responses client.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import orjson

from backend.ir.chat import FinishReason, ThinkingPart, Usage

#: ``ChatRequest.protocol`` / ``ChatResponse.protocol`` / ``Opaque.protocol`` of this codec.
PROTOCOL = "openai_responses"
FLAGS_KEY = "_responses"
#: Between a namespace and a function name in the flattened tool name (``ns__fn``).
NAMESPACE_SEP = "__"

#: ``ChatResponse.extra`` key: an OpenAI Responses upstream's ``output`` items verbatim (the
#: encoder keeps their ids, annotations and hosted-tool items, and takes text from the IR).
OUTPUT_KEY = "responses_output"

SIGNED_PREFIX = "sbx1."
OPENAI_ENCRYPTED = "openai-encrypted:"

_FINISH_FROM_INCOMPLETE: dict[str, FinishReason] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


def new_id(prefix: str) -> str:
    """``resp_`` / ``msg_`` / ``fc_`` / ``rs_`` + 48 hex characters, as OpenAI's ids look."""
    return f"{prefix}_{secrets.token_hex(24)}"


def new_response_id() -> str:
    return new_id("resp")


def status_for(finish: FinishReason) -> tuple[str, dict[str, Any] | None]:
    """(``status``, ``incomplete_details``) of a response that ended with ``finish``."""
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def finish_from_status(status: Any, incomplete: Any, has_calls: bool) -> FinishReason:
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return _FINISH_FROM_INCOMPLETE.get(str(reason), "length")
    return "tool_calls" if has_calls else "stop"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_to_wire(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def usage_from_wire(obj: Any) -> Usage:
    if not isinstance(obj, dict):
        return Usage()
    details = obj.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    out = obj.get("output_tokens_details")
    out = out if isinstance(out, dict) else {}
    return Usage(
        input_tokens=_int(obj.get("input_tokens")),
        output_tokens=_int(obj.get("output_tokens")),
        cached_tokens=_int(details.get("cached_tokens")),
        cache_write_tokens=_int(details.get("cache_write_tokens")),
        reasoning_tokens=_int(out.get("reasoning_tokens")),
    )


def joined_name(namespace: Any, name: str) -> str:
    """The IR (flattened) name of function ``name`` in ``namespace``."""
    return f"{namespace}{NAMESPACE_SEP}{name}" if isinstance(namespace, str) and namespace else name


def split_name(name: str, namespaces: set[str] | frozenset[str]) -> tuple[str | None, str]:
    """(namespace, function name) of a flattened name (a namespace the request declared)."""
    head, sep, tail = name.partition(NAMESPACE_SEP)
    if sep and head in namespaces and tail:
        return head, tail
    return None, name


def codec_flags(extra: dict[str, Any]) -> dict[str, Any] | None:
    flags = extra.get(FLAGS_KEY)
    return flags if isinstance(flags, dict) else None


# -- reasoning signatures ---------------------------------------------------------------------
def wrap_signature(part: ThinkingPart) -> str | None:
    """The ``encrypted_content`` a Responses client carries for ``part`` (None: nothing to keep)."""
    if part.signature and part.signature.startswith(OPENAI_ENCRYPTED):
        return part.signature[len(OPENAI_ENCRYPTED) :]
    if part.redacted_data is not None:
        payload: dict[str, str] = {"r": part.redacted_data}
    elif part.signature:
        payload = {"s": part.signature}
    else:
        return None
    return SIGNED_PREFIX + base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def unwrap_signature(encrypted: str, summary: str) -> ThinkingPart | None:
    """The Anthropic thinking a ``SIGNED_PREFIX`` blob stands for (None: not ours, or broken)."""
    if not encrypted.startswith(SIGNED_PREFIX):
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(encrypted[len(SIGNED_PREFIX) :]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("r"), str):
        return ThinkingPart(redacted_data=payload["r"])
    if isinstance(payload.get("s"), str):
        return ThinkingPart(thinking=summary, signature=payload["s"])
    return None
