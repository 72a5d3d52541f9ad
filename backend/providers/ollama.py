"""Ollama provider: the native API (``/api/chat`` NDJSON, ``/api/embed``, ``/api/tags``).

``config.base_url`` is the server root (``http://127.0.0.1:11434``). A key, when configured
(Ollama behind an authenticating proxy, or ollama.com), goes as ``Authorization: Bearer``.

Ollama has no token-counting endpoint, so ``count_tokens`` estimates: about four characters per
token over every text, tool argument and tool schema, plus a few tokens of template overhead per
message and a flat allowance per image. Good enough for budget reservations; Ollama costs $0.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)
from backend.ir.errors import GatewayError
from backend.ir.estimate import TokenRates
from backend.ir.estimate import estimate_tokens as _estimate
from backend.ir.stream import StreamEvent, StreamStart
from backend.protocols import ollama as codec
from backend.protocols.ollama.decode import malformed
from backend.providers.base import ProviderConfig, map_transport_error, relay_stream
from backend.providers.http import Upstream

OLLAMA_RATES = TokenRates(per_message=4, per_image=256, per_system=4)


class OllamaProvider:
    def __init__(self, config: ProviderConfig, client: Upstream) -> None:
        self.config = config
        self._client = client
        self._base = config.base_url.rstrip("/").removesuffix("/api")

    # -- Provider API ------------------------------------------------------------------------------

    async def chat(self, req: ChatRequest, model: str) -> ChatResponse:
        body = codec.encode_request(req, model, stream=False)
        resp = codec.decode_response(await self._request("POST", "/api/chat", body))
        resp.model = resp.model or model
        resp.created = resp.created or int(time.time())
        return resp

    async def stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        name = self.config.name
        body = codec.encode_request(req, model, stream=True)
        try:
            async with self._client.stream(
                "POST",
                f"{self._base}/api/chat",
                content=orjson.dumps(body),
                headers=self._headers(),
            ) as resp:
                if not resp.is_success:
                    raise codec.decode_error(resp.status_code, await resp.aread())
                lines = _Lines(codec.StreamDecoder(model=model))
                events = relay_stream(
                    name, resp.aiter_bytes(), lines.feed, lines.close, after_failure=lines.abort
                )
                async with contextlib.aclosing(events):
                    async for ev in events:
                        yield ev
        except GatewayError:
            raise
        except Exception as exc:
            raise map_transport_error(exc, name) from exc

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        body = codec.encode_embedding_request(req, model)
        return codec.decode_embedding_response(
            await self._request("POST", "/api/embed", body), model
        )

    async def count_tokens(self, req: ChatRequest, model: str) -> int:
        return estimate_tokens(req)

    async def list_models(self) -> list[str]:
        return codec.decode_tags(await self._request("GET", "/api/tags"))

    # -- HTTP --------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.config.extra_headers}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        content = orjson.dumps(body) if body is not None else None
        try:
            resp = await self._client.request(
                method, f"{self._base}{path}", content=content, headers=self._headers()
            )
        except Exception as exc:
            raise map_transport_error(exc, self.config.name) from exc
        if not resp.is_success:
            raise codec.decode_error(resp.status_code, resp.content)
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise malformed("invalid JSON") from exc


def estimate_tokens(req: ChatRequest) -> int:
    return _estimate(req, OLLAMA_RATES)


class _Lines:
    """NDJSON: whole lines go to the decoder; a partial one waits for the next chunk."""

    def __init__(self, decoder: codec.StreamDecoder) -> None:
        self._decoder = decoder
        self._buf = b""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        *lines, self._buf = (self._buf + chunk).split(b"\n")
        return [_stamp(ev) for line in lines for ev in self._decoder.feed_line(line)]

    def close(self) -> list[StreamEvent]:
        # A last line without its newline counts only if it is a whole object; a cut-off
        # fragment is left to close(), which reports the stream as truncated.
        tail = self._decoder.feed_line(self._buf) if _whole_json(self._buf) else []
        return [_stamp(ev) for ev in tail + self._decoder.close()]

    def abort(self, err: GatewayError) -> list[StreamEvent]:
        return self._decoder.abort(err)


def _whole_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _stamp(ev: StreamEvent) -> StreamEvent:
    if isinstance(ev, StreamStart) and not ev.created:
        ev.created = int(time.time())
    return ev
