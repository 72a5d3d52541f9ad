"""IR -> OpenAI chat completions wire: requests to upstreams and answers to clients.

Per-model rules come from ``model_rules``: reasoning models (o-series, gpt-5) get
``max_completion_tokens`` and no sampling parameter at its default.

Reasoning: a request from another protocol asks a reasoning model for ``reasoning_effort``
(``model_rules.reasoning_effort``; other models cannot reason, a documented no-op). In answers,
thinking reaches the client as ``message.reasoning_content`` (the text, the convention
OpenAI-compatible servers use) and, when it is Anthropic's signed or redacted thinking,
``message.thinking_blocks``: the Anthropic blocks verbatim (LiteLLM's convention). A client
that echoes ``thinking_blocks`` back on the assistant message gets them restored for Anthropic.

Lossy by nature where OpenAI has no equivalent: thinking parts are not sent upstream, a tool
result's images travel in a ``user`` message right after the ``tool`` messages (tool messages
hold text only), and ``ToolResultPart.is_error`` has no flag to map to.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.protocols.model_rules import (
    reasoning_effort,
    rules_for,
    sampling_default,
    takes_reasoning_effort,
)
from backend.protocols.openai_chat.vocab import (
    CHOICES_KEY,
    EXTRA_PARAMS,
    LOGPROBS_KEY,
    codec_flags,
    finish_to_wire,
    usage_to_wire,
)


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(14)


# -- outbound: a request to an OpenAI-format upstream ----------------------------------------------
def encode_request(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """Encode the IR as a chat completions body for ``model`` (the upstream's model id).

    A stream always asks for ``include_usage``: the gateway bills from the final usage chunk,
    whatever the client asked for. ``extra`` is forwarded only for requests this codec decoded
    (see ``vocab``), so another protocol's extras never reach OpenAI.
    """
    flags = codec_flags(req.extra)
    rules = rules_for("openai", model)
    body: dict[str, Any] = {"model": model, "messages": _encode_messages(req, flags or {})}
    if req.tools:
        strict = (flags or {}).get("strict_tools") or {}
        body["tools"] = [_encode_tool(t, strict.get(t.name)) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = _encode_tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        # A reasoning model answers 400 to max_tokens, whatever the client called it.
        field = rules.max_tokens_field
        if not rules.fixed_sampling:
            field = (flags or {}).get("max_tokens_field", field)
        body[field] = req.max_tokens
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
    if req.user is not None:
        body["user"] = req.user
    if req.metadata is not None:
        body["metadata"] = req.metadata
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if flags is not None:
        body.update((k, v) for k, v in req.extra.items() if k in EXTRA_PARAMS)
    elif req.reasoning is not None and takes_reasoning_effort("openai", model):
        effort = reasoning_effort(req.reasoning)
        if effort is not None:
            body["reasoning_effort"] = effort
    return body


def _encode_messages(req: ChatRequest, flags: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        out.append(
            {"role": flags.get("system_role", "system"), "content": _text_content(req.system)}
        )
    for message in req.messages:
        if message.role == "system":
            texts = [p for p in message.parts if isinstance(p, TextPart)]
            out.append({"role": "system", "content": _text_content(texts)})
        elif message.role == "assistant":
            out.append(_encode_assistant(message))
        else:
            out.extend(_encode_user(message))
    return out


def _text_content(parts: list[TextPart]) -> str | list[dict[str, Any]]:
    if len(parts) == 1:
        return parts[0].text
    if not parts:
        return ""
    return [{"type": "text", "text": p.text} for p in parts]


def _image_url(part: ImagePart) -> dict[str, Any]:
    url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.data or ''}"
    image: dict[str, Any] = {"url": url}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _encode_user(message: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rest: list[TextPart | ImagePart] = []
    results = [p for p in message.parts if isinstance(p, ToolResultPart)]
    for result in results:
        texts = [c for c in result.content if isinstance(c, TextPart)]
        out.append(
            {"role": "tool", "tool_call_id": result.tool_call_id, "content": _text_content(texts)}
        )
        rest.extend(c for c in result.content if isinstance(c, ImagePart))
    rest.extend(p for p in message.parts if isinstance(p, (TextPart, ImagePart)))
    if rest or not results:
        content: str | list[dict[str, Any]]
        if not rest:
            content = ""
        elif len(rest) == 1 and isinstance(rest[0], TextPart):
            content = rest[0].text
        else:
            content = [
                {"type": "text", "text": p.text} if isinstance(p, TextPart) else _image_url(p)
                for p in rest
            ]
        msg: dict[str, Any] = {"role": "user", "content": content}
        if message.name is not None:
            msg["name"] = message.name
        out.append(msg)
    return out


def _encode_assistant(message: Message) -> dict[str, Any]:
    texts = [p for p in message.parts if isinstance(p, TextPart)]
    calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
    msg: dict[str, Any] = {"role": "assistant"}
    msg["content"] = None if calls and not texts else _text_content(texts)
    if calls:
        msg["tool_calls"] = [_encode_tool_call(c) for c in calls]
    if message.name is not None:
        msg["name"] = message.name
    return msg


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


def _encode_tool_call(call: ToolCallPart) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _encode_tool(tool: Tool, strict: bool | None) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        fn["description"] = tool.description
    fn["parameters"] = tool.parameters
    if strict is not None:
        fn["strict"] = strict
    return {"type": "function", "function": fn}


def _encode_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name or ""}}
    return choice.mode


# -- inbound: the answer to an OpenAI client -------------------------------------------------------
def encode_response(resp: ChatResponse, model: str) -> dict[str, Any]:
    """Encode a complete answer as a ``chat.completion``; ``model`` is the name the client sees.

    An OpenAI upstream's ``logprobs`` and further choices (``n > 1``) come back verbatim.
    """
    choices: list[dict[str, Any]] = [
        {
            "index": 0,
            "message": _response_message(resp.content),
            "logprobs": resp.extra.get(LOGPROBS_KEY),
            "finish_reason": finish_to_wire(resp.finish_reason),
        }
    ]
    choices += resp.extra.get(CHOICES_KEY) or []
    return {
        "id": resp.id or new_completion_id(),
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage_to_wire(resp.usage),
    }


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
