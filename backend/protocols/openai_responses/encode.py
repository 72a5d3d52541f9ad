"""IR -> OpenAI Responses wire: requests to OpenAI's ``/v1/responses`` and answers to clients.

Upstream requests are rebuilt from the IR (so DLP's redactions are what OpenAI sees) plus the
codec flags: hosted tools, opaque items and parts at their positions, OpenAI's encrypted
reasoning, and every unmodelled parameter verbatim. The gateway keeps conversations itself, so
upstream requests say ``store: false``, carry no item ids, and ask for
``reasoning.encrypted_content`` whenever reasoning is on: the reasoning items then continue a
chain in a later turn without OpenAI storing anything.

Answers: each IR text block is one ``message`` item with one ``output_text`` part, each tool call
one ``function_call`` item, each thinking block one ``reasoning`` item whose summary is the
thinking text (see ``vocab`` for the signatures in ``encrypted_content``). When the answer came
from OpenAI's Responses API its own items are the skeleton (ids, annotations, hosted-tool items),
with text and arguments taken from the IR (restored by DLP).
"""

from __future__ import annotations

from typing import Any

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    FilePart,
    ImagePart,
    Message,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.protocols import files
from backend.protocols.model_rules import reasoning_effort, rules_for, sampling_default
from backend.protocols.openai_responses.vocab import (
    OPENAI_ENCRYPTED,
    OUTPUT_KEY,
    PROTOCOL,
    codec_flags,
    new_id,
    split_name,
    status_for,
    usage_to_wire,
    wrap_signature,
)

ENCRYPTED_INCLUDE = "reasoning.encrypted_content"


