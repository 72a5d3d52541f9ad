"""IR -> OpenAI chat completions wire: requests to upstreams and answers to clients.

Per-model rules come from ``model_rules``: reasoning models (o-series, gpt-5) get
``max_completion_tokens`` and no sampling parameter at its default.

Reasoning: a request from another protocol asks a reasoning model for ``reasoning_effort``
(``model_rules.reasoning_effort``; other models cannot reason, a documented no-op). In answers,
thinking reaches the client as ``message.reasoning_content`` (the text, the convention
OpenAI-compatible servers use) and, when it is Anthropic's signed or redacted thinking,
``message.thinking_blocks``: the Anthropic blocks verbatim (LiteLLM's convention). A client
that echoes ``thinking_blocks`` back on the assistant message gets them restored for Anthropic.

Passthrough (an OpenAI client's request, ``ChatRequest.protocol == "openai"``): unmodelled
top-level fields, messages' and parts' unknown keys, content parts (``input_audio``, ``file``),
tools and tool calls other than functions are written back verbatim and in place; an OpenAI
upstream's answer extras (further choices, log probabilities, ``annotations``, ``audio``,
``system_fingerprint``...) come back to an OpenAI client likewise. Another protocol's extras
are skipped here (they were refused before encoding, ``model_rules.refusal``).

Lossy by nature where OpenAI has no equivalent: thinking parts are not sent upstream, a tool
result's images travel in a ``user`` message right after the ``tool`` messages (tool messages
hold text only), and ``ToolResultPart.is_error`` has no flag to map to.
"""

from __future__ import annotations

import hashlib
import secrets
import time
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
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.protocols import files
from backend.protocols.extras import caller_protocol, same_wire
from backend.protocols.model_limits import clamp_output
from backend.protocols.model_rules import (
    reasoning_effort,
    rules_for,
    sampling_default,
    sampling_extras,
    takes_reasoning_effort,
)
from backend.protocols.openai_chat.vocab import (
    CHOICES_KEY,
    LOGPROBS_KEY,
    MESSAGE_KEY,
    USAGE_KEY,
    codec_flags,
    finish_to_wire,
    merge_usage,
    usage_to_wire,
)


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(14)


def end_user_id(user: str) -> str:
    """An end-user id as OpenAI takes it: at most 64 characters, else its SHA-256 in hex."""
    return user if len(user) <= 64 else hashlib.sha256(user.encode()).hexdigest()


