"""A fake Ollama server: ``POST /api/chat``, ``POST /api/embed``, ``GET /api/tags``,
``GET /api/version``.

``/api/chat`` streams NDJSON unless the body says ``"stream": false`` (Ollama's default is to
stream). The final line has ``done: true``, ``done_reason``, ``prompt_eval_count`` and
``eval_count``; tool calls arrive whole in one line with ``arguments`` as a JSON object and, like
Ollama, ``done_reason`` stays ``stop`` after a tool call. Only the models in ``models`` exist: any
other name is a 404 ``model "x" not found, try pulling it first``, and ``x`` also matches
``x:latest``. Errors are ``{"error": "<message>"}``. An ``OllamaReply`` with ``thinking`` streams
it first as ``message.thinking`` (what Ollama sends when the request said ``think``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.base import FakeUpstream, RecordedRequest, Reply, Turn
from tests.fakes.gemini_fake import fake_vector

CREATED_AT = "2026-11-29T23:15:00.123456789Z"


@dataclass
class OllamaReply(Reply):
    """A ``Reply`` with thinking before the answer."""

    thinking: str | None = None


class OllamaFake(FakeUpstream):
    def __init__(self) -> None:
        self.models: list[str] = ["llama3.2:latest", "qwen3:8b", "nomic-embed-text:latest"]
        #: Newer Ollama versions send an ``id`` with each tool call; older ones none.
        self.tool_call_ids = False
        self.embedding_dims = 8
        super().__init__()

    def routes(self) -> list[Route]:
        return [
            Route("/api/chat", self.chat, methods=["POST"]),
            Route("/api/embed", self.embed, methods=["POST"]),
            Route("/api/tags", self.tags, methods=["GET"]),
            Route("/api/version", self.version, methods=["GET"]),
        ]

    def resolve(self, name: str) -> str | None:
        for candidate in (name, f"{name}:latest"):
            if candidate in self.models:
                return candidate
        return None

    def turn(self, rec: RecordedRequest) -> Turn | None:
        body = rec.json
        if rec.path != "/api/chat" or not isinstance(body, dict):
            return None
        tools = [t.get("function", {}).get("name", "") for t in body.get("tools") or []]
        turns = [m for m in body.get("messages") or [] if m.get("role") != "system"]
        results = []
        while turns and turns[-1].get("role") == "tool":
            results.insert(0, str(turns.pop().get("content", "")))
        if results:
            return Turn(tools, "", results)
        last = turns[-1] if turns else {}
        text = str(last.get("content", "")) if last.get("role") == "user" else ""
        return Turn(tools, text, [])

    # -- endpoints ---------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        rec, reply = await self.record(request)
        if reply.raw is not None:
            return self.raw_response(reply)
        if reply.status != 200:
            return _error(reply.status, reply.error_message)
        body = rec.json or {}
        model = self.resolve(str(body.get("model", "")))
        if model is None:
            return _error(404, f'model "{body.get("model")}" not found, try pulling it first')
        lines = self._lines(reply, reply.model or model)
        if body.get("stream", True) is False:
            return self.json_response(_merge(lines))
        return StreamingResponse(_stream(lines, reply), media_type="application/x-ndjson")

    async def embed(self, request: Request) -> Response:
        rec, reply = await self.record(request)
        if reply.raw is not None:
            return self.raw_response(reply)
        if reply.status != 200:
            return _error(reply.status, reply.error_message)
        body = rec.json or {}
        model = self.resolve(str(body.get("model", "")))
        if model is None:
            return _error(404, f'model "{body.get("model")}" not found, try pulling it first')
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or self.embedding_dims)
        return self.json_response(
            {
                "model": model,
                "embeddings": [fake_vector(t, dims) for t in texts],
                "total_duration": 14143917,
                "load_duration": 1019500,
                "prompt_eval_count": reply.input_tokens,
            }
        )

    async def tags(self, request: Request) -> Response:
        return self.json_response({"models": [_tag(m) for m in self.models]})

    async def version(self, request: Request) -> Response:
        return self.json_response({"version": "0.12.6"})

    # -- rendering ---------------------------------------------------------------------------------

    def _lines(self, reply: Reply, model: str) -> list[dict[str, Any]]:
        def line(message: dict[str, Any]) -> dict[str, Any]:
            return {"model": model, "created_at": CREATED_AT, "message": message, "done": False}

        lines = [line({"role": "assistant", "content": p}) for p in reply.text_pieces()]
        thinking = getattr(reply, "thinking", None)
        if thinking:
            lines.insert(0, line({"role": "assistant", "content": "", "thinking": thinking}))
        if reply.tool_calls:
            calls = []
            for i, tc in enumerate(reply.tool_calls):
                call: dict[str, Any] = {
                    "function": {"index": i, "name": tc.name, "arguments": tc.arguments}
                }
                if self.tool_call_ids:
                    call["id"] = tc.id
                calls.append(call)
            lines.append(line({"role": "assistant", "content": "", "tool_calls": calls}))
        final = line({"role": "assistant", "content": ""})
        final.update(
            done=True,
            done_reason="length" if reply.finish == "length" else "stop",
            total_duration=4883583458,
            load_duration=1334875,
            prompt_eval_count=reply.input_tokens,
            prompt_eval_duration=342546000,
            eval_count=reply.output_tokens,
            eval_duration=4535599000,
        )
        lines.append(final)
        return lines


def _merge(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``stream: false`` body: the final line with the whole message."""
    body = dict(lines[-1])
    message: dict[str, Any] = {"role": "assistant", "content": ""}
    for ln in lines:
        message["content"] += ln["message"].get("content", "")
        if ln["message"].get("thinking"):
            message["thinking"] = message.get("thinking", "") + ln["message"]["thinking"]
        if ln["message"].get("tool_calls"):
            message["tool_calls"] = ln["message"]["tool_calls"]
    body["message"] = message
    return body


async def _stream(lines: list[dict[str, Any]], reply: Reply) -> AsyncIterator[bytes]:
    limit = len(lines) if reply.drop_after is None else min(reply.drop_after, len(lines))
    for ln in lines[:limit]:
        yield orjson.dumps(ln) + b"\n"
    if reply.drop_after is not None:
        raise ConnectionResetError("fake upstream dropped the connection")


def _tag(name: str) -> dict[str, Any]:
    family = name.split(":", 1)[0].rstrip("0123456789.")
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-11-01T10:00:00.000000000Z",
        "size": 2019393189,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }


def _error(status: int, message: str) -> Response:
    return FakeUpstream.json_response({"error": message}, status)
