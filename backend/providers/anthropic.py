"""Anthropic provider: ``/v1/messages`` (plain and streamed), ``count_tokens``, ``/v1/models``.

``config.base_url`` is the API root *without* ``/v1`` (as the Anthropic SDK takes it). URLs are
built absolute, so the shared client may or may not carry a base URL of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from backend.ir.chat import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from backend.ir.errors import GatewayError, UpstreamError
from backend.ir.stream import StreamEvent
from backend.protocols.anthropic_messages import (
    StreamDecoder,
    decode_error,
    decode_response,
    encode_count_tokens_request,
    encode_request,
)
from backend.protocols.model_rules import structured_tool
from backend.providers.base import (
    ProviderConfig,
    SSEEvents,
    UnsupportedOperation,
    map_transport_error,
    relay_stream,
)
from backend.providers.http import Upstream

DEFAULT_VERSION = "2023-06-01"


class AnthropicProvider:
    def __init__(self, config: ProviderConfig, client: Upstream) -> None:
        self.config = config
        self._client = client
        self._root = config.base_url.rstrip("/")

    def _headers(self, req: ChatRequest | None = None) -> dict[str, str]:
        forwarded = req.forward_headers if req is not None else {}
        headers = {
            "content-type": "application/json",
            "anthropic-version": forwarded.get("anthropic-version", DEFAULT_VERSION),
            **self.config.extra_headers,
        }
        for name in ("anthropic-beta", "anthropic-user-profile-id"):
            if name in forwarded:
                headers[name] = forwarded[name]
        if self.config.api_key:
            headers["x-api-key"] = self.config.api_key
        return headers

    async def _post(self, path: str, body: dict[str, Any], req: ChatRequest) -> Any:
        try:
            resp = await self._client.post(
                self._root + path, content=orjson.dumps(body), headers=self._headers(req)
            )
        except Exception as exc:
            raise map_transport_error(exc, self.config.name) from exc
        return self._json(resp)

    def _json(self, resp: httpx.Response) -> Any:
        if not resp.is_success:
            raise decode_error(resp.status_code, resp.content, provider=self.config.name)
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.config.name}: response body is not valid JSON") from None

    async def chat(self, req: ChatRequest, model: str) -> ChatResponse:
        body = encode_request(req, model, stream=False)
        tool = structured_tool(req, "anthropic", model)
        return decode_response(await self._post("/v1/messages", body, req), output_tool=tool)

    async def stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        name = self.config.name
        body = orjson.dumps(encode_request(req, model, stream=True))
        headers = {**self._headers(req), "accept": "text/event-stream"}
        try:
            async with self._client.stream(
                "POST", self._root + "/v1/messages", content=body, headers=headers
            ) as resp:
                if not resp.is_success:
                    raise decode_error(resp.status_code, await resp.aread(), provider=name)
                sse = SSEEvents(
                    StreamDecoder(
                        provider=name, output_tool=structured_tool(req, "anthropic", model)
                    )
                )
                events = relay_stream(name, resp.aiter_bytes(), sse.feed, sse.close)
                async with contextlib.aclosing(events):
                    async for ev in events:
                        yield ev
        except GatewayError:
            raise
        except Exception as exc:
            raise map_transport_error(exc, name) from exc

    async def count_tokens(self, req: ChatRequest, model: str) -> int:
        body = encode_count_tokens_request(req, model)
        data = await self._post("/v1/messages/count_tokens", body, req)
        count = data.get("input_tokens") if isinstance(data, dict) else None
        if not isinstance(count, int):
            raise UpstreamError(f"{self.config.name}: malformed count_tokens answer")
        return count

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        raise UnsupportedOperation("anthropic has no embeddings endpoint")

    async def list_models(self) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {"limit": 1000}
        while True:
            try:
                resp = await self._client.get(
                    self._root + "/v1/models", params=params, headers=self._headers()
                )
            except Exception as exc:
                raise map_transport_error(exc, self.config.name) from exc
            data = self._json(resp)
            page = data.get("data") if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise UpstreamError(f"{self.config.name}: malformed model list")
            ids.extend(str(m["id"]) for m in page if isinstance(m, dict) and m.get("id"))
            if not data.get("has_more") or not data.get("last_id"):
                return ids
            params = {"limit": 1000, "after_id": data["last_id"]}
