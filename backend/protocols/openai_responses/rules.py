"""What a Responses request may ask of each provider: pass, documented no-op, or a 400.

OpenAI itself (the provider named ``openai``) is reached through its own Responses API and gets
everything verbatim. Every other provider (Anthropic, Gemini, Ollama, Azure and OpenAI-compatible
chat servers) gets the IR; what the IR cannot carry is judged here, by name:

- hosted tools and a ``tool_choice`` naming one, input items and content parts with no IR
  meaning (hosted tool calls, ``item_reference``, images by ``file_id``, files inside a tool
  output): refused, since only OpenAI runs those tools or holds those files (``input_file``
  parts are the IR's files: ``files.file_refusal`` judges them per provider, a ``file_id`` there
  too);
- ``RESPONSES_PARAMS`` below for the other request fields: ``ignore`` is a documented no-op (the
  answer is the same without it), ``refuse`` a 400 naming the field and the provider; a field not
  in the table is refused, so a new one is never dropped silently.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from backend.ir.chat import ChatRequest, Opaque, ToolResultPart
from backend.ir.errors import InvalidRequest
from backend.protocols.openai_responses.vocab import FLAGS_KEY, PROTOCOL, codec_flags

Support = Literal["ignore", "refuse"]

#: Responses request fields kept in ``params``, for providers other than OpenAI.
RESPONSES_PARAMS: dict[str, Support] = {
    # Hints and bookkeeping: the answer is the same without them.
    "service_tier": "ignore",
    "prompt_cache_key": "ignore",
    "prompt_cache_retention": "ignore",
    "prompt_cache_options": "ignore",
    "safety_identifier": "ignore",
    "client_metadata": "ignore",
    "verbosity": "ignore",
    # Counts calls of hosted tools only, which no other provider runs.
    "max_tool_calls": "ignore",
    # The conversation is always sent whole; one too long fails as with 'disabled'.
    "truncation": "ignore",
    # Judged value by value below.
    "include": "ignore",
    "top_logprobs": "refuse",
    "prompt": "refuse",
    "context_management": "refuse",
    "moderation": "refuse",
    "background": "refuse",
    "conversation": "refuse",
}

_WHY: dict[str, str] = {
    "top_logprobs": "it returns no log probabilities",
    "prompt": "prompt templates are stored at OpenAI",
    "context_management": "conversation compaction runs at OpenAI",
    "moderation": "moderation runs at OpenAI",
}

#: ``include`` values another provider cannot produce (the others concern hosted tools, which
#: are refused on their own, or encrypted reasoning, which the gateway provides itself).
_INCLUDE_REFUSED = {"message.output_text.logprobs": "it returns no log probabilities"}

#: How to stop a client from sending a hosted tool it adds by default.
_HINTS: dict[str, str] = {
    "web_search": ' (Codex adds it by default: set web_search = "disabled" in its config.toml)',
}

#: Fields no provider gets through this gateway, OpenAI included.
_NEVER: dict[str, str] = {
    "background": "background responses are not supported by this gateway",
    "conversation": (
        "the Conversations API is not supported by this gateway; continue a conversation "
        "with previous_response_id"
    ),
}


def uses_responses_api(kind: str, provider: str) -> bool:
    """Whether a Responses request to this provider goes to OpenAI's own ``/v1/responses``."""
    return kind == "openai" and provider == "openai"


def responses_refusal(
    req: ChatRequest, kind: str, provider: str, model: str
) -> InvalidRequest | None:
    """The 400 a Responses request earns on ``provider`` (adapter ``kind``), or None."""
    flags = codec_flags(req.extra)
    if flags is None:
        return None
    params: dict[str, Any] = flags.get("params") or {}
    for name, why in _NEVER.items():
        value = params.get(name)
        if value not in (None, False):
            return _refused(name, why)
    if uses_responses_api(kind, provider):
        return None
    where = f"{provider} model {model!r}"
    only = "only OpenAI's Responses API"
    for tool in req.tools:
        if isinstance(tool, Opaque):
            hint = _HINTS.get(tool.kind, "")
            return _refused(
                "tools",
                f"'{tool.kind}' is a hosted tool that {only} runs; {where} cannot honour it" + hint,
                code="unsupported_value",
            )
    choice = flags.get("hosted_choice")
    if choice is not None:
        return _refused(
            "tool_choice",
            f"'{choice.get('type')}' names a hosted tool that {only} runs; {where} cannot "
            "honour it",
            code="unsupported_value",
        )
    opaque = _first_opaque(req)
    if opaque is not None:
        if isinstance(opaque.data.get("file_id"), str):
            return _refused(
                "input",
                f"'file_id' of an '{opaque.kind}' part names a file stored at OpenAI, which "
                f"{where} cannot read; send the content itself (image_url as a data URL, "
                "file_data)",
                code="unsupported_value",
            )
        what = "content parts" if opaque.kind.startswith("input_") else "input items"
        return _refused(
            "input",
            f"{what} of type '{opaque.kind}' (files inside tool outputs, hosted tool calls) can "
            f"only be sent to {only}; {where} cannot honour them",
            code="unsupported_value",
        )
    for name, value in params.items():
        if name == "include":
            for entry in value if isinstance(value, list) else []:
                if entry in _INCLUDE_REFUSED:
                    return _refused(
                        "include",
                        f"'{entry}' cannot be honoured by {where}: {_INCLUDE_REFUSED[entry]}",
                    )
            continue
        if name == "top_logprobs" and value == 0:
            continue
        if RESPONSES_PARAMS.get(name, "refuse") == "refuse":
            why = _WHY.get(name, "it has no such parameter")
            return _refused(name, f"'{name}' cannot be honoured by {where}: {why}")
    return None


def _first_opaque(req: ChatRequest) -> Opaque | None:
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, Opaque):
                return part
            if isinstance(part, ToolResultPart):
                for item in part.content:
                    if isinstance(item, Opaque):
                        return item
    return None


def same_wire_view(req: ChatRequest, kind: str, provider: str) -> ChatRequest:
    """``req`` as the per-model rules should judge it on this provider.

    OpenAI's Responses API takes every Responses extra (hosted tools, files...): for it the
    request is "same wire", so only the model's own rules (sampling, structured output) apply.
    """
    if req.protocol == PROTOCOL and uses_responses_api(kind, provider):
        return dataclasses.replace(req, protocol="openai")
    return req


def is_responses_request(req: ChatRequest) -> bool:
    return FLAGS_KEY in req.extra


def _refused(param: str, why: str, *, code: str = "unsupported_parameter") -> InvalidRequest:
    return InvalidRequest(f"Unsupported parameter: {why}.", param=param, code=code)
