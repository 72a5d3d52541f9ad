"""OpenAI chat completions wire -> IR: client requests (strict) and upstream answers (tolerant).

Client bodies are validated strictly, because a gateway that forwards garbage turns a clear 400
into a confusing upstream error. What the IR does not model is kept as extras
(``backend.ir.chat``) for an OpenAI-format upstream to get verbatim: unknown top-level fields,
content parts other than text, images and files (``input_audio``...), tool types and tool
calls other than ``function`` (``custom``), unknown keys of messages, parts and tools; a
``tool_choice`` the IR cannot express (``allowed_tools``...) stays in ``extra`` as sent. Empty
values (``null``, ``[]``) of unknown keys are left out: an SDK echoing an answer's message sends
``annotations: []`` and ``audio: null``, which ask for nothing.

Upstream answers are read tolerantly, because OpenAI-compatible servers (vLLM, Ollama, LM
Studio, Azure) differ in small ways; only a body that is not a chat completion at all is an
``UpstreamError``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from backend.ir.chat import (
    ChatRequest,
    FilePart,
    ImagePart,
    Message,
    Opaque,
    Part,
    Reasoning,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.protocols import files
from backend.protocols.anthropic_messages.vocab import CACHE_KEY
from backend.protocols.openai_chat.validate import (
    as_dict,
    as_list,
    as_str,
    bad_type,
    fail,
    need,
    opt_bool,
    opt_int,
    opt_number,
    opt_str,
)
from backend.protocols.openai_chat.vocab import (
    FLAGS_KEY,
    MODELLED_PARAMS,
    REASONING_EFFORTS,
)

_ROLES = "'system', 'developer', 'user', 'assistant', and 'tool'"
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
_DEFAULT_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_TOOL_CHOICE_MODES: dict[str, Literal["auto", "none", "required"]] = {
    "auto": "auto",
    "none": "none",
    "required": "required",
}
#: Keys of wire objects the IR models; other keys go to the IR object's ``extra``.
_MESSAGE_KEYS = frozenset(
    {
        "role",
        "content",
        "name",
        "tool_calls",
        "tool_call_id",
        "reasoning_content",
        "thinking_blocks",
        "refusal",
    }
)
_TEXT_KEYS = frozenset({"type", "text", "cache_control"})
_IMAGE_KEYS = frozenset({"type", "image_url", "cache_control"})
_FILE_KEYS = frozenset({"type", "file", "cache_control"})
_FILE_INNER_KEYS = frozenset({"file_data", "file_id", "filename"})
_CALL_KEYS = frozenset({"id", "type", "function"})
_TOOL_KEYS = frozenset({"type", "function"})
_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})


def _unmodelled(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    """Keys of ``obj`` outside ``known`` with a value that asks for something."""
    extra = {k: v for k, v in obj.items() if k not in known and v not in (None, [], {})}
    return extra or None


def _opaque(obj: dict[str, Any]) -> Opaque:
    return Opaque("openai", obj)


# -- inbound: a client's request -------------------------------------------------------------------
def decode_request(body: Any) -> ChatRequest:
    """Validate and decode a ``POST /v1/chat/completions`` body (parsed JSON) into the IR."""
    if not isinstance(body, dict):
        fail("The request body must be a JSON object.", None)
    model = as_str(need(body, "model", "model"), "model")
    if not model.strip():
        fail("Invalid 'model': must not be empty.", "model")
    raw_messages = as_list(need(body, "messages", "messages"), "messages")
    if not raw_messages:
        fail("Invalid 'messages': empty array. Expected at least one message.", "messages")
    for legacy in ("functions", "function_call"):
        if body.get(legacy) is not None:
            fail(f"'{legacy}' is deprecated and not supported here; use 'tools'.", legacy)

    flags: dict[str, Any] = {}
    cache_marks: list[dict[str, Any]] = []
    system, messages = _decode_messages(raw_messages, flags, cache_marks)

    max_completion = opt_int(body, "max_completion_tokens", minimum=1)
    max_tokens = opt_int(body, "max_tokens", minimum=1)
    if max_completion is not None:
        flags["max_tokens_field"] = "max_completion_tokens"
        max_tokens = max_completion

    stream = bool(opt_bool(body, "stream"))
    include_usage = False
    stream_options = body.get("stream_options")
    if stream_options is not None:
        options = as_dict(stream_options, "stream_options")
        include_usage = bool(opt_bool(options, "include_usage", "stream_options.include_usage"))
        # Its other options (include_obfuscation...) go to an OpenAI-format upstream as sent.
        if any(k != "include_usage" for k in options):
            flags["stream_options"] = options

    metadata = body.get("metadata")
    # The passthrough: every field the IR does not model, for an OpenAI-format upstream.
    extra: dict[str, Any] = {
        k: v for k, v in body.items() if k not in MODELLED_PARAMS and v is not None
    }
    tools = _decode_tools(body.get("tools"), flags)
    tool_choice = body.get("tool_choice")
    if isinstance(tool_choice, dict) and tool_choice.get("type") not in (None, "function"):
        extra["tool_choice"] = tool_choice  # allowed_tools, custom: OpenAI's own
        tool_choice = None
    extra[FLAGS_KEY] = flags
    if cache_marks:
        extra[CACHE_KEY] = cache_marks
    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=_decode_tool_choice(tool_choice),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
        max_tokens=max_tokens,
        temperature=opt_number(body, "temperature", low=0, high=2),
        top_p=opt_number(body, "top_p", low=0, high=1),
        stop=_decode_stop(body.get("stop")),
        stream=stream,
        include_usage=stream and include_usage,
        response_format=_decode_response_format(body.get("response_format")),
        user=opt_str(body, "user"),
        reasoning=_decode_reasoning(body.get("reasoning_effort")),
        metadata=None if metadata is None else as_dict(metadata, "metadata"),
        extra=extra,
        protocol="openai",
    )


def _decode_messages(
    raw: list[Any], flags: dict[str, Any], marks: list[dict[str, Any]]
) -> tuple[list[TextPart], list[Message]]:
    system: list[TextPart] = []
    messages: list[Message] = []
    leading = True
    previous_role = ""
    for i, item in enumerate(raw):
        p = f"messages[{i}]"
        msg = as_dict(item, p)
        role = as_str(need(msg, "role", f"{p}.role"), f"{p}.role")
        if role in ("system", "developer"):
            content = need(msg, "content", f"{p}.content")
            if leading:
                if i == 0 and role == "developer":
                    flags["system_role"] = "developer"
                system.extend(
                    _text_only(content, f"{p}.content", _Marker(marks, ["system"], len(system)))
                )
            else:
                at = _Marker(marks, ["messages", len(messages)])
                texts: list[Part] = list(_text_only(content, f"{p}.content", at))
                messages.append(Message("system", texts, extra=_unmodelled(msg, _MESSAGE_KEYS)))
        elif role == "user":
            leading = False
            content = _user_content(
                need(msg, "content", f"{p}.content"),
                f"{p}.content",
                _Marker(marks, ["messages", len(messages)]),
            )
            messages.append(
                Message(
                    "user",
                    content,
                    name=opt_str(msg, "name", f"{p}.name"),
                    extra=_unmodelled(msg, _MESSAGE_KEYS),
                )
            )
        elif role == "assistant":
            leading = False
            messages.append(_assistant_message(msg, p))
        elif role == "tool":
            leading = False
            # The IR keeps a turn's tool results together in one user message, as Anthropic
            # requires; OpenAI sends them as consecutive ``tool`` messages.
            joins = previous_role == "tool"
            index = len(messages) - 1 if joins else len(messages)
            position = len(messages[-1].parts) if joins else 0
            result = _tool_result(msg, p, _Marker(marks, ["messages", index, position]))
            if joins:
                messages[-1].parts.append(result)
            else:
                messages.append(Message("user", [result]))
        elif role == "function":
            fail(
                f"Invalid value for '{p}.role': 'function' messages are deprecated and not "
                "supported here; use 'tool' messages.",
                f"{p}.role",
            )
        else:
            fail(
                f"Invalid value for '{p}.role': '{role}'. Supported values are: {_ROLES}.",
                f"{p}.role",
            )
        previous_role = role
    return system, messages


class _Marker:
    """Notes ``cache_control`` on content parts, addressed by IR position (``base`` + index).

    The convention other gateways accept, so that OpenAI-format clients can use Anthropic's
    prompt caching: ``{"type": "text", "text": ..., "cache_control": {"type": "ephemeral"}}``.
    The marks travel in ``extra[CACHE_KEY]`` exactly as the Anthropic codec's own do, and only
    the Anthropic encoder reads them (OpenAI caches prompts by itself, Gemini implicitly, Ollama
    not at all: there they are a documented no-op).
    """

    __slots__ = ("base", "marks", "offset")

    def __init__(self, marks: list[dict[str, Any]], base: list[Any], offset: int = 0) -> None:
        self.marks = marks
        self.base = base
        self.offset = offset

    def note(self, part: dict[str, Any], index: int, param: str) -> None:
        """``part`` (wire ``param``) became IR part ``index`` of this content."""
        cc = part.get("cache_control")
        if cc is None:
            return
        if not isinstance(cc, dict) or cc.get("type") != "ephemeral":
            fail(
                f"Invalid value for '{param}.cache_control': expected an object with "
                "'type': 'ephemeral'.",
                f"{param}.cache_control",
            )
        ttl = cc.get("ttl")
        if ttl is not None and ttl not in ("5m", "1h"):
            fail(
                f"Invalid value for '{param}.cache_control.ttl': {ttl!r}. Supported values are: "
                "'5m' and '1h'.",
                f"{param}.cache_control.ttl",
            )
        self.marks.append({"path": [*self.base, self.offset + index], "cache_control": dict(cc)})


def _text_only(content: Any, param: str, marker: _Marker) -> list[TextPart]:
    """Content that may only hold text (system, developer and tool messages)."""
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    parts: list[TextPart] = []
    for j, item in enumerate(as_list(content, param)):
        pp = f"{param}[{j}]"
        part = as_dict(item, pp)
        kind = part.get("type")
        if kind != "text":
            fail(f"Invalid value for '{pp}.type': expected 'text', got {kind!r}.", f"{pp}.type")
        text = as_str(need(part, "text", f"{pp}.text"), f"{pp}.text")
        if text:
            marker.note(part, len(parts), pp)
            parts.append(TextPart(text, extra=_unmodelled(part, _TEXT_KEYS)))
    return parts


def _user_content(content: Any, param: str, marker: _Marker) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    if not isinstance(content, list):
        bad_type(param, "one of a string or array of objects", content)
    if not content:
        fail(f"Invalid '{param}': empty array. Expected at least one content part.", param)
    parts: list[Part] = []
    for j, item in enumerate(content):
        pp = f"{param}[{j}]"
        part = as_dict(item, pp)
        kind = part.get("type")
        if kind == "text":
            text = as_str(need(part, "text", f"{pp}.text"), f"{pp}.text")
            if text:
                marker.note(part, len(parts), pp)
                parts.append(TextPart(text, extra=_unmodelled(part, _TEXT_KEYS)))
        elif kind == "image_url":
            marker.note(part, len(parts), pp)
            image = _image_part(need(part, "image_url", f"{pp}.image_url"), f"{pp}.image_url")
            image.extra = _unmodelled(part, _IMAGE_KEYS)
            parts.append(image)
        elif kind == "file":
            marker.note(part, len(parts), pp)
            parts.append(_file_part(part, pp))
        elif isinstance(kind, str) and kind:
            # input_audio...: OpenAI's own content parts, verbatim.
            parts.append(_opaque(part))
        else:
            bad_type(f"{pp}.type", "a string", kind)
    return parts


def _file_part(part: dict[str, Any], param: str) -> FilePart:
    """``{"type": "file", "file": {"file_data" | "file_id", "filename"}}`` as the IR's file.

    ``file_data`` is a base64 data URL (what OpenAI documents); bare base64 is taken too, its
    type from the file name (``_bare`` makes the OpenAI encoder send it back bare)."""
    obj = as_dict(need(part, "file", f"{param}.file"), f"{param}.file")
    name = opt_str(obj, "filename", f"{param}.file.filename")
    file_id = opt_str(obj, "file_id", f"{param}.file.file_id")
    data = opt_str(obj, "file_data", f"{param}.file.file_data")
    extra = _unmodelled(part, _FILE_KEYS) or {}
    inner = _unmodelled(obj, _FILE_INNER_KEYS)
    if inner:
        extra["file"] = inner  # unknown keys of the file object, for OpenAI only
    if data is None and file_id is None:
        fail(
            f"Invalid '{param}.file': expected 'file_data' or 'file_id'.",
            f"{param}.file",
        )
    if data is None:
        return FilePart(file_id=file_id, filename=name, extra=extra or None)
    parsed = files.parse_data_url(data)
    if parsed is None:
        if data.startswith("data:"):
            fail(
                f"Invalid '{param}.file.file_data': data URLs must look like "
                "data:<media type>;base64,<data>.",
                f"{param}.file.file_data",
            )
        extra["_bare"] = True
        parsed = (files.guess_type(name) or files.PDF, data)
    return files.add_extra(
        files.from_base64(parsed[1], parsed[0], filename=name, file_id=file_id), extra
    )


def _image_part(value: Any, param: str) -> ImagePart:
    obj = as_dict(value, param)
    url = as_str(need(obj, "url", f"{param}.url"), f"{param}.url")
    detail = opt_str(obj, "detail", f"{param}.detail")
    if url.startswith("data:"):
        match = _DATA_URL.fullmatch(url)
        if match is None:
            fail(
                f"Invalid '{param}.url': data URLs must look like data:<media type>;base64,<data>.",
                f"{param}.url",
            )
        return ImagePart(data=match.group(2), media_type=match.group(1), detail=detail)
    if url.startswith(("http://", "https://")):
        return ImagePart(url=url, detail=detail)
    fail(f"Invalid '{param}.url': expected an http(s) URL or a base64 data URL.", f"{param}.url")


def _assistant_message(msg: dict[str, Any], p: str) -> Message:
    parts: list[Part] = _thinking_parts(msg, p)
    content = msg.get("content")
    if isinstance(content, str):
        if content:
            parts.append(TextPart(content))
    elif content is not None:
        for j, item in enumerate(as_list(content, f"{p}.content")):
            pp = f"{p}.content[{j}]"
            part = as_dict(item, pp)
            kind = part.get("type")
            if kind not in ("text", "refusal"):
                if not isinstance(kind, str) or not kind:
                    bad_type(f"{pp}.type", "a string", kind)
                parts.append(_opaque(part))
                continue
            text = as_str(need(part, kind, f"{pp}.{kind}"), f"{pp}.{kind}")
            if text:
                known = frozenset({"type", kind, "cache_control"})
                parts.append(TextPart(text, extra=_unmodelled(part, known)))
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal and not any(isinstance(x, TextPart) for x in parts):
        parts.append(TextPart(refusal))  # an echoed refusal is what the assistant said
    tool_calls = msg.get("tool_calls")
    if tool_calls is not None:
        for j, item in enumerate(as_list(tool_calls, f"{p}.tool_calls")):
            parts.append(_tool_call(item, f"{p}.tool_calls[{j}]"))
    return Message(
        "assistant",
        parts,
        name=opt_str(msg, "name", f"{p}.name"),
        extra=_unmodelled(msg, _MESSAGE_KEYS),
    )


def _tool_call(item: Any, p: str) -> ToolCallPart | Opaque:
    call = as_dict(item, p)
    call_id = as_str(need(call, "id", f"{p}.id"), f"{p}.id")
    kind = call.get("type", "function")
    if kind != "function":
        if not isinstance(kind, str) or not kind:
            bad_type(f"{p}.type", "a string", kind)
        return _opaque(call)  # a custom tool's call: OpenAI's own
    fn = as_dict(need(call, "function", f"{p}.function"), f"{p}.function")
    name = as_str(need(fn, "name", f"{p}.function.name"), f"{p}.function.name")
    arguments = as_str(need(fn, "arguments", f"{p}.function.arguments"), f"{p}.function.arguments")
    return ToolCallPart(
        id=call_id, name=name, arguments=arguments, extra=_unmodelled(call, _CALL_KEYS)
    )


def _tool_result(msg: dict[str, Any], p: str, marker: _Marker) -> ToolResultPart:
    call_id = as_str(need(msg, "tool_call_id", f"{p}.tool_call_id"), f"{p}.tool_call_id")
    content = _text_only(need(msg, "content", f"{p}.content"), f"{p}.content", marker)
    return ToolResultPart(tool_call_id=call_id, content=list(content))


def _decode_tools(value: Any, flags: dict[str, Any]) -> list[Tool | Opaque]:
    if value is None:
        return []
    tools: list[Tool | Opaque] = []
    strict: dict[str, bool] = {}
    for j, item in enumerate(as_list(value, "tools")):
        p = f"tools[{j}]"
        tool = as_dict(item, p)
        kind = tool.get("type")
        if kind != "function":
            if not isinstance(kind, str) or not kind:
                bad_type(f"{p}.type", "a string", kind)
            tools.append(_opaque(tool))  # custom tools...: OpenAI's own
            continue
        fn = as_dict(need(tool, "function", f"{p}.function"), f"{p}.function")
        name = as_str(need(fn, "name", f"{p}.function.name"), f"{p}.function.name")
        if not name:
            fail(f"Invalid '{p}.function.name': must not be empty.", f"{p}.function.name")
        parameters = fn.get("parameters")
        # Unknown keys of the tool, and of its function under "function".
        extra = _unmodelled(tool, _TOOL_KEYS) or {}
        fn_extra = _unmodelled(fn, _FUNCTION_KEYS)
        if fn_extra:
            extra["function"] = fn_extra
        tools.append(
            Tool(
                name=name,
                description=opt_str(fn, "description", f"{p}.function.description"),
                parameters=(
                    dict(_DEFAULT_PARAMETERS)
                    if parameters is None
                    else as_dict(parameters, f"{p}.function.parameters")
                ),
                extra=extra or None,
            )
        )
        is_strict = opt_bool(fn, "strict", f"{p}.function.strict")
        if is_strict is not None:
            strict[name] = is_strict
    if strict:
        flags["strict_tools"] = strict
    return tools


def _decode_tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        mode = _TOOL_CHOICE_MODES.get(value)
        if mode is not None:
            return ToolChoice(mode)
        fail(
            f"Invalid value for 'tool_choice': {value!r}. Supported values are: 'auto', 'none', "
            "'required' or a named function.",
            "tool_choice",
        )
    choice = as_dict(value, "tool_choice")
    if choice.get("type") != "function":
        fail(
            "Invalid 'tool_choice': only {'type': 'function', ...} objects are supported.",
            "tool_choice.type",
        )
    fn = as_dict(need(choice, "function", "tool_choice.function"), "tool_choice.function")
    return ToolChoice(
        "tool", as_str(need(fn, "name", "tool_choice.function.name"), "tool_choice.function.name")
    )


def _decode_reasoning(value: Any) -> Reasoning | None:
    if value is None:
        return None
    if value not in REASONING_EFFORTS:
        fail(
            f"Invalid value for 'reasoning_effort': {value!r}. Supported values are: "
            + ", ".join(f"'{e}'" for e in REASONING_EFFORTS)
            + ".",
            "reasoning_effort",
        )
    return Reasoning(effort=value)


def _thinking_parts(msg: dict[str, Any], p: str) -> list[Part]:
    """An echoed assistant message's reasoning: ``thinking_blocks`` (Anthropic blocks verbatim,
    with their signatures) when present, else ``reasoning_content`` as unsigned thinking."""
    blocks = msg.get("thinking_blocks")
    if blocks is not None:
        parts: list[Part] = []
        for j, item in enumerate(as_list(blocks, f"{p}.thinking_blocks")):
            pp = f"{p}.thinking_blocks[{j}]"
            block = as_dict(item, pp)
            if block.get("type") == "redacted_thinking":
                parts.append(ThinkingPart(redacted_data=as_str(need(block, "data", pp), pp)))
            elif block.get("type") == "thinking":
                parts.append(
                    ThinkingPart(
                        thinking=as_str(need(block, "thinking", f"{pp}.thinking"), pp),
                        signature=opt_str(block, "signature", f"{pp}.signature"),
                    )
                )
            else:
                fail(
                    f"Invalid value for '{pp}.type': expected 'thinking' or 'redacted_thinking'.",
                    f"{pp}.type",
                )
        return parts
    text = opt_str(msg, "reasoning_content", f"{p}.reasoning_content")
    return [ThinkingPart(thinking=text)] if text else []


def _decode_stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = as_list(value, "stop")
    return [as_str(s, f"stop[{i}]") for i, s in enumerate(items)]


def _decode_response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    fmt = as_dict(value, "response_format")
    kind = fmt.get("type")
    if kind not in _RESPONSE_FORMATS:
        fail(
            f"Invalid value for 'response_format.type': {kind!r}. Supported values are: 'text', "
            "'json_object' and 'json_schema'.",
            "response_format.type",
        )
    if kind == "json_schema":
        as_dict(
            need(fmt, "json_schema", "response_format.json_schema"), "response_format.json_schema"
        )
    return fmt
