"""OpenAI Responses wire -> IR: client requests (strict) and OpenAI's answers (tolerant).

A client body is validated field by field in OpenAI's wording (``Invalid type for 'input[2].
content'...``). What the IR models becomes IR; everything else rides in the codec flags
(``vocab``), so OpenAI's Responses API gets it back and other providers can refuse it by name.
``store`` and ``previous_response_id`` belong to the route (the stored conversation is decoded
here as ``prior`` items); ``stream`` is read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    Opaque,
    Part,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
)
from backend.ir.errors import UpstreamError
from backend.protocols.openai_chat.validate import (
    as_dict,
    as_list,
    as_str,
    fail,
    need,
    opt_bool,
    opt_int,
    opt_number,
    opt_str,
)
from backend.protocols.openai_chat.vocab import REASONING_EFFORTS
from backend.protocols.openai_responses.items import ItemDecoder, input_items
from backend.protocols.openai_responses.vocab import (
    FLAGS_KEY,
    OPENAI_ENCRYPTED,
    OUTPUT_KEY,
    PROTOCOL,
    finish_from_status,
    joined_name,
    usage_from_wire,
)

#: Fields read into the IR or by the route; every other field is a ``param`` (see ``vocab``).
_MODELLED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "metadata",
        "text",
        "reasoning",
        "user",
        "stream",
        "stream_options",
        "store",
        "previous_response_id",
    }
)
#: Request fields a ``response`` object repeats back.
_ECHOED = (
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "max_tool_calls",
    "temperature",
    "top_p",
    "metadata",
    "text",
    "reasoning",
    "user",
    "store",
    "previous_response_id",
    "truncation",
    "service_tier",
    "top_logprobs",
    "prompt_cache_key",
    "safety_identifier",
    "background",
)
_CHOICE_MODES: dict[str, Literal["auto", "none", "required"]] = {
    "auto": "auto",
    "none": "none",
    "required": "required",
}
_FORMATS = ("text", "json_object", "json_schema")
_SUMMARIES = ("auto", "concise", "detailed")
_DEFAULT_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


# -- inbound: a client's request -------------------------------------------------------------
def decode_request(
    body: Any, headers: Mapping[str, str] | None = None, prior: list[dict[str, Any]] | None = None
) -> ChatRequest:
    """Validate and decode a ``POST /v1/responses`` body; ``prior`` items (a stored
    conversation, oldest first) come before ``input``."""
    if not isinstance(body, dict):
        fail("The request body must be a JSON object.", None)
    model = as_str(need(body, "model", "model"), "model")
    if not model.strip():
        fail("Invalid 'model': must not be empty.", "model")
    flags: dict[str, Any] = {}
    items = ItemDecoder(flags)
    if prior:
        items.add(prior, "previous_response_id")
    raw_input = body.get("input")
    if raw_input is not None:
        items.add(input_items(raw_input), "input")
    elif not prior and body.get("prompt") is None:
        fail("Missing required parameter: 'input'.", "input")

    system: list[TextPart] = []
    instructions = opt_str(body, "instructions")
    if instructions:
        system.append(TextPart(instructions))
        flags["instructions"] = 1
    system.extend(items.system)

    tools, tool_choice = _decode_tools(body, flags)
    stream = bool(opt_bool(body, "stream"))
    if body.get("stream_options") is not None and not stream:
        fail("'stream_options' is only allowed when 'stream' is true.", "stream_options")
    metadata = body.get("metadata")
    params = {
        k: v for k, v in body.items() if k not in _MODELLED and v is not None and k != "prompt"
    }
    if body.get("prompt") is not None:
        params["prompt"] = body["prompt"]
    text_config = _decode_text(body.get("text"), params)
    flags["params"] = params
    flags["echo"] = {k: body[k] for k in _ECHOED if k in body}
    return ChatRequest(
        model=model,
        messages=items.messages,
        system=system,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
        max_tokens=opt_int(body, "max_output_tokens", minimum=1),
        temperature=opt_number(body, "temperature", low=0, high=2),
        top_p=opt_number(body, "top_p", low=0, high=1),
        stream=stream,
        include_usage=stream,
        response_format=text_config,
        user=opt_str(body, "user"),
        reasoning=_decode_reasoning(body.get("reasoning"), flags),
        metadata=None if metadata is None else _metadata(metadata),
        extra={FLAGS_KEY: flags},
        protocol=PROTOCOL,
    )


def _metadata(value: Any) -> dict[str, Any]:
    meta = as_dict(value, "metadata")
    if len(meta) > 16:
        fail("Invalid 'metadata': too many properties (at most 16).", "metadata")
    for key, item in meta.items():
        as_str(item, f"metadata.{key}")
    return meta


def _decode_tools(body: dict[str, Any], flags: dict[str, Any]) -> tuple[list[Tool | Opaque], Any]:
    tools: list[Tool | Opaque] = []
    strict: dict[str, bool] = {}
    for j, raw in enumerate(as_list(body.get("tools") or [], "tools")):
        p = f"tools[{j}]"
        tool = as_dict(raw, p)
        kind = as_str(need(tool, "type", f"{p}.type"), f"{p}.type")
        if kind == "function":
            tools.append(_function_tool(tool, p, None, strict))
        elif kind == "namespace" and _all_functions(tool.get("tools")):
            # Tools grouped under a name: flattened, so every provider can offer them.
            ns = as_str(need(tool, "name", f"{p}.name"), f"{p}.name")
            flags.setdefault("namespaces", {})[ns] = {k: v for k, v in tool.items() if k != "tools"}
            for k, inner in enumerate(tool["tools"]):
                tools.append(_function_tool(inner, f"{p}.tools[{k}]", ns, strict))
        else:
            # Hosted tools (and any type this gateway does not know): OpenAI's to judge.
            tools.append(Opaque(PROTOCOL, tool))
    if strict:
        flags["strict_tools"] = strict
    return tools, _decode_tool_choice(body.get("tool_choice"), tools, flags)


def _all_functions(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(t, dict) and t.get("type") == "function" for t in value
    )


def _function_tool(
    tool: dict[str, Any], p: str, namespace: str | None, strict: dict[str, bool]
) -> Tool:
    name = as_str(need(tool, "name", f"{p}.name"), f"{p}.name")
    if not name:
        fail(f"Invalid '{p}.name': must not be empty.", f"{p}.name")
    parameters = tool.get("parameters")
    full = joined_name(namespace, name)
    is_strict = opt_bool(tool, "strict", f"{p}.strict")
    if is_strict is not None:
        strict[full] = is_strict
    return Tool(
        name=full,
        description=opt_str(tool, "description", f"{p}.description"),
        parameters=(
            dict(_DEFAULT_PARAMETERS)
            if parameters is None
            else as_dict(parameters, f"{p}.parameters")
        ),
        extra={"_namespace": namespace} if namespace else None,
    )


def _decode_tool_choice(
    value: Any, tools: list[Tool | Opaque], flags: dict[str, Any]
) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        mode = _CHOICE_MODES.get(value)
        if mode is None:
            fail(
                f"Invalid value: {value!r}. Supported values are: 'none', 'auto', and 'required'.",
                "tool_choice",
            )
        return ToolChoice(mode)
    choice = as_dict(value, "tool_choice")
    kind = choice.get("type")
    if kind == "function":
        name = as_str(need(choice, "name", "tool_choice.name"), "tool_choice.name")
        return ToolChoice("tool", joined_name(choice.get("namespace"), name))
    if kind == "allowed_tools":
        # Only the listed tools may be called: the same as offering only them.
        mode = _CHOICE_MODES.get(str(choice.get("mode") or "auto"), "auto")
        allowed = as_list(need(choice, "tools", "tool_choice.tools"), "tool_choice.tools")
        names = {
            joined_name(t.get("namespace"), str(t.get("name")))
            for t in allowed
            if isinstance(t, dict) and t.get("type") == "function"
        }
        kinds = {t.get("type") for t in allowed if isinstance(t, dict)}
        tools[:] = [
            t
            for t in tools
            if (isinstance(t, Tool) and t.name in names)
            or (isinstance(t, Opaque) and t.kind in kinds)
        ]
        return ToolChoice(mode)
    if isinstance(kind, str) and kind:
        flags["hosted_choice"] = choice
        return None
    fail("Missing required parameter: 'tool_choice.type'.", "tool_choice.type")


def _decode_text(value: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """``text.format`` as the IR's chat-completions-shaped ``response_format``."""
    if value is None:
        return None
    text = as_dict(value, "text")
    verbosity = text.get("verbosity")
    if verbosity is not None:
        params["verbosity"] = verbosity
    fmt = text.get("format")
    if fmt is None:
        return None
    fmt = as_dict(fmt, "text.format")
    kind = fmt.get("type")
    if kind not in _FORMATS:
        fail(
            f"Invalid value: {kind!r}. Supported values are: 'text', 'json_object', and "
            "'json_schema'.",
            "text.format.type",
        )
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {
        "name": as_str(need(fmt, "name", "text.format.name"), "text.format.name"),
        "schema": as_dict(need(fmt, "schema", "text.format.schema"), "text.format.schema"),
    }
    for key in ("strict", "description"):
        if fmt.get(key) is not None:
            spec[key] = fmt[key]
    return {"type": "json_schema", "json_schema": spec}


