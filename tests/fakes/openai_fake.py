"""A fake OpenAI API: chat completions (JSON and SSE), embeddings, models, and Azure's paths.

Renders ``Reply`` exactly as the current OpenAI API does, independently of the gateway's codec
(it must not share code with ``backend.protocols.openai_chat``, or a codec bug would go unseen):

- ``POST /v1/chat/completions`` and ``POST /openai/deployments/{d}/chat/completions``
- ``POST /v1/embeddings`` and ``POST /openai/deployments/{d}/embeddings``
- ``GET /v1/models`` and ``GET /openai/models``
- ``POST /v1/responses`` (OpenAI's Responses API, JSON and SSE: ``openai_responses_fake``)

Point the official SDK at ``fake.sdk_base_url`` (``.../v1``). An ``OpenAIReply`` with
``reasoning_content`` answers it as OpenAI-compatible reasoning servers (vLLM, DeepSeek) do: on
the message, and streamed as ``delta.reasoning_content`` pieces before the content.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes import openai_responses_fake as responses_api
from tests.fakes.base import FakeUpstream, RecordedRequest, Reply, Turn

CREATED = 1767225600
FINGERPRINT = "fp_f4ke0000"


@dataclass
class OpenAIReply(Reply):
    """A ``Reply`` with a compatible server's thinking text."""

    reasoning_content: str | None = None


EMBEDDING_DIMS = 8

_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


class FakeStreamDrop(Exception):
    """Raised inside the SSE body so the server cuts the connection mid-stream."""


def error_body(reply: Reply) -> dict[str, Any]:
    kind, code = _ERRORS.get(reply.status, ("server_error", None))
    return {"error": {"message": reply.error_message, "type": kind, "param": None, "code": code}}


