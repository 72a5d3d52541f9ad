"""A fake Gemini Developer API: ``/v1beta/...`` and ``/v1/...`` (google-genai 3.x uses ``/v1``).

Serves ``models/{model}:generateContent``, ``:streamGenerateContent`` (SSE framed with CRLF when
``alt=sse``, else one JSON array), ``:countTokens``, ``:batchEmbedContents``, ``GET models`` and
``GET models/{model}``. Errors use Google's ``{"error": {"code", "message", "status"}}``; the key
``bad`` answers 400 ``API_KEY_INVALID`` and a missing key 403, as Google does.

Gemini specifics the fake reproduces: function calls carry no id and end with
``finishReason: STOP``; every stream chunk has ``usageMetadata`` and only the last is complete.
With ``thought_signature`` set, the first function call of an answer carries it (Gemini 3); with
``require_signatures``, a request whose model turns hold a function call without one is refused
with Gemini 3's 400. A ``GeminiReply`` with ``thinking`` answers a thought part
(``thought: true``) first, as Gemini does when ``includeThoughts`` is set, and reports
``reasoning_tokens`` as ``thoughtsTokenCount`` (on top of ``candidatesTokenCount``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.base import FakeUpstream, RecordedRequest, Reply, Turn

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}


@dataclass
class GeminiReply(Reply):
    """A ``Reply`` with a thought summary before the answer."""

    thinking: str | None = None


class GeminiFake(FakeUpstream):
    def __init__(self) -> None:
        self.models: list[str] = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"]
        #: Page size of ``GET models`` (``None``: the client's ``pageSize``, else everything).
        self.models_page_size: int | None = None
        self.thought_signature: str | None = None
        self.require_signatures = False
        self.embedding_dims = 8
        super().__init__()

    def routes(self) -> list[Route]:
        routes = []
        for version in ("v1beta", "v1"):
            routes += [
                Route(f"/{version}/models", self.list_models, methods=["GET"]),
                Route(f"/{version}/models/{{rest:path}}", self.model_call, methods=["GET", "POST"]),
            ]
        return routes

    def turn(self, rec: RecordedRequest) -> Turn | None:
        body = rec.json
        if not rec.path.endswith(("generateContent", "GenerateContent")):
            return None
        if not isinstance(body, dict):
            return None
        tools = [
            d.get("name", "")
            for t in body.get("tools") or []
            for d in t.get("functionDeclarations") or []
        ]
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        if last.get("role", "user") != "user":
            return Turn(tools, "", [])
        parts = last.get("parts") or []
        results = [
            orjson.dumps(p["functionResponse"].get("response")).decode()
            for p in parts
            if "functionResponse" in p
        ]
        text = "".join(p.get("text", "") for p in parts)
        return Turn(tools, text, results)

    # -- endpoints ---------------------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        if (denied := await self._auth(request)) is not None:
            return denied
        await self._note(request)
        size = self.models_page_size or int(request.query_params.get("pageSize") or 0) or 1000
        start = int(request.query_params.get("pageToken") or 0)
        page = self.models[start : start + size]
        body: dict[str, Any] = {"models": [_model_info(m) for m in page]}
        if start + size < len(self.models):
            body["nextPageToken"] = str(start + size)
        return self.json_response(body)

    async def model_call(self, request: Request) -> Response:
        if (denied := await self._auth(request)) is not None:
            return denied
        model, _, method = request.path_params["rest"].partition(":")
        if request.method == "GET" and not method:
            await self._note(request)
            if model not in self.models:
                return _error(404, f"models/{model} is not found for API version v1beta")
            return self.json_response(_model_info(model))
        rec, reply = await self.record(request)
        if reply.raw is not None:
            return self.raw_response(reply)
        if reply.status != 200:
            return _error(reply.status, reply.error_message)
        body = rec.json or {}
        if method == "countTokens":
            return self.json_response(_count(reply))
        if method == "batchEmbedContents":
            return self.json_response(self._embeddings(body))
        if method not in ("generateContent", "streamGenerateContent"):
            return _error(404, f"Method {method} not found")
        if self.require_signatures and not _signed(body):
            return _error(
                400,
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly.",
            )
        chunks = self._chunks(reply, reply.model or model, rid=f"fakeResp{len(self.requests)}")
        if method == "generateContent":
            return self.json_response(_merge(chunks))
        sse = request.query_params.get("alt") == "sse"
        return StreamingResponse(
            _stream(chunks, reply, sse),
            media_type="text/event-stream" if sse else "application/json",
        )

    # -- rendering ---------------------------------------------------------------------------------

    def _chunks(self, reply: Reply, model: str, rid: str) -> list[dict[str, Any]]:
        """The answer as stream chunks; ``generateContent`` merges them into one body."""
        part_lists: list[list[dict[str, Any]]] = [[{"text": p}] for p in reply.text_pieces()]
        thinking = getattr(reply, "thinking", None)
        if thinking:
            part_lists.insert(0, [{"text": thinking, "thought": True}])
        calls = []
        for i, tc in enumerate(reply.tool_calls):
            part: dict[str, Any] = {"functionCall": {"name": tc.name, "args": tc.arguments}}
            if i == 0 and self.thought_signature:
                part["thoughtSignature"] = self.thought_signature
            calls.append(part)
        if calls:
            part_lists.append(calls)
        if not part_lists:
            part_lists.append([{"text": ""}])
        chunks = []
        for n, parts in enumerate(part_lists):
            last = n == len(part_lists) - 1
            cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if last:
                cand["finishReason"] = _FINISH.get(reply.finish, reply.finish.upper())
            chunks.append(
                {
                    "candidates": [cand],
                    "usageMetadata": _usage(reply, complete=last),
                    "modelVersion": model,
                    "responseId": rid,
                }
            )
        return chunks

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        out = []
        for entry in body.get("requests") or []:
            text = "".join(p.get("text", "") for p in entry["content"]["parts"])
            dims = int(entry.get("outputDimensionality") or self.embedding_dims)
            out.append({"values": fake_vector(text, dims)})
        return {"embeddings": out}

    async def _note(self, request: Request) -> None:
        """Record a request that consumes no reply (listings, refusals)."""
        self.requests.append(
            RecordedRequest(
                request.method,
                request.url.path,
                request.url.query,
                {k.lower(): v for k, v in request.headers.items()},
                await request.body(),
            )
        )

    async def _auth(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if key and key != "bad":
            return None
        # Refused before any reply is consumed, but still recorded for inspection.
        await self._note(request)
        if key == "bad":
            return _error(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        return _error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity)."
            " Please use API Key or other form of API consumer identity to call this API.",
        )


def fake_vector(text: str, dims: int) -> list[float]:
    """A deterministic unit-free vector per text, so tests can compare embeddings."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dims)]


