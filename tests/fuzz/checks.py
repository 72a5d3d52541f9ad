"""What every fuzzed answer must look like, and what the server log must not contain."""

from __future__ import annotations

import re
from typing import Any

import orjson

#: Lines of the gateway log that betray an unhandled exception (uvicorn's or ours).
LOG_ALARMS = re.compile(
    r"Traceback \(most recent call last\)|Exception in ASGI application|"
    r"internal error while handling a request|unexpected error in |Task exception was never"
)


def log_alarms(text: str) -> list[str]:
    """The alarm lines of a gateway log, each with a little context."""
    out = []
    for m in LOG_ALARMS.finditer(text):
        out.append(text[max(0, m.start() - 200) : m.end() + 1500])
    return out


def openai_error(body: Any) -> str | None:
    """None if ``body`` is a clean OpenAI error body, else what is wrong with it."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"not an OpenAI error body: {body!r:.300}"
    err = body["error"]
    if not isinstance(err, dict):
        return "error is not an object"
    if not isinstance(err.get("message"), str) or not err["message"]:
        return "error.message missing"
    if not isinstance(err.get("type"), str) or not err["type"]:
        return "error.type missing"
    return None


def anthropic_error(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("type") != "error":
        return f"not an Anthropic error body: {body!r:.300}"
    err = body.get("error")
    if not isinstance(err, dict):
        return "error is not an object"
    if not isinstance(err.get("message"), str) or not err["message"]:
        return "error.message missing"
    if not isinstance(err.get("type"), str) or not err["type"]:
        return "error.type missing"
    return None


def sse_events(raw: bytes) -> list[tuple[str | None, bytes]]:
    """``(event name, data)`` of each SSE event (spec framing: blank line between events)."""
    events = []
    for block in re.split(rb"\r?\n\r?\n", raw):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.splitlines():
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
        events.append((name, b"\n".join(data)))
    return events


def openai_stream(raw: bytes) -> str | None:
    """A streamed OpenAI answer: JSON chunks then ``[DONE]``, or chunks then one error frame."""
    events = sse_events(raw)
    if not events:
        return "empty stream"
    for i, (_, data) in enumerate(events):
        last = i == len(events) - 1
        if data == b"[DONE]":
            return None if last else "[DONE] before the end"
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return f"frame {i} is not JSON: {data[:200]!r}"
        if "error" in obj:
            return openai_error({"error": obj["error"]}) if last else "frames after an error"
        if obj.get("object") != "chat.completion.chunk":
            return f"frame {i} is not a chunk: {obj!r:.200}"
    return "stream ended without [DONE] or an error"


def anthropic_stream(raw: bytes) -> str | None:
    events = sse_events(raw)
    if not events:
        return "empty stream"
    if events[0][0] != "message_start":
        return f"first event is {events[0][0]!r}"
    for i, (name, data) in enumerate(events):
        if name is None:
            return f"event {i} has no event: line"
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return f"event {i} is not JSON: {data[:200]!r}"
        if obj.get("type") != name:
            return f"event {i}: type {obj.get('type')!r} under event {name!r}"
        if name == "error":
            return anthropic_error(obj) if i == len(events) - 1 else "events after an error"
    if events[-1][0] != "message_stop":
        return f"stream ended with {events[-1][0]!r}"
    return None


def check_answer(protocol: str, status: int, content_type: str, raw: bytes) -> str | None:
    """None when the answer is clean for ``protocol`` (``openai`` or ``anthropic``)."""
    if status >= 500:
        return f"server error {status}: {raw[:500]!r}"
    if status == 200 and content_type.startswith("text/event-stream"):
        return openai_stream(raw) if protocol == "openai" else anthropic_stream(raw)
    if not content_type.startswith("application/json"):
        return f"content-type {content_type!r}"
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return f"body is not JSON: {raw[:300]!r}"
    if status == 200:
        if protocol == "openai":
            ok = isinstance(body, dict) and body.get("object") == "chat.completion"
        else:
            ok = isinstance(body, dict) and body.get("type") == "message"
        return None if ok else f"200 with an odd body: {body!r:.300}"
    return openai_error(body) if protocol == "openai" else anthropic_error(body)
