"""Anthropic wire -> IR: client requests (strictly validated) and upstream responses.

Requests are checked the way the Messages API checks them, so a client gets the same 400 from
the gateway whatever model it is routed to. Errors name the offending field with the API's own
dotted path (``messages.1.content.0.source.media_type``).

Claude Code's first system block, ``x-anthropic-billing-header: cc_version=...;
cc_entrypoint=...;``, is attribution metadata for Anthropic's API rather than an instruction: it
is kept aside (``extra[BILLING_KEY]``) and put back in place for an Anthropic upstream only;
other providers never see it (a documented choice: it would be noise in their system prompt).

A ``role: "system"`` message inside ``messages`` (Claude Code sends one when it does not
recognise the model name) is folded into the system instructions, after the top-level ``system``
and in order: every provider then gets it as system text (Anthropic ``system``, Gemini
``systemInstruction``, the leading system message for OpenAI and Ollama). Its position in the
conversation is not kept.

What the IR does not model travels as extras (``backend.ir.chat``), for an Anthropic upstream
to get verbatim: unknown top-level fields (``ChatRequest.extra``), content blocks the IR has no
part for (``search_result``, server-tool blocks, images and documents from the Files API,
documents of custom content; PDFs and text documents are ``FilePart``s) and
server tools (``web_search_20250305``...) as ``Opaque``, unknown keys of modelled blocks and
tools (``citations``...) in their ``extra``. Another provider cannot honour them, and the request
is refused there with a 400 naming them (``model_rules.refusal``), never sent without them.
Answers likewise: server-tool blocks, ``citations``, ``container``, usage details and a
``stop_reason`` the IR folds (``pause_turn``) are kept for an Anthropic client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Opaque,
    Part,
    Reasoning,
    Role,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.ir.errors import InvalidRequest, UpstreamError
from backend.protocols.anthropic_messages.blocks import (
    document,
    document_source,
    fail,
    is_int,
    is_number,
    str_field,
    unmodelled,
)
from backend.protocols.anthropic_messages.vocab import (
    BILLING_HEADER,
    BILLING_KEY,
    CACHE_KEY,
    FINISH_TO_STOP,
    MODELLED_FIELDS,
    USAGE_FIELDS,
    finish_from_stop,
    usage_from_wire,
)
from backend.protocols.model_rules import ADAPTIVE_DEFAULT_EFFORT

#: Client headers worth sending on to an Anthropic upstream: the SDK sends ``user_profile_id``
#: as ``anthropic-user-profile-id`` (attribution of the request). ``anthropic-workspace-id``
#: is not among them: the gateway's own credential decides its workspace (a documented no-op).
FORWARDED_HEADERS = ("anthropic-beta", "anthropic-version", "anthropic-user-profile-id")

_TOOL_CHOICE_MODES = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}

#: Keys each modelled block kind maps onto IR fields; any other key is kept in the part's
#: ``extra`` (``cache_control`` travels as a cache mark).
_BLOCK_KEYS: dict[str, frozenset[str]] = {
    "text": frozenset({"type", "text", "cache_control"}),
    "image": frozenset({"type", "source", "cache_control"}),
    "tool_use": frozenset({"type", "id", "name", "input", "cache_control"}),
    "tool_result": frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
}
_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "cache_control"})


def _opaque(block: dict[str, Any]) -> Opaque:
    return Opaque("anthropic", block)


def decode_request(body: Any, headers: Mapping[str, str] | None = None) -> ChatRequest:
    """Validate a ``POST /v1/messages`` body and turn it into a ``ChatRequest``."""
    return _RequestDecoder(require_max_tokens=True).decode(body, headers)


def decode_count_tokens_request(body: Any, headers: Mapping[str, str] | None = None) -> ChatRequest:
    """Validate a ``POST /v1/messages/count_tokens`` body (as a request, minus ``max_tokens``)."""
    return _RequestDecoder(require_max_tokens=False).decode(body, headers)


class _RequestDecoder:
    """One request's decoding pass; collects ``cache_control`` markers on the way."""

    def __init__(self, *, require_max_tokens: bool) -> None:
        self.require_max_tokens = require_max_tokens
        self.cache_marks: list[dict[str, Any]] = []
        self.billing: dict[str, Any] | None = None

    def decode(self, body: Any, headers: Mapping[str, str] | None) -> ChatRequest:
        if isinstance(body, (bytes, str)):
            try:
                body = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise InvalidRequest("request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")

        model = body.get("model")
        if model is None:
            raise fail("model", "Field required")
        if not isinstance(model, str) or not model:
            raise fail("model", "Input should be a non-empty string")

        max_tokens = body.get("max_tokens")
        if max_tokens is None and self.require_max_tokens:
            raise fail("max_tokens", "Field required")
        if max_tokens is not None and not is_int(max_tokens):
            raise fail("max_tokens", "Input should be a valid integer")
        if max_tokens is not None and max_tokens <= 0:
            raise fail("max_tokens", "Input should be greater than or equal to 1")

        messages = body.get("messages")
        if messages is None:
            raise fail("messages", "Field required")
        if not isinstance(messages, list):
            raise fail("messages", "Input should be a valid list")
        if not messages:
            raise fail("messages", "at least one message is required")

        system = self._system(body.get("system"))
        turns: list[Message] = []
        for i, m in enumerate(messages):
            if isinstance(m, dict) and m.get("role") == "system":
                system.extend(self._system_message(m, i, len(system)))
            else:
                turns.append(self._message(m, i, len(turns)))
        if not turns:
            raise fail("messages", "at least one 'user' or 'assistant' message is required")
        req = ChatRequest(
            model=model, messages=turns, system=system, max_tokens=max_tokens, protocol="anthropic"
        )
        self._sampling(body, req)
        self._tools(body, req)
        self._options(body, req)
        if self.cache_marks:
            req.extra[CACHE_KEY] = self.cache_marks
        if self.billing is not None:
            req.extra[BILLING_KEY] = self.billing
        if headers:
            for name, value in headers.items():
                if name.lower() in FORWARDED_HEADERS:
                    req.forward_headers[name.lower()] = value
        return req

    # -- top-level fields ----------------------------------------------------------------------
    def _system(self, system: Any) -> list[TextPart]:
        if system is None:
            return []
        if isinstance(system, str):
            return [TextPart(system)] if system else []
        if not isinstance(system, list):
            raise fail("system", "Input should be a valid string or a list of text blocks")
        out: list[TextPart] = []
        for i, block in enumerate(system):
            path = f"system.{i}"
            if not isinstance(block, dict) or block.get("type") != "text":
                raise fail(path, "system blocks must be text blocks")
            text = str_field(block, "text", path)
            if BILLING_HEADER.match(text) and "\n" not in text.strip():
                # Claude Code's attribution line: Anthropic's, not an instruction for a model.
                self.billing = {"index": i, "block": block}
                continue
            out.append(TextPart(text, extra=unmodelled(block, _BLOCK_KEYS["text"])))
            self._mark(block, ["system", len(out) - 1], path)
        return out

    def _system_message(self, msg: dict[str, Any], i: int, first: int) -> list[TextPart]:
        """A ``role: "system"`` message's text, to append to the system parts from ``first``."""
        path = f"messages.{i}.content"
        content = msg.get("content")
        if isinstance(content, str):
            return [TextPart(content)] if content else []
        if not isinstance(content, list):
            raise fail(path, "Input should be a valid string or a list of text blocks")
        out = []
        for j, block in enumerate(content):
            bpath = f"{path}.{j}"
            if not isinstance(block, dict) or block.get("type") != "text":
                raise fail(bpath, "system messages can only hold text blocks")
            out.append(TextPart(str_field(block, "text", bpath)))
            self._mark(block, ["system", first + j], bpath)
        return out

    def _sampling(self, body: dict[str, Any], req: ChatRequest) -> None:
        for key in ("temperature", "top_p"):
            v = body.get(key)
            if v is None:
                continue
            if not is_number(v):
                raise fail(key, "Input should be a valid number")
            if v < 0:
                raise fail(key, "Input should be greater than or equal to 0")
            if v > 1:
                raise fail(key, "Input should be less than or equal to 1")
            setattr(req, key, v)
        top_k = body.get("top_k")
        if top_k is not None and not is_int(top_k):
            raise fail("top_k", "Input should be a valid integer")
        if top_k is not None and top_k < 0:
            raise fail("top_k", "Input should be greater than or equal to 0")
        stops = body.get("stop_sequences")
        if stops is not None:
            if not isinstance(stops, list):
                raise fail("stop_sequences", "Input should be a valid list")
            for i, stop in enumerate(stops):
                if not isinstance(stop, str):
                    raise fail(f"stop_sequences.{i}", "Input should be a valid string")
            req.stop = list(stops)

    def _options(self, body: dict[str, Any], req: ChatRequest) -> None:
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise fail("stream", "Input should be a valid boolean")
        req.stream = bool(stream)
        metadata = body.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise fail("metadata", "Input should be a valid dictionary")
            user_id = metadata.get("user_id")
            if user_id is not None and not isinstance(user_id, str):
                raise fail("metadata.user_id", "Input should be a valid string")
            req.metadata = metadata
            req.user = user_id
        thinking = body.get("thinking")
        if thinking is not None:
            if not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str):
                raise fail("thinking", "Input should be an object with a 'type'")
            req.thinking = thinking
            req.reasoning = _reasoning(thinking, body.get("output_config"))
        for key, value in body.items():
            # The passthrough: what the IR does not model goes to an Anthropic upstream as is.
            if key not in MODELLED_FIELDS and value is not None:
                req.extra[key] = value
        output_format = (body.get("output_config") or {}).get("format")
        if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
            # Structured output has an IR meaning: other upstreams honour it as response_format.
            req.response_format = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": output_format.get("schema", {})},
            }

    def _tools(self, body: dict[str, Any], req: ChatRequest) -> None:
        tools = body.get("tools")
        if tools is not None:
            if not isinstance(tools, list):
                raise fail("tools", "Input should be a valid list")
            req.tools = [self._tool(t, i) for i, t in enumerate(tools)]
        choice = body.get("tool_choice")
        if choice is None:
            return
        kind = choice.get("type") if isinstance(choice, dict) else None
        # A str check first: a list or object "type" is unhashable for the dict lookup.
        if not isinstance(kind, str) or kind not in _TOOL_CHOICE_MODES:
            raise fail(
                "tool_choice",
                f"Input tag {kind!r} found using 'type' does not match any of the expected "
                "tags: 'auto', 'any', 'tool', 'none'",
            )
        mode = _TOOL_CHOICE_MODES[choice["type"]]
        name = str_field(choice, "name", "tool_choice", non_empty=True) if mode == "tool" else None
        req.tool_choice = ToolChoice(mode, name)  # type: ignore[arg-type]
        disable = choice.get("disable_parallel_tool_use")
        if disable is not None:
            if not isinstance(disable, bool):
                raise fail(
                    "tool_choice.disable_parallel_tool_use", "Input should be a valid boolean"
                )
            req.parallel_tool_calls = not disable

    def _tool(self, tool: Any, i: int) -> Tool | Opaque:
        path = f"tools.{i}"
        if not isinstance(tool, dict):
            raise fail(path, "Input should be a valid dictionary")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            if not isinstance(kind, str):
                raise fail(f"{path}.type", "Input should be a valid string")
            # A server tool (web search, code execution, bash...): Anthropic's own, verbatim.
            return _opaque(tool)
        name = str_field(tool, "name", path, non_empty=True)
        description = tool.get("description")
        if description is not None and not isinstance(description, str):
            raise fail(f"{path}.description", "Input should be a valid string")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise fail(f"{path}.input_schema", "Field required")
        self._mark(tool, ["tools", i], path)
        return Tool(
            name=name,
            description=description,
            parameters=schema,
            extra=unmodelled(tool, _TOOL_KEYS),
        )

    # -- messages ------------------------------------------------------------------------------
    def _message(self, msg: Any, i: int, at: int) -> Message:
        """Wire message ``i``, which becomes IR message ``at`` (system messages are folded)."""
        path = f"messages.{i}"
        if not isinstance(msg, dict):
            raise fail(path, "Input should be a valid dictionary")
        role = msg.get("role")
        if role not in ("user", "assistant"):
            # The API's own wording: clients (Claude Code) recognise it and adapt.
            raise fail(f"{path}.role", "Input should be 'user' or 'assistant'")
        content = msg.get("content")
        if isinstance(content, str):
            return Message(role=role, parts=[TextPart(content)])
        if not isinstance(content, list):
            raise fail(
                f"{path}.content", "Input should be a valid string or a list of content blocks"
            )
        parts = [self._block(b, role, f"{path}.content.{j}", at, j) for j, b in enumerate(content)]
        return Message(role=role, parts=parts)

    def _block(self, block: Any, role: Role, path: str, i: int, j: int) -> Part:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise fail(path, "content blocks must be objects with a 'type'")
        kind = block["type"]
        part: Part
        if kind == "document" and document_source(block) is not None:
            # PDFs and text documents (base64, text, URL) are the IR's files; documents by
            # Files API id or of custom content stay Anthropic's own (below).
            file = document(block, path)
            self._mark(block, ["messages", i, j], path)
            return file
        if kind not in _BLOCK_KEYS or _is_file_image(block):
            # A block the IR has no part for (document, search_result, server-tool blocks, a
            # Files API image): kept verbatim, cache_control included, for Anthropic only.
            return _opaque(block)
        if kind == "text":
            part = TextPart(str_field(block, "text", path))
        elif kind == "image":
            part = _image(block, path)
        elif kind == "tool_use":
            if role != "assistant":
                raise fail(f"{path}.type", "tool_use blocks belong in assistant messages")
            part = _tool_use(block, path)
        elif kind == "tool_result":
            if role != "user":
                raise fail(f"{path}.type", "tool_result blocks belong in user messages")
            part = self._tool_result(block, path, i, j)
        else:
            if role != "assistant":
                raise fail(f"{path}.type", f"{kind} blocks belong in assistant messages")
            part = _thinking(block, path)
        part.extra = unmodelled(block, _BLOCK_KEYS[kind])
        self._mark(block, ["messages", i, j], path)
        return part

    def _tool_result(self, block: dict[str, Any], path: str, i: int, j: int) -> ToolResultPart:
        tool_use_id = str_field(block, "tool_use_id", path, non_empty=True)
        is_error = block.get("is_error", False)
        if not isinstance(is_error, bool):
            raise fail(f"{path}.is_error", "Input should be a valid boolean")
        content = block.get("content")
        items: list[TextPart | ImagePart | Opaque] = []
        if isinstance(content, str):
            items = [TextPart(content)] if content else []
        elif isinstance(content, list):
            for k, item in enumerate(content):
                ipath = f"{path}.content.{k}"
                kind = item.get("type") if isinstance(item, dict) else None
                if not isinstance(item, dict) or not isinstance(kind, str):
                    raise fail(ipath, "content blocks must be objects with a 'type'")
                if kind == "text":
                    text = TextPart(str_field(item, "text", ipath))
                    text.extra = unmodelled(item, _BLOCK_KEYS["text"])
                    items.append(text)
                elif kind == "image" and not _is_file_image(item):
                    image = _image(item, ipath)
                    image.extra = unmodelled(item, _BLOCK_KEYS["image"])
                    items.append(image)
                else:
                    items.append(_opaque(item))  # document, search_result...: verbatim
                    continue
                self._mark(item, ["messages", i, j, k], ipath)
        elif content is not None:
            raise fail(
                f"{path}.content", "Input should be a valid string or a list of content blocks"
            )
        return ToolResultPart(tool_call_id=tool_use_id, content=items, is_error=is_error)

    def _mark(self, block: dict[str, Any], path: list[Any], wire_path: str) -> None:
        """Note a ``cache_control`` marker at IR ``path`` (errors name the ``wire_path``)."""
        cc = block.get("cache_control")
        if cc is not None:
            if not isinstance(cc, dict) or cc.get("type") != "ephemeral":
                raise fail(f"{wire_path}.cache_control", "type must be 'ephemeral'")
            self.cache_marks.append({"path": path, "cache_control": cc})


