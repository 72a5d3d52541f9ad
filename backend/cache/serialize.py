"""Plain-dict forms of the chat IR dataclasses, for caches and anything else that stores them.

``*_to_dict`` output is JSON-ready (orjson dumps it as is); ``*_from_dict`` accepts that output
and ignores keys it does not know, so an entry written by a newer gateway version still loads.
Parts carry their ``type`` tag, which is how a list of mixed parts is read back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    Opaque,
    Part,
    Role,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    OpaqueEvent,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)

_Json = Mapping[str, Any]


def usage_to_dict(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_tokens": u.cached_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "web_search_requests": u.web_search_requests,
    }


def usage_from_dict(d: _Json) -> Usage:
    return Usage(
        input_tokens=int(d.get("input_tokens", 0)),
        output_tokens=int(d.get("output_tokens", 0)),
        cached_tokens=int(d.get("cached_tokens", 0)),
        cache_write_tokens=int(d.get("cache_write_tokens", 0)),
        reasoning_tokens=int(d.get("reasoning_tokens", 0)),
        web_search_requests=int(d.get("web_search_requests", 0)),
    )


def _with_extra(d: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    if extra:
        d["extra"] = extra
    return d


def _extra(d: _Json) -> dict[str, Any] | None:
    extra = d.get("extra")
    return dict(extra) if isinstance(extra, dict) and extra else None


def part_to_dict(p: Part) -> dict[str, Any]:
    if isinstance(p, Opaque):
        return {"type": "opaque", "protocol": p.protocol, "data": p.data}
    d: dict[str, Any]
    if isinstance(p, TextPart):
        return _with_extra({"type": "text", "text": p.text}, p.extra)
    if isinstance(p, ImagePart):
        d = {
            "type": "image",
            "url": p.url,
            "data": p.data,
            "media_type": p.media_type,
            "detail": p.detail,
        }
        return _with_extra(d, p.extra)
    if isinstance(p, FilePart):
        d = {
            "type": "file",
            "data": p.data,
            "text": p.text,
            "media_type": p.media_type,
            "url": p.url,
            "file_id": p.file_id,
            "filename": p.filename,
        }
        return _with_extra(d, p.extra)
    if isinstance(p, ToolCallPart):
        d = {"type": "tool_call", "id": p.id, "name": p.name, "arguments": p.arguments}
        return _with_extra(d, p.extra)
    if isinstance(p, ToolResultPart):
        d = {
            "type": "tool_result",
            "tool_call_id": p.tool_call_id,
            "content": [part_to_dict(c) for c in p.content],
            "is_error": p.is_error,
        }
        return _with_extra(d, p.extra)
    if isinstance(p, ThinkingPart):
        d = {
            "type": "thinking",
            "thinking": p.thinking,
            "signature": p.signature,
            "redacted_data": p.redacted_data,
        }
        return _with_extra(d, p.extra)
    raise TypeError(f"not an IR part: {type(p).__name__}")


def part_from_dict(d: _Json) -> Part:
    kind = d.get("type")
    if kind == "opaque":
        return Opaque(protocol=str(d["protocol"]), data=dict(d["data"]))
    if kind == "text":
        return TextPart(text=str(d["text"]), extra=_extra(d))
    if kind == "image":
        return ImagePart(
            url=d.get("url"),
            data=d.get("data"),
            media_type=d.get("media_type"),
            detail=d.get("detail"),
            extra=_extra(d),
        )
    if kind == "file":
        return FilePart(
            data=d.get("data"),
            text=d.get("text"),
            media_type=d.get("media_type"),
            url=d.get("url"),
            file_id=d.get("file_id"),
            filename=d.get("filename"),
            extra=_extra(d),
        )
    if kind == "tool_call":
        return ToolCallPart(
            id=str(d["id"]), name=str(d["name"]), arguments=str(d["arguments"]), extra=_extra(d)
        )
    if kind == "tool_result":
        content: list[TextPart | ImagePart | Opaque] = []
        for c in d.get("content", []):
            part = part_from_dict(c)
            if not isinstance(part, TextPart | ImagePart | Opaque):
                raise ValueError("tool_result content holds only text, image and opaque parts")
            content.append(part)
        return ToolResultPart(
            tool_call_id=str(d["tool_call_id"]),
            content=content,
            is_error=bool(d.get("is_error")),
            extra=_extra(d),
        )
    if kind == "thinking":
        return ThinkingPart(
            thinking=str(d.get("thinking", "")),
            signature=d.get("signature"),
            redacted_data=d.get("redacted_data"),
            extra=_extra(d),
        )
    raise ValueError(f"unknown part type {kind!r}")


def message_to_dict(m: Message) -> dict[str, Any]:
    d: dict[str, Any] = {
        "role": m.role,
        "parts": [part_to_dict(p) for p in m.parts],
        "name": m.name,
    }
    return _with_extra(d, m.extra)


def message_from_dict(d: _Json) -> Message:
    return Message(
        role=cast(Role, d["role"]),
        parts=[part_from_dict(p) for p in d.get("parts", [])],
        name=d.get("name"),
        extra=_extra(d),
    )


def tool_to_dict(t: Tool | Opaque) -> dict[str, Any]:
    if isinstance(t, Opaque):
        return part_to_dict(t)
    d: dict[str, Any] = {"name": t.name, "description": t.description, "parameters": t.parameters}
    return _with_extra(d, t.extra)


def tool_from_dict(d: _Json) -> Tool | Opaque:
    if d.get("type") == "opaque":
        return Opaque(protocol=str(d["protocol"]), data=dict(d["data"]))
    return Tool(
        name=d["name"],
        description=d.get("description"),
        parameters=d.get("parameters", {}),
        extra=_extra(d),
    )


def request_to_dict(r: ChatRequest) -> dict[str, Any]:
    return {
        "model": r.model,
        "messages": [message_to_dict(m) for m in r.messages],
        "system": [part_to_dict(p) for p in r.system],
        "tools": [tool_to_dict(t) for t in r.tools],
        "tool_choice": (
            None
            if r.tool_choice is None
            else {"mode": r.tool_choice.mode, "name": r.tool_choice.name}
        ),
        "parallel_tool_calls": r.parallel_tool_calls,
        "max_tokens": r.max_tokens,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "stop": list(r.stop),
        "stream": r.stream,
        "include_usage": r.include_usage,
        "response_format": r.response_format,
        "user": r.user,
        "thinking": r.thinking,
        "metadata": r.metadata,
        "extra": dict(r.extra),
        "forward_headers": dict(r.forward_headers),
        "protocol": r.protocol,
    }


def request_from_dict(d: _Json) -> ChatRequest:
    tc = d.get("tool_choice")
    system = [part_from_dict(p) for p in d.get("system", [])]
    return ChatRequest(
        model=str(d["model"]),
        messages=[message_from_dict(m) for m in d.get("messages", [])],
        system=[p for p in system if isinstance(p, TextPart)],
        tools=[tool_from_dict(t) for t in d.get("tools", [])],
        tool_choice=None if tc is None else ToolChoice(mode=tc["mode"], name=tc.get("name")),
        parallel_tool_calls=d.get("parallel_tool_calls"),
        max_tokens=d.get("max_tokens"),
        temperature=d.get("temperature"),
        top_p=d.get("top_p"),
        stop=list(d.get("stop", [])),
        stream=bool(d.get("stream", False)),
        include_usage=bool(d.get("include_usage", False)),
        response_format=d.get("response_format"),
        user=d.get("user"),
        thinking=d.get("thinking"),
        metadata=d.get("metadata"),
        extra=dict(d.get("extra", {})),
        forward_headers=dict(d.get("forward_headers", {})),
        protocol=str(d.get("protocol") or ""),
    )


def response_to_dict(r: ChatResponse) -> dict[str, Any]:
    return {
        "id": r.id,
        "model": r.model,
        "content": [part_to_dict(p) for p in r.content],
        "finish_reason": r.finish_reason,
        "usage": usage_to_dict(r.usage),
        "stop_sequence": r.stop_sequence,
        "created": r.created,
        # Verbatim upstream JSON (n > 1 choices, logprobs): a hit must answer what a miss did.
        "extra": dict(r.extra),
        "protocol": r.protocol,
    }


def response_from_dict(d: _Json) -> ChatResponse:
    return ChatResponse(
        id=str(d["id"]),
        model=str(d["model"]),
        content=[part_from_dict(p) for p in d.get("content", [])],
        finish_reason=cast(FinishReason, d["finish_reason"]),
        usage=usage_from_dict(d.get("usage", {})),
        stop_sequence=d.get("stop_sequence"),
        created=int(d.get("created", 0)),
        extra=dict(d.get("extra") or {}),
        protocol=str(d.get("protocol") or ""),
    )


# -- stream events (a recorded stream, replayed as it came) ---------------------------------------


def _opaque_to_dict(o: Opaque | None) -> dict[str, Any] | None:
    return None if o is None else {"protocol": o.protocol, "data": o.data}


def _opaque_from_dict(d: Any) -> Opaque | None:
    if not isinstance(d, Mapping):
        return None
    return Opaque(protocol=str(d["protocol"]), data=dict(d["data"]))


def event_to_dict(ev: StreamEvent) -> dict[str, Any]:
    """One event of a finished stream; ``StreamError`` is never stored (a failed stream is not
    cached)."""
    if isinstance(ev, TextDelta):
        return {"e": "text", "i": ev.index, "t": ev.text}
    if isinstance(ev, ToolArgsDelta):
        return {"e": "args", "i": ev.index, "t": ev.partial_json}
    if isinstance(ev, ThinkingDelta):
        return {"e": "think", "i": ev.index, "t": ev.thinking, "sig": ev.signature}
    if isinstance(ev, OpaqueEvent):
        return {"e": "opaque", "i": ev.index, "o": _opaque_to_dict(ev.opaque)}
    if isinstance(ev, BlockStart):
        return {
            "e": "block",
            "i": ev.index,
            "kind": ev.kind,
            "call_id": ev.tool_call_id,
            "name": ev.tool_name,
            "data": ev.data,
            "o": _opaque_to_dict(ev.opaque),
        }
    if isinstance(ev, BlockStop):
        return {"e": "stop", "i": ev.index}
    if isinstance(ev, StreamStart):
        return {
            "e": "start",
            "id": ev.id,
            "model": ev.model,
            "usage": None if ev.usage is None else usage_to_dict(ev.usage),
            "created": ev.created,
            "o": _opaque_to_dict(ev.opaque),
        }
    if isinstance(ev, StreamEnd):
        return {
            "e": "end",
            "finish": ev.finish_reason,
            "usage": usage_to_dict(ev.usage),
            "stop_sequence": ev.stop_sequence,
            "o": _opaque_to_dict(ev.opaque),
        }
    assert not isinstance(ev, StreamError), "a failed stream is never stored"
    raise TypeError(f"not a stream event: {type(ev).__name__}")


def event_from_dict(d: _Json) -> StreamEvent:
    kind = d["e"]
    if kind == "text":
        return TextDelta(int(d["i"]), str(d["t"]))
    if kind == "args":
        return ToolArgsDelta(int(d["i"]), str(d["t"]))
    if kind == "think":
        return ThinkingDelta(int(d["i"]), str(d["t"]), d.get("sig"))
    if kind == "opaque":
        opaque = _opaque_from_dict(d["o"])
        if opaque is None:
            raise ValueError("an opaque event without its item")
        return OpaqueEvent(None if d["i"] is None else int(d["i"]), opaque)
    if kind == "block":
        return BlockStart(
            int(d["i"]),
            d["kind"],
            tool_call_id=d.get("call_id"),
            tool_name=d.get("name"),
            data=d.get("data"),
            opaque=_opaque_from_dict(d.get("o")),
        )
    if kind == "stop":
        return BlockStop(int(d["i"]))
    if kind == "start":
        usage = d.get("usage")
        return StreamStart(
            id=str(d["id"]),
            model=str(d["model"]),
            usage=None if usage is None else usage_from_dict(usage),
            created=int(d.get("created", 0)),
            opaque=_opaque_from_dict(d.get("o")),
        )
    if kind == "end":
        return StreamEnd(
            finish_reason=cast(FinishReason, d["finish"]),
            usage=usage_from_dict(d["usage"]),
            stop_sequence=d.get("stop_sequence"),
            opaque=_opaque_from_dict(d.get("o")),
        )
    raise ValueError(f"unknown stream event {kind!r}")