# -- outbound: a request to an OpenAI-format upstream ----------------------------------------------
def encode_request(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """Encode the IR as a chat completions body for ``model`` (the upstream's model id).

    A stream always asks for ``include_usage``: the gateway bills from the final usage chunk,
    whatever the client asked for. ``extra`` is forwarded only for requests this codec decoded
    (see ``vocab``), so another protocol's extras never reach OpenAI.
    """
    flags = codec_flags(req.extra)
    own = same_wire(req, "openai")
    rules = rules_for("openai", model)
    body: dict[str, Any] = {"model": model, "messages": _encode_messages(req, flags or {}, own)}
    strict = (flags or {}).get("strict_tools") or {}
    tools = [t for tool in req.tools if (t := _encode_tool(tool, strict, own)) is not None]
    if tools:
        body["tools"] = tools
    if req.tool_choice is not None:
        body["tool_choice"] = _encode_tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        # A reasoning model answers 400 to max_tokens, whatever the client called it.
        field = rules.max_tokens_field
        if not rules.fixed_sampling:
            field = (flags or {}).get("max_tokens_field", field)
        # Above the model's ceiling the real API answers 400; the ceiling is what it can give.
        body[field] = clamp_output("openai", model, req.max_tokens)
    # Reasoning models take sampling parameters at their default (1) at most, so 1 is left
    # out; any other value was refused before encoding (``model_rules.refusal``).
    fixed = rules.fixed_sampling
    if req.temperature is not None and not (fixed and sampling_default(req.temperature)):
        body["temperature"] = req.temperature
    if req.top_p is not None and not (fixed and sampling_default(req.top_p)):
        body["top_p"] = req.top_p
    if req.stop:
        body["stop"] = list(req.stop)
    if req.response_format is not None:
        body["response_format"] = req.response_format
    if caller_protocol(req) == "anthropic":
        # Anthropic's metadata holds only the end user's id: OpenAI's safety_identifier and its
        # older name, user, both at most 64 characters (a longer id goes hashed, as OpenAI
        # recommends for identifiers anyway).
        if req.user:
            body["user"] = body["safety_identifier"] = end_user_id(req.user)
    else:
        if req.user is not None:
            body["user"] = req.user
        if req.metadata is not None:
            body["metadata"] = req.metadata
    if stream:
        body["stream"] = True
        body["stream_options"] = {
            **((flags or {}).get("stream_options") or {}),
            "include_usage": True,
        }
    if own:
        # The passthrough: every top-level field the IR does not model, as the client sent it.
        body.update((k, v) for k, v in req.extra.items() if not k.startswith("_"))
    else:
        # Another door's seed and penalties (Gemini's generationConfig); its top-k has no
        # OpenAI field (``model_rules`` refuses it or documents the no-op).
        sampling = sampling_extras(req)
        body.update((k, v) for k, v in sampling.items() if k != "top_k")
        if req.reasoning is not None and takes_reasoning_effort("openai", model):
            effort = reasoning_effort(req.reasoning)
            if effort is not None:
                body["reasoning_effort"] = effort
    return body


def _encode_messages(req: ChatRequest, flags: dict[str, Any], own: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        system = {"role": flags.get("system_role", "system"), "content": _text_content(req.system)}
        if own and any(p.extra for p in req.system):
            system["content"] = [_text_part(p, own) for p in req.system]
        out.append(system)
    for message in req.messages:
        if message.role == "system":
            texts = [p for p in message.parts if isinstance(p, TextPart)]
            msg: dict[str, Any] = {"role": "system", "content": _text_content(texts)}
            out.append(_extra(msg, message.extra, own))
        elif message.role == "assistant":
            out.append(_encode_assistant(message, own))
        else:
            out.extend(_encode_user(message, own))
    return out


def _extra(obj: dict[str, Any], extra: dict[str, Any] | None, own: bool) -> dict[str, Any]:
    """``obj`` with the unmodelled keys its client sent (same protocol only)."""
    if own and extra:
        obj.update((k, v) for k, v in extra.items() if not k.startswith("_"))
    return obj


def _text_part(part: TextPart, own: bool) -> dict[str, Any]:
    return _extra({"type": "text", "text": part.text}, part.extra, own)


def _text_content(parts: list[TextPart]) -> str | list[dict[str, Any]]:
    if len(parts) == 1:
        return parts[0].text
    if not parts:
        return ""
    return [{"type": "text", "text": p.text} for p in parts]


def _image_url(part: ImagePart, own: bool = False) -> dict[str, Any]:
    data = files.standard_base64(part.data or "")  # a Gemini client's may be URL-safe
    url = part.url or f"data:{part.media_type or 'image/png'};base64,{data}"
    image: dict[str, Any] = {"url": url}
    if part.detail is not None:
        image["detail"] = part.detail
    return _extra({"type": "image_url", "image_url": image}, part.extra, own)


def file_part(part: FilePart, own: bool = False) -> dict[str, Any]:
    """``{"type": "file", "file": {...}}``: base64 as a data URL with a file name (OpenAI wants
    one beside ``file_data``), or the ``file_id``. File URLs never get here (refused: chat
    completions has none)."""
    extra = part.extra or {}
    obj: dict[str, Any] = {}
    if part.data is not None or part.text is not None:
        bare = own and extra.get("_bare")
        obj["file_data"] = (
            files.base64_data(part, exact=own) if bare else files.data_url(part, exact=own)
        )
        if part.filename is not None or not own:
            obj["filename"] = files.filename(part)
    if part.file_id is not None:
        obj["file_id"] = part.file_id
    if own and isinstance(extra.get("file"), dict):
        obj.update(extra["file"])
    body = {"type": "file", "file": obj}
    return _extra(body, {k: v for k, v in extra.items() if k != "file"}, own)


def _content_part(
    part: TextPart | ImagePart | FilePart | Opaque, own: bool
) -> dict[str, Any] | None:
    if isinstance(part, Opaque):
        return dict(part.data) if part.protocol == "openai" else None
    if isinstance(part, FilePart):
        return file_part(part, own)
    return _text_part(part, own) if isinstance(part, TextPart) else _image_url(part, own)


def _encode_user(message: Message, own: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rest: list[TextPart | ImagePart | FilePart | Opaque] = []
    results = [p for p in message.parts if isinstance(p, ToolResultPart)]
    for result in results:
        texts = [c for c in result.content if isinstance(c, TextPart)]
        tool_msg = {
            "role": "tool",
            "tool_call_id": result.tool_call_id,
            "content": _text_content(texts),
        }
        out.append(_extra(tool_msg, result.extra, own))
        rest.extend(c for c in result.content if isinstance(c, ImagePart | Opaque))
    rest.extend(p for p in message.parts if isinstance(p, TextPart | ImagePart | FilePart | Opaque))
    if rest or not results:
        content: str | list[dict[str, Any]]
        if not rest:
            content = ""
        elif len(rest) == 1 and isinstance(rest[0], TextPart) and not (own and rest[0].extra):
            content = rest[0].text
        else:
            content = [c for p in rest if (c := _content_part(p, own)) is not None]
        msg: dict[str, Any] = {"role": "user", "content": content}
        if message.name is not None:
            msg["name"] = message.name
        out.append(_extra(msg, message.extra, own))
    return out


def _encode_assistant(message: Message, own: bool) -> dict[str, Any]:
    texts = [p for p in message.parts if isinstance(p, TextPart)]
    calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
    opaque = [p for p in message.parts if isinstance(p, Opaque) and p.protocol == "openai"]
    # A custom tool's call has an id; a content part (audio, file...) has none.
    opaque_calls = [dict(p.data) for p in opaque if "id" in p.data]
    opaque_parts = [dict(p.data) for p in opaque if "id" not in p.data]
    msg: dict[str, Any] = {"role": "assistant"}
    if opaque_parts or (own and any(p.extra for p in texts)):
        msg["content"] = [_text_part(p, own) for p in texts] + opaque_parts
    else:
        msg["content"] = None if (calls or opaque_calls) and not texts else _text_content(texts)
    if calls or opaque_calls:
        msg["tool_calls"] = [_encode_tool_call(c, own) for c in calls] + opaque_calls
    if message.name is not None:
        msg["name"] = message.name
    return _extra(msg, message.extra, own)


def reasoning_fields(content: list[Part]) -> dict[str, Any]:
    """``reasoning_content`` and, for signed or redacted thinking, ``thinking_blocks``."""
    thoughts = [p for p in content if isinstance(p, ThinkingPart)]
    out: dict[str, Any] = {}
    text = "".join(p.thinking for p in thoughts)
    if text:
        out["reasoning_content"] = text
    if any(p.signature or p.redacted_data is not None for p in thoughts):
        out["thinking_blocks"] = [thinking_block(p) for p in thoughts]
    return out


def thinking_block(part: ThinkingPart) -> dict[str, Any]:
    """A thinking part as the Anthropic block it came from."""
    if part.redacted_data is not None:
        return {"type": "redacted_thinking", "data": part.redacted_data}
    return {"type": "thinking", "thinking": part.thinking, "signature": part.signature or ""}


def _encode_tool_call(call: ToolCallPart, own: bool = False) -> dict[str, Any]:
    wire = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }
    return _extra(wire, call.extra, own)


def _encode_tool(tool: Tool | Opaque, strict: dict[str, bool], own: bool) -> dict[str, Any] | None:
    if isinstance(tool, Opaque):
        return dict(tool.data) if tool.protocol == "openai" else None
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        fn["description"] = tool.description
    fn["parameters"] = tool.parameters
    if tool.name in strict:
        fn["strict"] = strict[tool.name]
    extra = dict(tool.extra or {}) if own else {}
    fn_extra = extra.pop("function", None)
    if isinstance(fn_extra, dict):
        fn.update(fn_extra)
    return _extra({"type": "function", "function": fn}, extra, own)


def _encode_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name or ""}}
    return choice.mode


