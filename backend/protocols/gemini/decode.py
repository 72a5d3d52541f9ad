"""Gemini response bodies -> IR (``GenerateContentResponse``, embeddings, token counts).

- Only the first candidate is read (the gateway never asks for more).
- Thought parts (``thought: true``, sent when ``thinkingConfig.includeThoughts`` asked for
  them) become ``ThinkingPart``s (Gemini's ``thoughtSignature`` stays a wire key in ``extra``:
  ``ThinkingPart.signature`` is Anthropic's, never Gemini's); parts with no IR meaning
  (``executableCode``, generated images...) are ``Opaque`` items for a Gemini client.
- The answer's other keys travel as extras for a Gemini client (``resp.protocol``): a part's own
  keys (``thoughtSignature`` on text) in its ``extra``, the candidate's (``safetyRatings``,
  ``groundingMetadata``, ``citationMetadata``, ``finishMessage``...) in ``extra["candidate"]``,
  the body's (``promptFeedback``...) in ``extra``, the whole ``usageMetadata`` (its details) in
  ``extra["usageMetadata"]``, further candidates in ``extra["candidates"]``.
- ``finishReason: STOP`` with a function call is ``tool_calls``; ``MAX_TOKENS`` is ``length``;
  safety-type reasons are ``content_filter``; a malformed or unexpected function call is
  ``error``. A prompt blocked before generation (``promptFeedback.blockReason``, no candidates)
  is an empty ``content_filter`` answer. Gemini reports a matched stop sequence as plain STOP.
- Usage: ``promptTokenCount`` (+ ``toolUsePromptTokenCount``, billed as input) is input,
  ``candidatesTokenCount`` + ``thoughtsTokenCount`` is output, ``cachedContentTokenCount`` is
  the cached subset of input.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from backend.ir.chat import (
    ChatResponse,
    EmbeddingResponse,
    FinishReason,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from backend.ir.errors import UpstreamError
from backend.protocols.gemini.toolids import make_tool_call_id
from backend.protocols.gemini.wire import PROTOCOL, split_soft

#: Keys of a part the IR models; the rest are the part's wire extras.
_PART_MODELLED = frozenset({"text", "thought", "functionCall"})
#: Part keys that mean nothing to another provider (see ``wire.SOFT``).
SOFT_PART_KEYS = frozenset({"thoughtSignature", "mediaResolution", "partMetadata"})
_CAND_MODELLED = frozenset({"content", "finishReason", "index"})
_BODY_MODELLED = frozenset({"candidates", "usageMetadata", "modelVersion", "responseId"})

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)
_FAILED = frozenset(
    {
        "MALFORMED_FUNCTION_CALL",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "MISSING_THOUGHT_SIGNATURE",
        "MALFORMED_RESPONSE",
    }
)


def malformed(what: str) -> UpstreamError:
    return UpstreamError(f"gemini: malformed upstream response ({what})", code="upstream_malformed")


def map_finish(reason: str, has_tool_calls: bool) -> FinishReason:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    if reason in _FAILED:
        return "error"
    return "tool_calls" if has_tool_calls else "stop"


def usage_from(meta: Any) -> Usage:
    if not isinstance(meta, dict):
        return Usage()
    prompt = _int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount"))
    output = _int(meta.get("candidatesTokenCount")) + _int(meta.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        cached_tokens=_int(meta.get("cachedContentTokenCount")),
        reasoning_tokens=_int(meta.get("thoughtsTokenCount")),
    )


def response_id(body: dict[str, Any]) -> str:
    """``responseId``, or a stable stand-in derived from the body when Gemini omits it."""
    rid = body.get("responseId")
    if isinstance(rid, str) and rid:
        return rid
    return "gemini-" + hashlib.sha256(orjson.dumps(body)).hexdigest()[:24]


def first_candidate(body: dict[str, Any]) -> dict[str, Any] | None:
    candidates = body.get("candidates")
    if candidates is None:
        return None
    if not isinstance(candidates, list):
        raise malformed("candidates is not a list")
    if not candidates:
        return None
    cand = candidates[0]
    if not isinstance(cand, dict):
        raise malformed("candidate is not an object")
    return cand


def candidate_parts(cand: dict[str, Any] | None) -> list[dict[str, Any]]:
    if cand is None:
        return []
    content = cand.get("content")
    if content is None:
        return []
    if not isinstance(content, dict):
        raise malformed("content is not an object")
    parts = content.get("parts") or []
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise malformed("parts is not a list of objects")
    return parts


def tool_call_from(part: dict[str, Any], rid: str | None, index: int) -> ToolCallPart:
    call = part["functionCall"]
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise malformed("functionCall without a name")
    args = call.get("args")
    if args is None:
        args = {}
    sig = part.get("thoughtSignature")
    return ToolCallPart(
        id=make_tool_call_id(rid, index, call["name"], sig if isinstance(sig, str) else None),
        name=call["name"],
        arguments=orjson.dumps(args).decode(),
    )


def visible_text(part: dict[str, Any]) -> str | None:
    """The part's text unless it is a thought summary (dropped) or not text at all."""
    text = part.get("text")
    if not isinstance(text, str) or part.get("thought"):
        return None
    return text