def _usage(reply: Reply, *, complete: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": reply.input_tokens,
        "totalTokenCount": reply.input_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.input_tokens}],
    }
    if complete:
        # Gemini counts thoughts apart from the candidates.
        usage["candidatesTokenCount"] = reply.output_tokens - reply.reasoning_tokens
        usage["totalTokenCount"] = reply.input_tokens + reply.output_tokens
        if reply.reasoning_tokens:
            usage["thoughtsTokenCount"] = reply.reasoning_tokens
    if reply.cached_tokens:
        usage["cachedContentTokenCount"] = reply.cached_tokens
    return usage


def _count(reply: Reply) -> dict[str, Any]:
    return {
        "totalTokens": reply.input_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.input_tokens}],
    }


def _merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``generateContent`` body: all parts, adjacent text joined, the last chunk's rest."""
    parts: list[dict[str, Any]] = []
    for chunk in chunks:
        for part in chunk["candidates"][0]["content"]["parts"]:
            same = parts and part.get("thought") == parts[-1].get("thought")
            if "text" in part and same and "text" in parts[-1]:
                parts[-1] = {"text": parts[-1]["text"] + part["text"]}
            else:
                parts.append(dict(part))
    body = dict(chunks[-1])
    cand = dict(body["candidates"][0])
    cand["content"] = {"parts": parts, "role": "model"}
    body["candidates"] = [cand]
    return body


async def _stream(chunks: list[dict[str, Any]], reply: Reply, sse: bool) -> AsyncIterator[bytes]:
    limit = len(chunks) if reply.drop_after is None else min(reply.drop_after, len(chunks))
    for n, chunk in enumerate(chunks[:limit]):
        data = orjson.dumps(chunk)
        if sse:
            yield b"data: " + data + b"\r\n\r\n"
        else:
            yield (b"[" if n == 0 else b"\n,\r\n") + data
    if reply.drop_after is not None:
        raise ConnectionResetError("fake upstream dropped the connection")
    if not sse:
        yield b"\n]"


def _signed(body: dict[str, Any]) -> bool:
    for content in body.get("contents") or []:
        if content.get("role") != "model":
            continue
        calls = [p for p in content.get("parts") or [] if "functionCall" in p]
        if calls and "thoughtSignature" not in calls[0]:
            return False
    return True


def _model_info(name: str) -> dict[str, Any]:
    embedding = "embedding" in name
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name.replace("-", " ").title(),
        "description": f"Fake {name}",
        "inputTokenLimit": 2048 if embedding else 1048576,
        "outputTokenLimit": 1 if embedding else 65536,
        "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens"]
        if embedding
        else ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
    }


def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> Response:
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return FakeUpstream.json_response({"error": err}, status)