def _decode_reasoning(value: Any, flags: dict[str, Any]) -> Reasoning | None:
    if value is None:
        return None
    obj = as_dict(value, "reasoning")
    summary = obj.get("summary", obj.get("generate_summary"))
    if summary is not None:
        if summary not in _SUMMARIES:
            fail(
                f"Invalid value: {summary!r}. Supported values are: 'auto', 'concise', and "
                "'detailed'.",
                "reasoning.summary",
            )
        flags["summary"] = summary
    effort = obj.get("effort")
    if effort is None:
        return None
    if effort not in REASONING_EFFORTS:
        fail(
            f"Invalid value: {effort!r}. Supported values are: "
            + ", ".join(f"'{e}'" for e in REASONING_EFFORTS)
            + ".",
            "reasoning.effort",
        )
    return Reasoning(effort=effort)


# -- outbound: OpenAI's answer ---------------------------------------------------------------
def decode_response(body: Any, *, provider: str = "openai") -> ChatResponse:
    """A ``response`` object from OpenAI's Responses API; its ``output`` items are also kept
    verbatim (``OUTPUT_KEY``) for the Responses client's answer."""
    if not isinstance(body, dict) or body.get("object") not in (None, "response"):
        raise UpstreamError(f"{provider}: malformed response (not a response object)")
    status = body.get("status")
    if status == "failed":
        raise UpstreamError(f"{provider}: {_error_message(body.get('error'))}")
    output = body.get("output")
    if not isinstance(output, list):
        raise UpstreamError(f"{provider}: malformed response (no output)")
    content = output_parts(output)
    has_calls = any(isinstance(p, ToolCallPart) for p in content)
    created = body.get("created_at")
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        finish_reason=finish_from_status(status, body.get("incomplete_details"), has_calls),
        usage=usage_from_wire(body.get("usage")),
        created=int(created) if isinstance(created, (int, float)) else 0,
        extra={OUTPUT_KEY: [i for i in output if isinstance(i, dict)]},
        protocol=PROTOCOL,
    )