def thought_text(part: dict[str, Any]) -> str | None:
    """The text of a thought-summary part, else None."""
    text = part.get("text")
    return text if isinstance(text, str) and part.get("thought") else None


def decode_response(body: Any) -> ChatResponse:
    if not isinstance(body, dict):
        raise malformed("body is not an object")
    rid = response_id(body)
    cand = first_candidate(body)
    content: list[Part] = []
    calls = 0
    for part in candidate_parts(cand):
        extra = part_extra(part)
        text = visible_text(part)
        prev = content[-1] if content else None
        if text is not None:
            if isinstance(prev, TextPart) and prev.extra is None and extra is None:
                prev.text += text  # Gemini splits text into several parts freely
            elif text or extra:
                content.append(TextPart(text, extra=extra))
        elif (thought := thought_text(part)) is not None:
            if isinstance(prev, ThinkingPart) and prev.extra is None:
                prev.thinking += thought  # the signature comes with the thought's last part
                prev.extra = extra
            elif thought or extra:
                content.append(ThinkingPart(thinking=thought, extra=extra))
        elif "functionCall" in part:
            call = tool_call_from(part, body.get("responseId"), calls)
            call.extra = part_extra(part, skip=("thoughtSignature",))  # it rides in the id
            content.append(call)
            calls += 1
        elif not (part.get("thought") and set(part) <= {"thought", "thoughtSignature"}):
            content.append(Opaque(protocol=PROTOCOL, data=part))
        elif extra:
            content.append(ThinkingPart(extra=extra))  # a bare signed thought part
    if cand is None:
        blocked = (body.get("promptFeedback") or {}).get("blockReason")
        if not blocked:
            raise malformed("no candidates")
        finish: FinishReason = "content_filter"
    else:
        finish = map_finish(str(cand.get("finishReason") or "STOP"), calls > 0)
    model = body.get("modelVersion")
    return ChatResponse(
        id=rid,
        model=model if isinstance(model, str) else "",
        content=content,
        finish_reason=finish,
        usage=usage_from(body.get("usageMetadata")),
        extra=answer_extra(body, cand),
        protocol=PROTOCOL,
    )


def part_extra(part: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """A part's unmodelled keys as an IR ``extra`` (soft ones apart), or None."""
    keys = {k: v for k, v in part.items() if k not in _PART_MODELLED and k not in skip}
    return split_soft(keys, SOFT_PART_KEYS)


def answer_extra(body: dict[str, Any], cand: dict[str, Any] | None) -> dict[str, Any]:
    """The body's and candidate's unmodelled keys (see the module docstring)."""
    extra = {k: v for k, v in body.items() if k not in _BODY_MODELLED}
    if isinstance(body.get("usageMetadata"), dict):
        extra["usageMetadata"] = body["usageMetadata"]
    if cand is not None:
        rest = {k: v for k, v in cand.items() if k not in _CAND_MODELLED}
        if rest:
            extra["candidate"] = rest
        more = body.get("candidates")
        if isinstance(more, list) and len(more) > 1:
            extra["candidates"] = more[1:]
    return extra


def decode_embedding_response(body: Any, model: str) -> EmbeddingResponse:
    if not isinstance(body, dict) or not isinstance(body.get("embeddings"), list):
        raise malformed("embeddings missing")
    vectors: list[list[float]] = []
    for item in body["embeddings"]:
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise malformed("embedding without values")
        vectors.append([float(v) for v in values])
    # batchEmbedContents reports no usage on most models; newer ones send usageMetadata.
    return EmbeddingResponse(
        model=model, vectors=vectors, usage=usage_from(body.get("usageMetadata"))
    )


def decode_count_tokens(body: Any) -> int:
    if not isinstance(body, dict) or not isinstance(body.get("totalTokens", 0), int):
        raise malformed("totalTokens missing")
    return int(body.get("totalTokens", 0))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
