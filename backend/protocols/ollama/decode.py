"""Ollama native response bodies -> IR (``/api/chat``, ``/api/embed``, ``/api/tags``).

- Ollama has no response id: a stable one is derived from ``created_at`` and the model.
- Tool calls carry no id on most Ollama versions; one is made up as ``call_<r>_<n>_<name>``
  (``r`` from the response id, ``n`` counting the calls of one answer from 0), built the same way
  for a streamed and a non-streamed answer and distinct across turns. An id Ollama sends is kept.
- ``done_reason`` ``length`` is ``length``; anything else is ``stop``, or ``tool_calls`` when the
  answer called tools (Ollama itself says ``stop`` then).
- ``message.thinking`` (sent when the request said ``think``) is a ``ThinkingPart`` (unsigned).
- Usage: ``prompt_eval_count`` is input, ``eval_count`` output; there is no cache breakdown.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

import orjson

from backend.ir.chat import (
    ChatResponse,
    EmbeddingResponse,
    FinishReason,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from backend.ir.errors import UpstreamError

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_FRACTION = re.compile(r"(\.\d{6})\d+")


def malformed(what: str) -> UpstreamError:
    return UpstreamError(f"ollama: malformed upstream response ({what})", code="upstream_malformed")


def response_id(body: dict[str, Any]) -> str:
    seed = f"{body.get('created_at', '')}|{body.get('model', '')}".encode()
    return "ollama-" + hashlib.sha256(seed).hexdigest()[:24]


def created_at(body: dict[str, Any]) -> int:
    """``created_at`` (RFC 3339 with nanoseconds) as epoch seconds; 0 when absent or odd."""
    raw = body.get("created_at")
    if not isinstance(raw, str):
        return 0
    try:
        text = _FRACTION.sub(r"\1", raw).replace("Z", "+00:00")
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


def usage_from(body: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=_int(body.get("prompt_eval_count")), output_tokens=_int(body.get("eval_count"))
    )


def map_finish(done_reason: Any, has_tool_calls: bool) -> FinishReason:
    if done_reason == "length":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def tool_calls_from(
    message: dict[str, Any], first_index: int, response_id: str
) -> list[ToolCallPart]:
    raw = message.get("tool_calls") or []
    if not isinstance(raw, list):
        raise malformed("tool_calls is not a list")
    out: list[ToolCallPart] = []
    for i, call in enumerate(raw, start=first_index):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise malformed("tool call without a function name")
        args = fn.get("arguments")
        if args is None:
            args = {}
        # Some models emit arguments as a JSON string; pass that text through unchanged.
        arguments = args if isinstance(args, str) else orjson.dumps(args).decode()
        given = call.get("id")
        if isinstance(given, str) and given:
            call_id = given
        else:
            prefix = response_id.removeprefix("ollama-")[:8]
            call_id = f"call_{prefix}_{i}_{_UNSAFE.sub('_', fn['name'])[:64]}"
        out.append(ToolCallPart(id=call_id, name=fn["name"], arguments=arguments))
    return out


def message_of(body: dict[str, Any]) -> dict[str, Any]:
    message = body.get("message")
    if message is None:
        return {}
    if not isinstance(message, dict):
        raise malformed("message is not an object")
    return message


def decode_response(body: Any) -> ChatResponse:
    if not isinstance(body, dict):
        raise malformed("body is not an object")
    if "error" in body:
        raise UpstreamError(f"ollama: {str(body['error'])[:500]}")
    if "message" not in body:
        raise malformed("no message")
    message = message_of(body)
    content: list[Part] = []
    thinking = message.get("thinking")
    if isinstance(thinking, str) and thinking:
        content.append(ThinkingPart(thinking=thinking))
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append(TextPart(text))
    rid = response_id(body)
    calls = tool_calls_from(message, 0, rid)
    content.extend(calls)
    model = body.get("model")
    return ChatResponse(
        id=rid,
        model=model if isinstance(model, str) else "",
        content=content,
        finish_reason=map_finish(body.get("done_reason"), bool(calls)),
        usage=usage_from(body),
        created=created_at(body),
    )


def decode_embedding_response(body: Any, model: str) -> EmbeddingResponse:
    if not isinstance(body, dict) or not isinstance(body.get("embeddings"), list):
        raise malformed("embeddings missing")
    vectors: list[list[float]] = []
    for values in body["embeddings"]:
        if not isinstance(values, list):
            raise malformed("embedding is not a list")
        vectors.append([float(v) for v in values])
    return EmbeddingResponse(
        model=model, vectors=vectors, usage=Usage(input_tokens=_int(body.get("prompt_eval_count")))
    )


def decode_tags(body: Any) -> list[str]:
    """``/api/tags`` -> model names (``llama3.2:latest``...)."""
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        raise malformed("models missing")
    names = []
    for m in models:
        name = (m.get("name") or m.get("model")) if isinstance(m, dict) else None
        if isinstance(name, str):
            names.append(name)
    return names


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
