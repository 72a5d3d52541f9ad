"""OpenAI chat completions wire -> IR for upstream answers (tolerant).

Answers are read tolerantly, because OpenAI-compatible servers (vLLM, Ollama, LM Studio, Azure)
differ in small ways; only a body that is not a chat completion at all is an ``UpstreamError``.
What the IR does not model is kept in ``ChatResponse.extra`` for an OpenAI client (see
``vocab``): further choices, log probabilities, the message's and the answer's unknown keys and
the usage object.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.chat import ChatResponse, Part, TextPart, ThinkingPart, ToolCallPart
from backend.ir.errors import UpstreamError
from backend.protocols.openai_chat.vocab import (
    ANSWER_KEYS,
    CHOICES_KEY,
    LOGPROBS_KEY,
    MESSAGE_KEY,
    MESSAGE_KEYS,
    USAGE_KEY,
    finish_from_wire,
    usage_from_wire,
)


# -- outbound: an upstream's answer ----------------------------------------------------------------
def decode_response(body: Any, *, provider: str = "openai") -> ChatResponse:
    """Decode a 200 chat completion from an OpenAI-format upstream.

    Choice 0 is the IR answer; its ``logprobs`` and any further choices (``n > 1``) ride in
    ``extra`` verbatim, for an OpenAI client.
    """
    if not isinstance(body, dict):
        raise UpstreamError(f"{provider}: malformed chat completion (not a JSON object)")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError(f"{provider}: malformed chat completion (no choices)")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise UpstreamError(f"{provider}: malformed chat completion (no message)")
    content: list[Part] = []
    # OpenAI-compatible reasoning servers (vLLM, DeepSeek...) put the thinking text here.
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        content.append(ThinkingPart(thinking=reasoning))
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append(TextPart(text))
    elif isinstance(text, list):
        content.extend(
            TextPart(p["text"])
            for p in text
            if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]
        )
    refusal = message.get("refusal")
    if not any(isinstance(p, TextPart) for p in content) and isinstance(refusal, str) and refusal:
        content.append(TextPart(refusal))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        content.extend(_upstream_tool_call(c, i, provider) for i, c in enumerate(calls))
    finish = finish_from_wire(choice.get("finish_reason"))
    if finish == "stop" and any(isinstance(p, ToolCallPart) for p in content):
        # Some compatible servers say "stop" after a tool call; clients need to know to run it.
        finish = "tool_calls"
    created = body.get("created")
    # The passthrough: unmodelled top-level fields (system_fingerprint, service_tier...), the
    # message's (annotations, audio...), the log probabilities and the further choices.
    extra: dict[str, Any] = {
        k: v for k, v in body.items() if k not in ANSWER_KEYS and v is not None
    }
    message_extra = {
        k: v for k, v in message.items() if k not in MESSAGE_KEYS and v not in (None, [])
    }
    if message_extra:
        extra[MESSAGE_KEY] = message_extra
    if isinstance(body.get("usage"), dict):
        extra[USAGE_KEY] = body["usage"]
    if isinstance(choice.get("logprobs"), dict):
        extra[LOGPROBS_KEY] = choice["logprobs"]
    more = [c for c in choices[1:] if isinstance(c, dict)]
    if more:
        extra[CHOICES_KEY] = more
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        finish_reason=finish,
        usage=usage_from_wire(body.get("usage")),
        created=created if isinstance(created, int) else 0,
        extra=extra,
        protocol="openai",
    )


def _upstream_tool_call(call: Any, i: int, provider: str) -> ToolCallPart:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise UpstreamError(f"{provider}: malformed tool call in chat completion")
    fn = call["function"]
    arguments = fn.get("arguments")
    if arguments is None:
        arguments = "{}"
    elif not isinstance(arguments, str):
        # Some compatible servers send the arguments as an object.
        arguments = orjson.dumps(arguments).decode()
    return ToolCallPart(
        id=str(call.get("id") or f"call_{i}"),
        name=str(fn.get("name") or ""),
        arguments=arguments,
    )