def output_parts(output: list[Any]) -> list[Part]:
    """The IR parts of ``output`` items (hosted-tool items have none)."""
    parts: list[Part] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for piece in item.get("content") or []:
                if isinstance(piece, dict):
                    text = piece.get("text") if piece.get("type") != "refusal" else None
                    text = text if text is not None else piece.get("refusal")
                    parts.append(TextPart(text if isinstance(text, str) else ""))
        elif kind == "function_call":
            parts.append(
                ToolCallPart(
                    id=str(item.get("call_id") or item.get("id") or ""),
                    name=joined_name(item.get("namespace"), str(item.get("name") or "")),
                    arguments=str(item.get("arguments") or ""),
                )
            )
        elif kind == "reasoning":
            parts.append(reasoning_part(item))
    return parts


def reasoning_part(item: dict[str, Any]) -> ThinkingPart:
    pieces = item.get("summary") or item.get("content") or []
    text = "\n\n".join(
        p["text"] for p in pieces if isinstance(p, dict) and isinstance(p.get("text"), str)
    )
    encrypted = item.get("encrypted_content")
    signature = OPENAI_ENCRYPTED + encrypted if isinstance(encrypted, str) and encrypted else None
    return ThinkingPart(thinking=text, signature=signature)


def _error_message(err: Any) -> str:
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"][:500]
    return "the response failed"