def _reasoning(thinking: dict[str, Any], output_config: Any) -> Reasoning | None:
    """``thinking`` (+ ``output_config.effort`` for adaptive) as the IR's reasoning ask."""
    kind = thinking["type"]
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not is_int(budget):
            raise fail("thinking.enabled.budget_tokens", "Field required")
        return Reasoning(budget_tokens=budget)
    if kind == "adaptive":
        effort = output_config.get("effort") if isinstance(output_config, dict) else None
        if effort is not None and not isinstance(effort, str):
            raise fail("output_config.effort", "Input should be a valid string")
        return Reasoning(effort=effort or ADAPTIVE_DEFAULT_EFFORT)
    if kind == "disabled":
        return Reasoning(effort="none")
    raise fail(
        "thinking",
        f"Input tag {kind!r} found using 'type' does not match any of the expected tags: "
        "'adaptive', 'disabled', 'enabled'",
    )


def _is_file_image(block: dict[str, Any]) -> bool:
    """An image by Files API id: the IR's images are URLs or base64 only."""
    source = block.get("source")
    return (
        block.get("type") == "image" and isinstance(source, dict) and source.get("type") == "file"
    )


def _image(block: dict[str, Any], path: str) -> ImagePart:
    source = block.get("source")
    if not isinstance(source, dict):
        raise fail(f"{path}.source", "Field required")
    kind = source.get("type")
    spath = f"{path}.source"
    if kind == "base64":
        media_type = str_field(source, "media_type", spath, non_empty=True)
        return ImagePart(
            data=str_field(source, "data", spath, non_empty=True), media_type=media_type
        )
    if kind == "url":
        return ImagePart(url=str_field(source, "url", spath, non_empty=True))
    raise fail(f"{spath}.type", "must be 'base64' or 'url'")


