"""IR -> Gemini wire for clients of the Gemini door: answers, usage, errors.

- Parts: text; thinking as ``thought: true`` parts (only when the client asked for thoughts with
  ``thinkingConfig.includeThoughts``, as Gemini does); tool calls as ``functionCall`` with the
  ``id`` (without the signature mark) and the call's ``thoughtSignature``. Another provider's
  signed or redacted thinking before a call is packed into that call's ``thoughtSignature``
  (``thoughts``) so it comes back whatever the client keeps of thought parts; signed thinking
  without a call after it goes out as a thought part carrying the packed signature.
- ``finishReason``: stop / stop_sequence / tool_calls -> ``STOP`` (Gemini ends a function call
  with STOP), length -> ``MAX_TOKENS``, content_filter -> ``SAFETY``, error -> ``OTHER``.
- ``usageMetadata``: ``promptTokenCount`` is input (cached included, as Gemini counts it),
  ``candidatesTokenCount`` output minus reasoning, ``thoughtsTokenCount`` reasoning,
  ``cachedContentTokenCount`` the cached part of input.
- ``modelVersion`` is the model the client named (an alias stays an alias; the answering model
  is in ``x-switchboard-model``), ``responseId`` the answer's id.
- Errors: ``{"error": {"code", "message", "status"}}`` with Google's status names; a gateway
  error code rides in an ``ErrorInfo`` detail (``reason``), as Google's own do.
"""

from __future__ import annotations

from typing import Any

import orjson

from backend.ir.chat import (
    ChatResponse,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from backend.ir.errors import GatewayError
from backend.protocols.gemini.thoughts import pack_thoughts
from backend.protocols.gemini.toolids import signature_from_id, without_signature
from backend.protocols.gemini.wire import PROTOCOL, wire_keys

FINISH_TO_WIRE = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def encode_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    return err.status, error_body(err)


def error_body(err: GatewayError) -> dict[str, Any]:
    status = STATUS_NAMES.get(err.status, "INTERNAL" if err.status >= 500 else "INVALID_ARGUMENT")
    body: dict[str, Any] = {"code": err.status, "message": err.message, "status": status}
    if err.code:
        info: dict[str, Any] = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": err.code.upper(),
            "domain": "switchboard",
        }
        if err.param:
            info["metadata"] = {"param": err.param}
        body["details"] = [info]
    return {"error": body}


def usage_to_wire(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": max(0, u.output_tokens - u.reasoning_tokens),
        "totalTokenCount": u.input_tokens + u.output_tokens,
    }
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    if u.cached_tokens:
        out["cachedContentTokenCount"] = u.cached_tokens
    return out


def call_part(
    call: ToolCallPart, args_json: str, held: list[ThinkingPart], native: bool
) -> dict[str, Any]:
    """A ``functionCall`` part; ``held``: the thinking before it that it must carry back;
    ``native``: the answer is Gemini's (its extras are Gemini wire keys)."""
    try:
        args = orjson.loads(args_json) if args_json.strip() else {}
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        # Gemini's args are an object; keep a model's malformed arguments visible, not lost.
        args = {"arguments": args_json}
    fc: dict[str, Any] = {"id": without_signature(call.id), "name": call.name, "args": args}
    extra = call.extra if native else None
    part: dict[str, Any] = {**wire_keys(extra, skip=("functionCall",)), "functionCall": fc}
    if extra and isinstance(extra.get("functionCall"), dict):
        part["functionCall"] = {**extra["functionCall"], **fc}
    sig = signature_from_id(call.id) or pack_thoughts(held)
    if sig:
        part["thoughtSignature"] = sig
    return part


def thinking_parts(p: ThinkingPart, include: bool, native: bool) -> list[dict[str, Any]]:
    """How a thinking part shows: Gemini's own thought (its signature in ``extra``) as sent;
    another provider's thought text only when the client asked for thoughts (its signature is
    packed into the next call, see ``encode_parts``)."""
    own = wire_keys(p.extra) if native else {}
    if own or (include and p.thinking):
        return [{**own, "text": p.thinking, "thought": True}]
    return []


def encode_parts(content: list[Part], include_thoughts: bool, native: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    held: list[ThinkingPart] = []
    for p in content:
        if isinstance(p, TextPart):
            own = wire_keys(p.extra) if native else {}
            if p.text or own:
                parts.append({**own, "text": p.text})
        elif isinstance(p, ThinkingPart):
            if p.signature or p.redacted_data:
                held.append(p)
            parts.extend(thinking_parts(p, include_thoughts, native))
        elif isinstance(p, ToolCallPart):
            parts.append(call_part(p, p.arguments, held, native))
            held = []
        elif isinstance(p, Opaque) and p.protocol == PROTOCOL:
            parts.append(dict(p.data))
    if held:
        parts.append(held_thoughts_part(held))
    return parts


def held_thoughts_part(held: list[ThinkingPart]) -> dict[str, Any]:
    """Signed thinking with no call after it: a thought part of its own carries it back."""
    return {"text": "", "thought": True, "thoughtSignature": pack_thoughts(held)}


def encode_response(resp: ChatResponse, model: str, include_thoughts: bool) -> dict[str, Any]:
    same = resp.protocol == PROTOCOL
    candidate: dict[str, Any] = {
        "content": {"parts": encode_parts(resp.content, include_thoughts, same), "role": "model"},
        "finishReason": FINISH_TO_WIRE.get(resp.finish_reason, "STOP"),
        "index": 0,
    }
    body: dict[str, Any] = {
        "candidates": [candidate],
        "usageMetadata": usage_to_wire(resp.usage),
        "modelVersion": model,
        "responseId": resp.id,
    }
    if same:
        # A Gemini upstream's answer-level extras (safetyRatings, groundingMetadata, usage
        # details, promptFeedback...) reach a Gemini client unchanged.
        cand_extra = resp.extra.get("candidate")
        if isinstance(cand_extra, dict):
            candidate.update({k: v for k, v in cand_extra.items() if k not in candidate})
        more = resp.extra.get("candidates")
        if isinstance(more, list):
            body["candidates"] += more  # candidateCount > 1: the others verbatim
        for key, value in resp.extra.items():
            if key == "usageMetadata" and isinstance(value, dict):
                body["usageMetadata"] = {**value, **body["usageMetadata"]}
            elif key not in body and key != "candidate" and not key.startswith("_"):
                body[key] = value
    return body
