"""A fake Anthropic API: ``POST /v1/messages`` (JSON or SSE), ``count_tokens``, ``GET /v1/models``.

Answers have the shapes the current API sends (``model`` first, cache usage with its
``cache_creation`` breakdown and ``service_tier``; streams with a ``ping`` after the first
``content_block_start``, an ``event:`` line on every frame, tool input as ``input_json_delta``
pieces starting with an empty one, thinking closed by a ``signature_delta``), so the official SDK
can be pointed at it (``sdk_base_url``, no ``/v1``).

Usage in a ``Reply`` is canonical (OpenAI convention): ``input_tokens`` includes
``cached_tokens`` (cache reads) and, with ``AnthropicReply``, ``cache_write_tokens``; the fake
renders Anthropic's split (``input_tokens`` = the uncached rest).

``Reply.drop_after`` counts SSE frames (``message_start`` is frame 1): after that many the fake
raises inside the body generator, which cuts the connection mid-body. ``AnthropicReply.
stream_error`` instead sends an ``event: error`` frame of that type at that point.
Both ``x-api-key`` and ``Authorization: Bearer`` authenticate; ``anthropic-version`` is required,
as on the real API. ``/v1/models`` never consumes a queued reply.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.base import FakeUpstream, RecordedRequest, Reply, Turn

DEFAULT_MODELS = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5")

_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
}

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass
class AnthropicReply(Reply):
    """A ``Reply`` with the parts only Anthropic has."""

    #: A thinking block (before the text), closed by ``signature``.
    thinking: str | None = None
    signature: str = "EqMBCkgIBxABGAIiQL1fake/signature+base64=="
    #: A redacted_thinking block's opaque data.
    redacted_thinking: str | None = None
    cache_write_tokens: int = 0
    stop_sequence: str | None = None
    #: With ``drop_after``: send ``event: error`` of this type there instead of cutting.
    stream_error: str | None = None


def _frame(event: str, obj: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


PING = b'event: ping\ndata: {"type": "ping"}\n\n'


class AnthropicFake(FakeUpstream):
    reply_class = AnthropicReply

    def __init__(self, models: tuple[str, ...] = DEFAULT_MODELS, page_size: int = 1000) -> None:
        self.models = list(models)
        self.page_size = page_size
        self._ids = itertools.count(1)
        super().__init__()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
        ]

    @property
    def sdk_base_url(self) -> str:
        return self.base_url

    def turn(self, rec: RecordedRequest) -> Turn | None:
        body = rec.json
        if rec.path != "/v1/messages" or not isinstance(body, dict):
            return None
        tools = [t.get("name", "") for t in body.get("tools") or []]
        turns = [m for m in body.get("messages") or [] if m.get("role") != "system"]
        last = turns[-1] if turns else {}
        if last.get("role") != "user":
            return Turn(tools, "", [])
        content = last.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        results = [_result_text(b.get("content")) for b in blocks if b.get("type") == "tool_result"]
        return Turn(tools, text, results)

    # -- endpoints -----------------------------------------------------------------------------
    async def messages(self, request: Request) -> Response:
        rec, reply = await self.record(request)
        refused = self._refuse(rec, reply)
        if refused is not None:
            return refused
        body = rec.json or {}
        model = reply.model or body.get("model") or DEFAULT_MODELS[1]
        msg_id = f"msg_fake{next(self._ids):04d}"
        if body.get("stream"):
            return StreamingResponse(
                self._stream(reply, model, msg_id), media_type="text/event-stream"
            )
        return self.json_response(
            {
                "model": model,
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "content": [cb for cb, _ in self._blocks(reply)],
                "stop_reason": self._stop_reason(reply),
                "stop_sequence": _extra(reply, "stop_sequence", None),
                "usage": self._usage(reply, reply.output_tokens, full=True),
            }
        )

    async def count_tokens(self, request: Request) -> Response:
        rec, reply = await self.record(request)
        refused = self._refuse(rec, reply)
        if refused is not None:
            return refused
        return self.json_response({"input_tokens": reply.input_tokens})

    async def list_models(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(
            RecordedRequest(request.method, request.url.path, request.url.query, headers, body)
        )
        limit = min(int(request.query_params.get("limit", "20")), self.page_size)
        after = request.query_params.get("after_id")
        start = self.models.index(after) + 1 if after in self.models else 0
        page = self.models[start : start + limit]
        return self.json_response(
            {
                "data": [
                    {
                        "type": "model",
                        "id": m,
                        "display_name": m.replace("-", " ").title(),
                        "created_at": "2025-09-29T00:00:00Z",
                        "lifecycle": "active",
                        "max_input_tokens": 200000,
                        "max_tokens": 64000,
                    }
                    for m in page
                ],
                "has_more": start + limit < len(self.models),
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )

    # -- rendering -----------------------------------------------------------------------------
    def _refuse(self, rec: RecordedRequest, reply: Reply) -> Response | None:
        auth = rec.headers.get("authorization", "")
        if not rec.headers.get("x-api-key") and not auth.lower().startswith("bearer "):
            return self._error(401, "x-api-key header is required")
        if not rec.headers.get("anthropic-version"):
            return self._error(400, "anthropic-version: header is required")
        if reply.raw is not None:
            return self.raw_response(reply)
        if reply.status >= 300:
            return self._error(reply.status, reply.error_message)
        return None

    def _error(self, status: int, message: str) -> Response:
        body = {
            "type": "error",
            "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
            "request_id": f"req_fake{next(self._ids):04d}",
        }
        return self.json_response(body, status=status)

    @staticmethod
    def _stop_reason(reply: Reply) -> str:
        if reply.tool_calls and reply.finish == "stop":
            return "tool_use"
        return _STOP.get(reply.finish, reply.finish)

    @staticmethod
    def _usage(reply: Reply, output_tokens: int, *, full: bool) -> dict[str, Any]:
        write = int(_extra(reply, "cache_write_tokens", 0))
        usage: dict[str, Any] = {
            "input_tokens": reply.input_tokens - reply.cached_tokens - write,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": reply.cached_tokens,
        }
        if full:
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": write,
                "ephemeral_1h_input_tokens": 0,
            }
        usage["output_tokens"] = output_tokens
        if full:
            usage["service_tier"] = "standard"
        return usage

    def _blocks(self, reply: Reply) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each content block as (final block, the deltas that stream it)."""
        out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        thinking = _extra(reply, "thinking", None)
        if thinking is not None:
            sig = _extra(reply, "signature", "")
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(thinking, 3)]
            deltas.append({"type": "signature_delta", "signature": sig})
            out.append(({"type": "thinking", "thinking": thinking, "signature": sig}, deltas))
        redacted = _extra(reply, "redacted_thinking", None)
        if redacted is not None:
            out.append(({"type": "redacted_thinking", "data": redacted}, []))
        if reply.text:
            deltas = [{"type": "text_delta", "text": p} for p in reply.text_pieces()]
            out.append(({"type": "text", "text": reply.text}, deltas))
        for call in reply.tool_calls:
            args = orjson.dumps(call.arguments).decode()
            pieces = ["", *_pieces(args, 3)]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            out.append((block, deltas))
        return out

    def _frames(self, reply: Reply, model: str, msg_id: str) -> list[bytes]:
        start: dict[str, Any] = {
            "model": model,
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(reply, 1, full=True),
        }
        frames = [_frame("message_start", {"type": "message_start", "message": start})]
        blocks = self._blocks(reply)
        if not blocks:
            frames.append(PING)
        for index, (block, deltas) in enumerate(blocks):
            empty = _empty_start(block)
            frames.append(
                _frame(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": empty},
                )
            )
            if index == 0:
                frames.append(PING)
            for delta in deltas:
                frames.append(
                    _frame(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
            frames.append(
                _frame("content_block_stop", {"type": "content_block_stop", "index": index})
            )
        final = {
            "type": "message_delta",
            "delta": {
                "stop_reason": self._stop_reason(reply),
                "stop_sequence": _extra(reply, "stop_sequence", None),
            },
            "usage": self._usage(reply, reply.output_tokens, full=False),
        }
        frames.append(_frame("message_delta", final))
        frames.append(_frame("message_stop", {"type": "message_stop"}))
        return frames

    async def _stream(self, reply: Reply, model: str, msg_id: str) -> AsyncIterator[bytes]:
        frames = self._frames(reply, model, msg_id)
        for n, frame in enumerate(frames):
            if reply.drop_after is not None and n >= reply.drop_after:
                error_type = _extra(reply, "stream_error", None)
                if error_type is not None:
                    err = {"type": error_type, "message": reply.error_message}
                    yield _frame("error", {"type": "error", "error": err})
                    return
                raise RuntimeError("anthropic fake: connection dropped on purpose")
            if reply.pause_after is not None and n == reply.pause_after:
                await asyncio.sleep(reply.pause_s)
            yield frame


def _empty_start(block: dict[str, Any]) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": ""}
    if kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if kind == "tool_use":
        return {**block, "input": {}}
    return block


def _pieces(text: str, n: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(c.get("text", "") for c in content or [] if c.get("type") == "text")


def _extra(reply: Reply, name: str, default: Any) -> Any:
    return getattr(reply, name, default)