def _tool_use(block: dict[str, Any], path: str) -> ToolCallPart:
    call_id = str_field(block, "id", path, non_empty=True)
    name = str_field(block, "name", path, non_empty=True)
    args = block.get("input")
    if not isinstance(args, dict):
        raise fail(f"{path}.input", "Input should be a valid dictionary")
    return ToolCallPart(id=call_id, name=name, arguments=orjson.dumps(args).decode())


def _thinking(block: dict[str, Any], path: str) -> ThinkingPart:
    if block["type"] == "redacted_thinking":
        return ThinkingPart(redacted_data=str_field(block, "data", path))
    signature = block.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise fail(f"{path}.signature", "Input should be a valid string")
    return ThinkingPart(thinking=str_field(block, "thinking", path), signature=signature)


# -- upstream responses ------------------------------------------------------------------------
def decode_response(body: Any, *, output_tool: str | None = None) -> ChatResponse:
    """A 200 ``/v1/messages`` answer -> ``ChatResponse``; a malformed one is an upstream error.

    ``output_tool`` names the forced tool that carried structured output (``structured``): its
    call becomes the answer's JSON text, and ``tool_use`` a plain stop when no other tool ran.
    """
    if isinstance(body, (bytes, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError("anthropic: response body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise UpstreamError("anthropic: malformed response body (no content list)")
    content: list[Part] = []
    for block in body["content"]:
        part = response_block(block)
        if part is not None:
            content.append(part)
    stop_sequence = body.get("stop_sequence")
    stop_reason = body.get("stop_reason")
    finish = finish_from_stop(stop_reason)
    if output_tool is not None:
        content = [
            TextPart(p.arguments) if isinstance(p, ToolCallPart) and p.name == output_tool else p
            for p in content
        ]
        if finish == "tool_calls" and not any(isinstance(p, ToolCallPart) for p in content):
            finish = "stop"
    return ChatResponse(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        finish_reason=finish,
        usage=usage_from_wire(body.get("usage")),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        extra=answer_extra(body, stop_reason, finish),
        protocol="anthropic",
    )


#: Top-level answer keys the IR models (the rest is kept for an Anthropic client).
_ANSWER_KEYS = frozenset(
    {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
)


def answer_extra(body: dict[str, Any], stop_reason: Any, finish: str) -> dict[str, Any]:
    """What an answer (or a streamed ``message_start`` / ``message_delta``) has beyond the IR:
    unknown top-level keys, usage details (``server_tool_use``, ``service_tier``...) under
    ``"usage"``, and a ``stop_reason`` the IR folds (``pause_turn`` -> stop)."""
    extra = {k: v for k, v in body.items() if k not in _ANSWER_KEYS and v is not None}
    usage = body.get("usage")
    if isinstance(usage, dict):
        details = {k: v for k, v in usage.items() if k not in USAGE_FIELDS and v is not None}
        if details:
            extra["usage"] = details
    if isinstance(stop_reason, str) and FINISH_TO_STOP.get(finish) != stop_reason:
        extra["stop_reason"] = stop_reason
    return extra


def response_block(block: Any) -> Part | None:
    """One assistant content block -> IR part; a block the IR does not model is ``Opaque``."""
    if not isinstance(block, dict):
        raise UpstreamError("anthropic: malformed content block in response")
    kind = block.get("type")
    part: Part
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str) or not text:
            return None
        part = TextPart(text)
    elif kind == "tool_use":
        args = block.get("input")
        part = ToolCallPart(
            id=str(block.get("id") or ""),
            name=str(block.get("name") or ""),
            arguments=orjson.dumps(args if isinstance(args, dict) else {}).decode(),
        )
    elif kind == "thinking":
        sig = block.get("signature")
        part = ThinkingPart(
            thinking=str(block.get("thinking") or ""),
            signature=sig if isinstance(sig, str) else None,
        )
    elif kind == "redacted_thinking":
        part = ThinkingPart(redacted_data=str(block.get("data") or ""))
    else:
        # Server-tool use and results, and future kinds: verbatim for an Anthropic client.
        return _opaque(block)
    part.extra = unmodelled(block, _BLOCK_KEYS[kind])
    return part
