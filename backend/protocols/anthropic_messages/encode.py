"""IR -> Anthropic wire: upstream requests and client-facing (non-streamed) responses.

Choices where the IR allows more than the Messages API does:

- ``max_tokens`` is required upstream; without one we send 4096 (raised above a thinking budget,
  which must stay below ``max_tokens``).
- Leading ``system`` messages join the system prompt. A ``system`` message later in the
  conversation (OpenAI allows them anywhere) becomes user-turn text *at its position*: lifting it
  into the system prompt would move the instruction before turns it was meant to follow.
- Anthropic needs user/assistant alternation: consecutive same-role messages are merged, and in a
  merged user turn the ``tool_result`` blocks are moved first, as the API requires.
- ``response_format`` (json_object / json_schema) becomes ``output_config.format`` or a forced
  tool, whichever the model can honour (see ``structured``); never a prompt-only request.
- ``thinking``: an Anthropic client's config verbatim; another protocol's reasoning ask
  (``reasoning_effort``) becomes ``{type: enabled, budget_tokens}`` from the effort table in
  ``reasoning``, the budget kept below the client's ``max_tokens`` (no thinking when that
  leaves less than 1024 tokens); ``none`` becomes ``{type: disabled}``
  (``model_limits.anthropic_thinking``).
- ``max_tokens`` above the model's ceiling is clamped to it; ``temperature``/``top_p`` follow
  the model's sampling rules (``model_limits``).
- Thinking parts without a signature (another provider's reasoning) are dropped: Anthropic
  refuses unsigned thinking blocks.
- ``temperature`` is capped at 1, Anthropic's maximum (OpenAI allows up to 2): the most random
  setting either side offers, rather than a 400; on models that take one sampler, a default (1)
  beside the other is left out.
- Empty text blocks are never sent (the API rejects them); a message left empty is dropped.
- A message that is one plain text block is sent as a string, the form clients use most.

Files (``FilePart``: another door's PDFs and text files, an Anthropic client's own documents)
are ``document`` blocks: PDFs as base64 or by URL, text as a plain-text source; the file name is
the ``title``.

Passthrough (an Anthropic client's request, ``ChatRequest.protocol == "anthropic"``): its
unmodelled top-level fields, content blocks (``search_result``, server-tool blocks, Files API
documents...), server tools and the unmodelled keys of modelled blocks (``citations``) are written
back verbatim and in place. Another protocol's extras never get here (``model_rules.refusal``);
this encoder skips them rather than send a field Anthropic does not know.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    FilePart,
    ImagePart,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from backend.ir.errors import InvalidRequest
from backend.protocols import files
from backend.protocols.anthropic_messages import structured
from backend.protocols.anthropic_messages.vocab import (
    BILLING_KEY,
    CACHE_KEY,
    DEFAULT_MAX_TOKENS,
    FINISH_TO_STOP,
    usage_to_wire,
)
from backend.protocols.extras import same_wire
from backend.protocols.model_limits import anthropic_sampling, anthropic_thinking, clamp_output
from backend.protocols.model_rules import sampling_extras

Block = dict[str, Any]
_CacheMarks = dict[tuple[Any, ...], dict[str, Any]]


def encode_request(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The ``POST /v1/messages`` body for ``model``."""
    own = same_wire(req, "anthropic")
    marks = _cache_marks(req.extra.get(CACHE_KEY))
    system = [
        _mark(_extra(_text(p.text), p.extra, own), marks, ("system", i))
        for i, p in enumerate(req.system)
        if p.text
    ]
    billing = req.extra.get(BILLING_KEY) if own else None
    if isinstance(billing, dict) and isinstance(billing.get("block"), dict):
        system.insert(min(int(billing.get("index") or 0), len(system)), dict(billing["block"]))
    turns: list[tuple[str, list[Block]]] = []
    leading = True
    for i, msg in enumerate(req.messages):
        if msg.role == "system":
            texts = [
                _mark(_text(p.text), marks, ("messages", i, j))
                for j, p in enumerate(msg.parts)
                if isinstance(p, TextPart) and p.text
            ]
            if leading:
                system.extend(texts)
            elif texts:
                turns.append(("user", texts))
            continue
        leading = False
        blocks = [
            b
            for j, part in enumerate(msg.parts)
            if (b := _part(part, marks, ("messages", i, j), own)) is not None
        ]
        if blocks:
            turns.append((msg.role, blocks))

    limit = None if req.max_tokens is None else clamp_output("anthropic", model, req.max_tokens)
    thinking = anthropic_thinking(req, limit)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": clamp_output("anthropic", model, _max_tokens(limit, thinking)),
    }
    if system:
        body["system"] = _content(system)
    body["messages"] = [
        {"role": role, "content": _content(blocks)} for role, blocks in _merge(turns)
    ]
    tools = [
        _mark(tool, marks, ("tools", i))
        for i, t in enumerate(req.tools)
        if (tool := _tool(t, own)) is not None
    ]
    if tools:
        body["tools"] = tools
        choice = _tool_choice(req.tool_choice, req.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    body.update(anthropic_sampling(req, model))
    user_id = (req.metadata or {}).get("user_id") or req.user
    if isinstance(user_id, str) and user_id:
        # Anthropic's metadata knows only user_id; anything else would be a 400.
        body["metadata"] = {"user_id": user_id}
    if thinking is not None:
        body["thinking"] = thinking
    if own:
        # The passthrough: every top-level field the IR does not model, as the client sent it.
        body.update((k, v) for k, v in req.extra.items() if not k.startswith("_"))
    elif "top_k" in (sampling := sampling_extras(req)):
        body["top_k"] = sampling["top_k"]  # another door's top-k (Gemini's topK)
    structured.apply(body, req, model)
    if stream:
        body["stream"] = True
    return body


def _max_tokens(limit: int | None, thinking: dict[str, Any] | None) -> int:
    if limit is not None:
        return limit
    budget = (thinking or {}).get("budget_tokens")
    if isinstance(budget, int) and budget >= DEFAULT_MAX_TOKENS:
        return budget + DEFAULT_MAX_TOKENS
    return DEFAULT_MAX_TOKENS


def _tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif choice.mode == "none":
        return {"type": "none"}  # disable_parallel_tool_use is not allowed with none
    elif choice.mode == "required":
        out = {"type": "any"}
    elif choice.mode == "tool":
        out = {"type": "tool", "name": choice.name}
    else:
        out = {"type": "auto"}
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _merge(turns: list[tuple[str, list[Block]]]) -> list[tuple[str, list[Block]]]:
    merged: list[tuple[str, list[Block]]] = []
    for role, blocks in turns:
        if merged and merged[-1][0] == role:
            merged[-1][1].extend(blocks)
        else:
            merged.append((role, list(blocks)))
    for role, blocks in merged:
        if role == "user":
            blocks.sort(key=lambda b: b["type"] != "tool_result")  # stable: order kept otherwise
    return merged


def _content(blocks: list[Block]) -> str | list[Block]:
    if len(blocks) == 1 and blocks[0]["type"] == "text" and blocks[0].keys() == {"type", "text"}:
        return str(blocks[0]["text"])
    return blocks


def _text(text: str) -> Block:
    return {"type": "text", "text": text}


def _tool(tool: Tool | Opaque, own: bool) -> Block | None:
    if isinstance(tool, Opaque):
        return dict(tool.data) if tool.protocol == "anthropic" else None
    block: Block = {"name": tool.name}
    if tool.description is not None:
        block["description"] = tool.description
    # OpenAI tools may omit parameters; Anthropic needs an object schema.
    block["input_schema"] = tool.parameters or {"type": "object", "properties": {}}
    return _extra(block, tool.extra, own)


def _extra(block: Block, extra: dict[str, Any] | None, own: bool) -> Block:
    """``block`` with the unmodelled keys its client sent (same protocol only)."""
    if own and extra:
        block.update((k, v) for k, v in extra.items() if not k.startswith("_"))
    return block


def _opaque(part: Opaque) -> Block | None:
    # Another protocol's item never reaches here (refused before encoding); skip, never guess.
    return dict(part.data) if part.protocol == "anthropic" else None


def _part(part: Part, marks: _CacheMarks, pos: tuple[Any, ...], own: bool) -> Block | None:
    block: Block | None
    if isinstance(part, Opaque):
        return _opaque(part)  # its cache_control, if any, is part of it
    if isinstance(part, TextPart):
        block = _text(part.text) if part.text else None
    elif isinstance(part, ImagePart):
        block = image_block(part)
    elif isinstance(part, FilePart):
        block = document_block(part, own)
    elif isinstance(part, ToolCallPart):
        block = {"type": "tool_use", "id": part.id, "name": part.name, "input": _args(part)}
    elif isinstance(part, ToolResultPart):
        block = _tool_result(part, marks, pos, own)
    else:
        block = _thinking(part)
    if block is None:
        return None
    return _mark(_extra(block, part.extra, own), marks, pos)


def image_block(part: ImagePart) -> Block:
    if part.data is not None:
        # A Gemini client's base64 may be URL-safe (google-genai writes bytes so): Anthropic
        # takes the standard alphabet; standard base64 is unchanged.
        data = files.standard_base64(part.data)
        source = {"type": "base64", "media_type": part.media_type or "image/png", "data": data}
        return {"type": "image", "source": source}
    url = part.url or ""
    if url.startswith("data:") and ";base64," in url:
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def document_block(part: FilePart, own: bool = False) -> Block:
    """A ``document``: a PDF by URL or as base64, a text document as a plain-text source
    (another door's ``text/*`` file included). What Anthropic cannot read (a ``file_id``,
    other types) was refused before encoding (``files.file_refusal``)."""
    source: Block
    text = None if part.url is not None else files.inline_text(part)
    if part.url is not None:
        source = {"type": "url", "url": part.url}
    elif text is not None and not (own and part.data is not None):
        source = {"type": "text", "media_type": "text/plain", "data": text}
    else:
        media_type = part.media_type or files.media_type(part)
        data = files.base64_data(part, exact=own)
        source = {"type": "base64", "media_type": media_type, "data": data}
    block: Block = {"type": "document", "source": source}
    if part.filename is not None:
        block["title"] = part.filename
    return block


def _args(part: ToolCallPart) -> dict[str, Any]:
    if not part.arguments.strip():
        return {}
    try:
        args = orjson.loads(part.arguments)
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise InvalidRequest(
            f"tool call {part.id!r} ({part.name}): arguments must be a JSON object",
            param="messages",
        )
    return args


def _tool_result(
    part: ToolResultPart, marks: _CacheMarks, pos: tuple[Any, ...], own: bool
) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": part.tool_call_id}
    items: list[Block] = []
    for k, item in enumerate(part.content):
        if isinstance(item, Opaque):
            if (opaque := _opaque(item)) is not None:
                items.append(opaque)
        elif isinstance(item, TextPart):
            if item.text:
                items.append(_mark(_extra(_text(item.text), item.extra, own), marks, (*pos, k)))
        else:
            items.append(_mark(_extra(image_block(item), item.extra, own), marks, (*pos, k)))
    if items:
        block["content"] = _content(items)
    if part.is_error:
        block["is_error"] = True
    return block


def _thinking(part: ThinkingPart) -> Block | None:
    if part.redacted_data is not None:
        return {"type": "redacted_thinking", "data": part.redacted_data}
    if not part.signature:
        return None
    return {"type": "thinking", "thinking": part.thinking, "signature": part.signature}


def _cache_marks(raw: Any) -> _CacheMarks:
    marks: _CacheMarks = {}
    if isinstance(raw, list):
        for m in raw:
            if isinstance(m, dict) and isinstance(m.get("path"), list):
                marks[tuple(m["path"])] = m["cache_control"]
    return marks


def _mark(block: Block, marks: _CacheMarks, pos: tuple[Any, ...]) -> Block:
    cc = marks.get(pos)
    if cc is not None:
        block["cache_control"] = cc
    return block


# -- client-facing responses -------------------------------------------------------------------
def encode_response(resp: ChatResponse, model: str) -> dict[str, Any]:
    """A ``ChatResponse`` as the Messages API would have answered it (``model`` = client name).

    An Anthropic upstream's unmodelled answer parts come back verbatim: blocks (server-tool
    use and results...), keys of modelled blocks (``citations``), top-level fields
    (``container``...) and usage details (``server_tool_use``...).
    """
    own = resp.protocol == "anthropic"
    content = [b for p in resp.content if (b := response_block(p, own)) is not None]
    usage: dict[str, Any] = usage_to_wire(resp.usage)
    extra = resp.extra if own else {}
    if isinstance(extra.get("usage"), dict):
        usage.update(extra["usage"])
    body: dict[str, Any] = {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": extra.get("stop_reason")
        or FINISH_TO_STOP.get(resp.finish_reason, "end_turn"),
        "stop_sequence": resp.stop_sequence,
        "usage": usage,
    }
    body.update((k, v) for k, v in extra.items() if k not in body and not k.startswith("_"))
    return body


def response_block(part: Part, own: bool = False) -> Block | None:
    """An assistant part as a response content block; parts an answer cannot hold give None.

    ``own``: the answer came from an Anthropic upstream, so its extras are written back.
    """
    if isinstance(part, Opaque):
        return dict(part.data) if part.protocol == "anthropic" else None
    block: Block
    if isinstance(part, TextPart):
        if not part.text:
            return None
        block = _text(part.text)
    elif isinstance(part, ToolCallPart):
        block = {"type": "tool_use", "id": part.id, "name": part.name, "input": lenient_args(part)}
    elif isinstance(part, ThinkingPart):
        if part.redacted_data is not None:
            block = {"type": "redacted_thinking", "data": part.redacted_data}
        else:
            block = {
                "type": "thinking",
                "thinking": part.thinking,
                "signature": part.signature or "",
            }
    else:
        return None
    return _extra(block, part.extra, own)


def lenient_args(part: ToolCallPart) -> dict[str, Any]:
    """Arguments for a client: the model's answer is already paid for, so bad JSON becomes {}."""
    try:
        args = orjson.loads(part.arguments) if part.arguments.strip() else {}
    except orjson.JSONDecodeError:
        args = {}
    return args if isinstance(args, dict) else {}