# -- inbound: the answer to an OpenAI client -------------------------------------------------------
def encode_response(resp: ChatResponse, model: str) -> dict[str, Any]:
    """Encode a complete answer as a ``chat.completion``; ``model`` is the name the client sees.

    An OpenAI-format upstream's extras come back verbatim: further choices (``n > 1``), log
    probabilities, the message's unmodelled keys and the answer's unmodelled fields.
    """
    own = resp.protocol == "openai" or resp.protocol == ""
    extra = resp.extra if own else {}
    message = _response_message(resp.content)
    message_extra = extra.get(MESSAGE_KEY)
    if isinstance(message_extra, dict):
        message.update(message_extra)
    choices: list[dict[str, Any]] = [
        {
            "index": 0,
            "message": message,
            "logprobs": extra.get(LOGPROBS_KEY),
            "finish_reason": finish_to_wire(resp.finish_reason),
        }
    ]
    choices += extra.get(CHOICES_KEY) or []
    body: dict[str, Any] = {
        "id": resp.id or new_completion_id(),
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": model,
        "choices": choices,
        "usage": merge_usage(extra.get(USAGE_KEY), usage_to_wire(resp.usage)),
    }
    for key, value in extra.items():
        if key not in body and key not in _BOOKKEEPING and not key.startswith("_"):
            body[key] = value
    return body


#: ``ChatResponse.extra`` keys that are this codec's bookkeeping, not answer fields.
_BOOKKEEPING = frozenset({CHOICES_KEY, LOGPROBS_KEY, MESSAGE_KEY, USAGE_KEY})


def _response_message(content: list[Part]) -> dict[str, Any]:
    text = "".join(p.text for p in content if isinstance(p, TextPart))
    calls = [p for p in content if isinstance(p, ToolCallPart)]
    message: dict[str, Any] = {"role": "assistant", "content": None if calls and not text else text}
    message.update(reasoning_fields(content))
    if calls:
        message["tool_calls"] = [_encode_tool_call(c) for c in calls]
    message["refusal"] = None
    message["annotations"] = []
    return message
