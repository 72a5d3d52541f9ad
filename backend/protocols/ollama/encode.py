"""IR -> Ollama native request bodies (``/api/chat``, ``/api/embed``).

Choices where Ollama has no direct equivalent:

- ``system`` text becomes one leading ``system`` message (parts joined by a blank line, since
  many model templates only read one); mid-conversation system messages stay in place.
- Tool results become ``role: "tool"`` messages with ``tool_name`` (looked up from the earlier
  ``ToolCallPart`` with the same id; an id with no such call is the caller's error); a failed
  result's content is prefixed ``Error: `` as Ollama has no error flag. Text and
  images that share the IR user message with tool results follow them as a ``user`` message.
- Tool-call ``arguments`` go out as a JSON object (Ollama rejects a string).
- Images must be inline base64: ``data:`` URLs are unpacked into ``images``; an http(s) URL is
  refused (400, ``model_rules``): Ollama cannot fetch it and the gateway does not fetch for it.
- Ollama has no ``tool_choice``: ``none`` sends no tools; ``required`` and a named tool cannot be
  enforced and are refused (400, ``model_rules``).
- ``options`` holds the sampling fields: ``num_predict`` (max tokens), ``temperature``,
  ``top_p``, ``stop``, and from ``extra`` OpenAI ``seed``, ``frequency_penalty``,
  ``presence_penalty`` and Anthropic ``top_k``. Other fields Ollama cannot honour (``n``,
  ``logprobs``, audio...) are refused by ``model_rules.refusal``.
- ``response_format`` json_schema -> ``format: <schema>``; json_object -> ``format: "json"``.
- ``reasoning_effort`` / Anthropic ``thinking`` -> ``think``: a level for models that take one
  (gpt-oss), else ``true``; ``none`` / disabled -> ``false`` (``model_rules.ollama_think``).
- ``ThinkingPart``, ``parallel_tool_calls``, ``user`` and ``metadata`` are dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from backend.ir.errors import InvalidRequest
from backend.protocols.model_rules import ollama_think, refusal, sampling_extras

#: ``ChatRequest.extra`` sampling fields (OpenAI's and Anthropic's) that are Ollama ``options``.
_EXTRA_OPTIONS = ("seed", "frequency_penalty", "presence_penalty", "top_k")


def encode_request(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    refused = refusal(req, "ollama", "ollama", model)
    if refused is not None:
        raise refused
    body: dict[str, Any] = {"model": model, "messages": _messages(req), "stream": stream}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    options: dict[str, Any] = {}
    if req.max_tokens is not None:
        options["num_predict"] = req.max_tokens
    if req.temperature is not None:
        options["temperature"] = req.temperature
    if req.top_p is not None:
        options["top_p"] = req.top_p
    if req.stop:
        options["stop"] = list(req.stop)
    # seed, penalties, top_k, whichever door asked (``model_rules.sampling_extras``).
    options.update(sampling_extras(req))
    if options:
        body["options"] = options
    if req.reasoning is not None:
        body["think"] = ollama_think(req.reasoning, model)
    fmt = req.response_format or {}
    if fmt.get("type") == "json_object":
        body["format"] = "json"
    elif fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        body["format"] = schema if isinstance(schema, dict) else "json"
    return body


def encode_embedding_request(req: EmbeddingRequest, model: str) -> dict[str, Any]:
    if any(not isinstance(item, str) for item in req.input):
        raise InvalidRequest("ollama: embeddings take text input, not token ids", param="input")
    body: dict[str, Any] = {"model": model, "input": list(req.input)}
    if req.dimensions:
        body["dimensions"] = req.dimensions
    return body


def _messages(req: ChatRequest) -> list[dict[str, Any]]:
    names = {p.id: p.name for m in req.messages for p in m.parts if isinstance(p, ToolCallPart)}
    out: list[dict[str, Any]] = []
    system = "\n\n".join(p.text for p in req.system if p.text)
    if system:
        out.append({"role": "system", "content": system})
    for msg in req.messages:
        if msg.role == "assistant":
            out.append(_assistant(msg))
        elif msg.role == "system":
            out.append({"role": "system", "content": msg.text()})
        else:
            out.extend(_user(msg, names))
    return out


def _assistant(msg: Message) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": "assistant", "content": msg.text()}
    calls = [
        {"function": {"name": p.name, "arguments": _args(p)}}
        for p in msg.parts
        if isinstance(p, ToolCallPart)
    ]
    if calls:
        entry["tool_calls"] = calls
    return entry


def _user(msg: Message, names: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pending: list[TextPart | ImagePart] = []
    for p in msg.parts:
        if isinstance(p, ToolResultPart):
            if pending:
                out.append(_content_message("user", pending))
                pending = []
            name = names.get(p.tool_call_id)
            if name is None:
                raise InvalidRequest(
                    f"ollama: tool result {p.tool_call_id!r} answers no earlier tool call",
                    param="messages",
                )
            # Opaque items (another protocol's blocks) were refused before encoding.
            content = [c for c in p.content if isinstance(c, TextPart | ImagePart)]
            if p.is_error:
                # No error flag on the wire: tell the model in words.
                content.insert(0, TextPart("Error: "))
            tool_msg = _content_message("tool", content)
            tool_msg["tool_name"] = name
            out.append(tool_msg)
        elif isinstance(p, (TextPart, ImagePart)):
            pending.append(p)
    if pending or not out:
        out.append(_content_message("user", pending))
    return out


def _content_message(role: str, parts: list[TextPart | ImagePart]) -> dict[str, Any]:
    texts: list[str] = []
    images: list[str] = []
    for p in parts:
        if isinstance(p, TextPart):
            texts.append(p.text)
        elif p.data:
            images.append(p.data)
        elif p.url and p.url.startswith("data:"):
            images.append(p.url.partition(",")[2])
        # Any other URL was refused by ``model_rules.refusal`` before encoding.
    entry: dict[str, Any] = {"role": role, "content": "".join(texts)}
    if images:
        entry["images"] = images
    return entry


def _args(p: ToolCallPart) -> dict[str, Any]:
    if not p.arguments.strip():
        return {}
    try:
        value = orjson.loads(p.arguments)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"ollama: arguments of tool call {p.id!r} are not valid JSON", param="messages"
        ) from exc
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"ollama: arguments of tool call {p.id!r} must be a JSON object", param="messages"
        )
    return value


def _tools(req: ChatRequest) -> list[dict[str, Any]]:
    # "required" and a named tool were refused before encoding; "none" means no tools.
    choice = req.tool_choice
    if choice is not None and choice.mode == "none":
        return []
    # Opaque tools (another protocol's server tools) were refused before encoding.
    tools = [t for t in req.tools if isinstance(t, Tool)]
    out = []
    for t in tools:
        fn: dict[str, Any] = {"name": t.name}
        if t.description:
            fn["description"] = t.description
        fn["parameters"] = t.parameters or {"type": "object", "properties": {}}
        out.append({"type": "function", "function": fn})
    return out