# -- outbound: a request to OpenAI's Responses API ---------------------------------------------
def encode_request(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    flags = codec_flags(req.extra) or {}
    params: dict[str, Any] = dict(flags.get("params") or {})
    body: dict[str, Any] = {"model": model}
    namespaces = frozenset(flags.get("namespaces") or ())
    system = list(req.system)
    if flags.get("instructions") and system:
        body["instructions"] = system.pop(0).text
    items: list[dict[str, Any]] = []
    if system:
        role = flags.get("system_role", "developer")
        items.append(_message(role, [_input_text(p.text) for p in system]))
    items.extend(_conversation(req.messages, namespaces))
    body["input"] = items
    tools = _tools(req, flags)
    if tools:
        body["tools"] = tools
    choice = flags.get("hosted_choice") or _tool_choice(req.tool_choice, namespaces)
    if choice is not None:
        body["tool_choice"] = choice
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    fixed = rules_for("openai", model).fixed_sampling
    if req.temperature is not None and not (fixed and sampling_default(req.temperature)):
        body["temperature"] = req.temperature
    if req.top_p is not None and not (fixed and sampling_default(req.top_p)):
        body["top_p"] = req.top_p
    text: dict[str, Any] = {}
    if req.response_format is not None:
        text["format"] = text_format(req.response_format)
    if "verbosity" in params:
        text["verbosity"] = params.pop("verbosity")
    if text:
        body["text"] = text
    reasoning = _reasoning(req, flags)
    if reasoning:
        body["reasoning"] = reasoning
    if req.metadata is not None:
        body["metadata"] = req.metadata
    if req.user is not None:
        body["user"] = req.user
    include = [i for i in params.pop("include", None) or [] if isinstance(i, str)]
    if (reasoning or rules_for("openai", model).fixed_sampling) and (
        ENCRYPTED_INCLUDE not in include
    ):
        include.append(ENCRYPTED_INCLUDE)
    if include:
        body["include"] = include
    body.update(params)
    body["store"] = False
    if stream:
        body["stream"] = True
    return body


def _reasoning(req: ChatRequest, flags: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if req.reasoning is not None:
        effort = req.reasoning.effort
        if effort is None or req.reasoning.budget_tokens is not None:
            effort = reasoning_effort(req.reasoning) or "none"
        out["effort"] = effort
    if flags.get("summary"):
        out["summary"] = flags["summary"]
    return out


def text_format(response_format: dict[str, Any]) -> dict[str, Any]:
    """The IR's chat-shaped ``response_format`` as a Responses ``text.format``."""
    kind = response_format.get("type")
    if kind != "json_schema":
        return {"type": kind or "text"}
    spec = response_format.get("json_schema") or {}
    return {"type": "json_schema", **spec}


def _tools(req: ChatRequest, flags: dict[str, Any]) -> list[dict[str, Any]]:
    """Function tools (regrouped into their namespaces) and hosted tools, in order."""
    strict = flags.get("strict_tools") or {}
    namespaces: dict[str, dict[str, Any]] = flags.get("namespaces") or {}
    out: list[dict[str, Any]] = []
    grouped: dict[str, dict[str, Any]] = {}
    for t in req.tools:
        if isinstance(t, Opaque):
            out.append(t.data)
            continue
        ns, name = split_name(t.name, frozenset(namespaces))
        tool: dict[str, Any] = {"type": "function", "name": name}
        if t.description is not None:
            tool["description"] = t.description
        tool["parameters"] = t.parameters
        if t.name in strict:
            tool["strict"] = strict[t.name]
        if ns is None:
            out.append(tool)
        elif ns in grouped:
            grouped[ns]["tools"].append(tool)
        else:
            grouped[ns] = {**namespaces[ns], "tools": [tool]}
            out.append(grouped[ns])
    return out


def _tool_choice(choice: ToolChoice | None, namespaces: frozenset[str]) -> Any:
    if choice is None:
        return None
    if choice.mode == "tool":
        ns, name = split_name(choice.name or "", namespaces)
        return {"type": "function", "name": name, **({"namespace": ns} if ns else {})}
    return choice.mode


def _input_text(text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": text}


def _message(role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


def _conversation(messages: list[Message], namespaces: frozenset[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for msg in messages:
        if len(msg.parts) == 1 and isinstance(msg.parts[0], Opaque) and _is_item(msg.parts[0]):
            out.append(msg.parts[0].data)  # a hosted-tool item, item_reference...
        elif msg.role == "assistant":
            out.extend(_assistant_items(msg, namespaces))
        elif msg.role == "system":
            texts = [_input_text(p.text) for p in msg.parts if isinstance(p, TextPart)]
            out.append(_message("developer", texts))
        else:
            out.extend(_user_items(msg))
    return out


def _is_item(part: Opaque) -> bool:
    """An opaque input item, as opposed to an opaque content part (``input_file``...)."""
    return not part.kind.startswith("input_")


def _user_items(msg: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for part in msg.parts:
        if isinstance(part, ToolResultPart):
            item: dict[str, Any] = {
                "type": "function_call_output",
                "call_id": part.tool_call_id,
                "output": _tool_output(part),
            }
            namespace = (part.extra or {}).get("_namespace")
            if namespace:
                item["namespace"] = namespace
            out.append(item)
        elif isinstance(part, TextPart):
            content.append(_input_text(part.text))
        elif isinstance(part, ImagePart):
            content.append(input_image(part))
        elif isinstance(part, FilePart):
            content.append(input_file(part))
        elif isinstance(part, Opaque):
            content.append(part.data)
    if content:
        out.append(_message("user", content))
    return out


def input_file(part: FilePart) -> dict[str, Any]:
    """A Responses client's ``input_file`` as it sent it (only Responses requests reach this
    encoder): the data URL (or bare base64), URL, ``file_id`` and name, unknown keys kept."""
    extra = part.extra or {}
    item: dict[str, Any] = {"type": "input_file"}
    if part.data is not None or part.text is not None:
        bare = extra.get("_bare")
        item["file_data"] = (
            files.base64_data(part, exact=True) if bare else files.data_url(part, exact=True)
        )
    if part.url is not None:
        item["file_url"] = part.url
    if part.file_id is not None:
        item["file_id"] = part.file_id
    if part.filename is not None:
        item["filename"] = part.filename
    item.update((k, v) for k, v in extra.items() if not k.startswith("_"))
    return item


def _tool_output(part: ToolResultPart) -> str | list[dict[str, Any]]:
    if all(isinstance(c, TextPart) for c in part.content):
        return "".join(c.text for c in part.content if isinstance(c, TextPart))
    out: list[dict[str, Any]] = []
    for c in part.content:
        if isinstance(c, TextPart):
            out.append(_input_text(c.text))
        elif isinstance(c, ImagePart):
            out.append(input_image(c))
        else:
            out.append(c.data)
    return out


def input_image(part: ImagePart) -> dict[str, Any]:
    url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.data or ''}"
    return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}


def _assistant_items(msg: Message, namespaces: frozenset[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []

    def flush() -> None:
        if texts:
            out.append(_message("assistant", list(texts)))
            texts.clear()

    for part in msg.parts:
        if isinstance(part, TextPart):
            texts.append({"type": "output_text", "text": part.text, "annotations": []})
            continue
        flush()
        if isinstance(part, ToolCallPart):
            ns, name = split_name(part.name, namespaces)
            call = {"type": "function_call", "call_id": part.id, "name": name}
            if ns:
                call["namespace"] = ns
            call["arguments"] = part.arguments
            out.append(call)
        elif isinstance(part, ThinkingPart):
            enc = (part.extra or {}).get("_encrypted_content")
            if enc is None and part.signature and part.signature.startswith(OPENAI_ENCRYPTED):
                enc = part.signature[len(OPENAI_ENCRYPTED) :]
            if enc:
                # Another provider's thinking cannot be given to OpenAI: only its own goes back.
                summary = [{"type": "summary_text", "text": part.thinking}] if part.thinking else []
                out.append({"type": "reasoning", "summary": summary, "encrypted_content": enc})
        elif isinstance(part, Opaque):
            out.append(part.data)
    flush()
    return out


# -- inbound: the answer to a Responses client -------------------------------------------------
def output_items(resp: ChatResponse, namespaces: frozenset[str]) -> list[dict[str, Any]]:
    """The ``output`` array for ``resp`` (see the module docstring)."""
    skeleton = resp.extra.get(OUTPUT_KEY) if resp.protocol == PROTOCOL else None
    if isinstance(skeleton, list):
        merged = _merge_skeleton(skeleton, resp.content)
        if merged is not None:
            return merged
    items: list[dict[str, Any]] = []
    for part in resp.content:
        item = output_item(part, namespaces)
        if item is not None:
            items.append(item)
    return items


def output_item(part: Part, namespaces: frozenset[str]) -> dict[str, Any] | None:
    """One answer part as a finished output item (None for parts an answer cannot hold)."""
    if isinstance(part, TextPart):
        if not part.text:
            return None
        return message_item(new_id("msg"), "completed", [output_text(part.text)])
    if isinstance(part, ToolCallPart):
        return function_call_item(new_id("fc"), part, "completed", namespaces)
    if isinstance(part, ThinkingPart):
        summary = [summary_text(part.thinking)] if part.thinking else []
        return reasoning_item(new_id("rs"), summary, wrap_signature(part))
    if isinstance(part, Opaque) and part.protocol == PROTOCOL:
        return part.data
    return None


def message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def summary_text(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}


def function_call_item(
    item_id: str, call: ToolCallPart, status: str, namespaces: frozenset[str]
) -> dict[str, Any]:
    namespace, name = split_name(call.name, namespaces)
    item = {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": call.arguments,
        "call_id": call.id,
        "name": name,
    }
    if namespace:
        item["namespace"] = namespace
    return item


def request_namespaces(req: ChatRequest) -> frozenset[str]:
    """The namespaces the client grouped its tools in (flattened names split on them)."""
    return frozenset((codec_flags(req.extra) or {}).get("namespaces") or ())


def reasoning_item(
    item_id: str, summary: list[dict[str, Any]], encrypted: str | None
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": summary}
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def _merge_skeleton(skeleton: list[Any], content: list[Part]) -> list[dict[str, Any]] | None:
    """OpenAI's own items with the IR's (restored) text; None when they do not line up."""
    parts = iter(content)
    out: list[dict[str, Any]] = []
    for raw in skeleton:
        if not isinstance(raw, dict):
            continue
        item = dict(raw)
        kind = item.get("type")
        if kind == "message":
            pieces = []
            for piece in item.get("content") or []:
                part = next(parts, None)
                if not isinstance(part, TextPart) or not isinstance(piece, dict):
                    return None
                key = "refusal" if piece.get("type") == "refusal" else "text"
                pieces.append({**piece, key: part.text})
            item["content"] = pieces
        elif kind == "function_call":
            part = next(parts, None)
            if not isinstance(part, ToolCallPart):
                return None
            item["arguments"] = part.arguments
        elif kind == "reasoning":
            if not isinstance(next(parts, None), ThinkingPart):
                return None
        out.append(item)
    return None if next(parts, None) is not None else out


def encode_response(
    resp: ChatResponse, req: ChatRequest, *, response_id: str, created_at: int
) -> dict[str, Any]:
    """The complete ``response`` object (the same as a stream's final event carries)."""
    return response_object(
        req,
        response_id=response_id,
        created_at=created_at,
        output=output_items(resp, request_namespaces(req)),
        status=status_for(resp.finish_reason),
        usage=usage_to_wire(resp.usage),
    )


def response_object(
    req: ChatRequest,
    *,
    response_id: str,
    created_at: int,
    output: list[dict[str, Any]],
    status: tuple[str, dict[str, Any] | None],
    usage: dict[str, Any] | None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` object echoing the request's settings, as OpenAI answers them."""
    echo: dict[str, Any] = (codec_flags(req.extra) or {}).get("echo") or {}
    flags = codec_flags(req.extra) or {}
    asked = echo.get("reasoning")
    reasoning: dict[str, Any] = asked if isinstance(asked, dict) else {}
    text = dict(echo["text"]) if isinstance(echo.get("text"), dict) else {}
    text.setdefault("format", {"type": "text"})
    text.setdefault("verbosity", "medium")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status[0],
        "background": bool(echo.get("background") or False),
        "error": error,
        "incomplete_details": status[1],
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "max_tool_calls": echo.get("max_tool_calls"),
        "model": req.model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": echo.get("previous_response_id"),
        "prompt_cache_key": echo.get("prompt_cache_key"),
        "reasoning": {
            "effort": reasoning.get("effort"),
            "summary": flags.get("summary"),
        },
        "safety_identifier": echo.get("safety_identifier"),
        "service_tier": echo.get("service_tier") or "default",
        "store": echo.get("store", True),
        "temperature": echo.get("temperature", 1.0),
        "text": text,
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools") or [],
        "top_logprobs": echo.get("top_logprobs", 0),
        "top_p": echo.get("top_p", 1.0),
        "truncation": echo.get("truncation", "disabled"),
        "usage": usage,
        "user": echo.get("user"),
        "metadata": echo.get("metadata") or {},
    }