def usage_body(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def finish_reason(reply: Reply) -> str:
    return "tool_calls" if reply.tool_calls and reply.finish == "stop" else reply.finish


def arguments_text(arguments: dict[str, Any]) -> str:
    return orjson.dumps(arguments).decode()


def split3(text: str) -> list[str]:
    """Arguments stream in a few fragments, as OpenAI sends them."""
    n = max(1, min(3, len(text)))
    step = -(-len(text) // n)
    return [text[i : i + step] for i in range(0, len(text), step)]


def content_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if p.get("type") == "text")


def fake_vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    while len(digest) < dims:
        digest += hashlib.sha256(digest).digest()
    # Values that are exact in float32, so base64 and float answers decode identically.
    return [(b - 128) / 128 for b in digest[:dims]]


class OpenAIFake(FakeUpstream):
    model_ids: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/responses", self.responses, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/openai/deployments/{deployment}/chat/completions", self.chat, methods=["POST"]),
            Route("/openai/deployments/{deployment}/embeddings", self.embeddings, methods=["POST"]),
            Route("/openai/models", self.models, methods=["GET"]),
        ]

    @property
    def sdk_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def __enter__(self) -> OpenAIFake:
        self.start()
        return self

    def turn(self, rec: RecordedRequest) -> Turn | None:
        if rec.path.endswith("/responses"):
            return responses_api.responses_turn(rec)
        body = rec.json
        if not rec.path.endswith("/chat/completions") or not isinstance(body, dict):
            return None
        tools = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
        messages = body.get("messages") or []
        turns = [m for m in messages if m.get("role") not in ("system", "developer")]
        results = []
        while turns and turns[-1].get("role") == "tool":
            results.insert(0, content_text(turns.pop().get("content")))
        if results:
            return Turn(tools, "", results)
        last = turns[-1] if turns else {}
        text = content_text(last.get("content")) if last.get("role") == "user" else ""
        return Turn(tools, text, [])

    # -- chat ----------------------------------------------------------------------------------
    async def chat(self, request: Request) -> Response:
        rec, reply = await self.record(request)
        if reply.raw is not None:
            return self.raw_response(reply)
        if reply.status >= 400:
            return self.json_response(error_body(reply), reply.status)
        body = rec.json or {}
        model = reply.model or body.get("model") or request.path_params.get("deployment", "")
        cid = f"chatcmpl-fake{len(self.requests)}"
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            frames = self.stream_frames(reply, model, cid, include_usage)
            return StreamingResponse(self._sse(frames, reply), media_type="text/event-stream")
        return self.json_response(self.completion(reply, model, cid))

    @staticmethod
    def completion(reply: Reply, model: str, cid: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        reasoning = getattr(reply, "reasoning_content", None)
        if reasoning:
            message["reasoning_content"] = reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": arguments_text(tc.arguments)},
                }
                for tc in reply.tool_calls
            ]
        return {
            "id": cid,
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(reply),
                }
            ],
            "usage": usage_body(reply),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }

    @staticmethod
    def stream_frames(
        reply: Reply, model: str, cid: str, include_usage: bool
    ) -> list[dict[str, Any]]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            frame: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                frame["usage"] = None
            frame["obfuscation"] = "x" * (len(cid) % 7 + 1)
            return frame

        role = {"role": "assistant", "content": "", "refusal": None}
        frames: list[dict[str, Any]] = []
        pieces = reply.text_pieces()
        reasoning = getattr(reply, "reasoning_content", None)
        if pieces or not reply.tool_calls:
            frames.append(chunk(role))
            if reasoning:
                frames.extend(chunk({"reasoning_content": p}) for p in split3(reasoning))
            frames.extend(chunk({"content": piece}) for piece in pieces)
        for i, tc in enumerate(reply.tool_calls):
            first: dict[str, Any] = {
                "tool_calls": [
                    {
                        "index": i,
                        "id": tc.id,
                        "type": "function",
                        "function": {"name": tc.name, "arguments": ""},
                    }
                ]
            }
            if not frames:
                # An answer that starts with a tool call carries the role in that chunk.
                first = {**role, "content": None, **first}
            frames.append(chunk(first))
            for piece in split3(arguments_text(tc.arguments)):
                frames.append(
                    chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
                )
        frames.append(chunk({}, finish_reason(reply)))
        if include_usage:
            last = chunk({})
            last["choices"] = []
            last["usage"] = usage_body(reply)
            frames.append(last)
        return frames

    @staticmethod
    async def _sse(frames: list[dict[str, Any]], reply: Reply) -> AsyncIterator[bytes]:
        for i, frame in enumerate(frames):
            if reply.drop_after is not None and i >= reply.drop_after:
                raise FakeStreamDrop(f"dropped after {i} chunks")
            if reply.pause_after is not None and i == reply.pause_after:
                await asyncio.sleep(reply.pause_s)
            yield b"data: " + orjson.dumps(frame) + b"\n\n"
        if reply.drop_after is not None:
            raise FakeStreamDrop("dropped before [DONE]")
        yield b"data: [DONE]\n\n"

    # -- the Responses API ---------------------------------------------------------------------
    async def responses(self, request: Request) -> Response:
        rec, reply = await self.record(request)
        if reply.raw is not None:
            return self.raw_response(reply)
        if reply.status >= 400:
            return self.json_response(error_body(reply), reply.status)
        body = rec.json or {}
        n = len(self.requests)
        if body.get("stream"):
            events = responses_api.stream_events(reply, body, n)
            return StreamingResponse(
                responses_api.sse(events, reply), media_type="text/event-stream"
            )
        items = responses_api.output_items(reply, body, n)
        status = responses_api.final_status(reply)
        return self.json_response(responses_api.response_object(reply, body, n, status, items))

    # -- embeddings and models -----------------------------------------------------------------
    async def embeddings(self, request: Request) -> Response:
        rec, reply = await self.record(request)
        if reply.raw is not None:
            return self.raw_response(reply)
        if reply.status >= 400:
            return self.json_response(error_body(reply), reply.status)
        body = rec.json or {}
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        dims = body.get("dimensions") or EMBEDDING_DIMS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(inputs or []):
            vec = fake_vector(item if isinstance(item, str) else orjson.dumps(item).decode(), dims)
            packed = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            data.append(
                {"object": "embedding", "index": i, "embedding": packed if as_base64 else vec}
            )
        return self.json_response(
            {
                "object": "list",
                "data": data,
                "model": reply.model or body.get("model", ""),
                "usage": {"prompt_tokens": reply.input_tokens, "total_tokens": reply.input_tokens},
            }
        )

    async def models(self, request: Request) -> Response:
        _, reply = await self.record(request)
        if reply.status >= 400:
            return self.json_response(error_body(reply), reply.status)
        return self.json_response(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": CREATED, "owned_by": "openai"}
                    for m in self.model_ids
                ],
            }
        )
