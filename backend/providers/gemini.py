"""Google Gemini (Developer API) provider: ``generateContent`` and friends on ``/v1beta``.

``config.base_url`` is the host without a version path (``https://generativelanguage.googleapis
.com``); a trailing ``/v1beta`` or ``/v1`` is tolerated and removed. The key goes in the
``x-goog-api-key`` header, never in the URL (URLs end up in logs). Streams always use
``alt=sse``.

``batchEmbedContents`` reports no token usage on most models; the provider then estimates input
tokens (about four characters per token) so spend caps still see embedding traffic.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from backend.ir.chat import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from backend.ir.errors import GatewayError, InvalidRequest
from backend.ir.stream import StreamEvent, StreamStart
from backend.protocols import gemini as codec
from backend.protocols.gemini.decode import malformed
from backend.providers.base import ProviderConfig, SSEEvents, map_transport_error, relay_stream
from backend.providers.http import Upstream

_MAX_MODEL_PAGES = 20
#: The model id goes into the URL path: anything but a plain id (``..``, ``?``, ``#``, ``/``
#: beyond the ``models/`` prefix) would make the gateway call another path of the provider with
#: its own key.
_MODEL_ID = re.compile(r"(?:models/|tunedModels/)?[A-Za-z0-9][A-Za-z0-9._-]*")


class GeminiProvider:
    def __init__(self, config: ProviderConfig, client: Upstream) -> None:
        self.config = config
        self._client = client
        base = config.base_url.rstrip("/")
        for suffix in ("/v1beta", "/v1"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        self._base = f"{base}/v1beta"

    # -- Provider API ------------------------------------------------------------------------------

    async def chat(self, req: ChatRequest, model: str) -> ChatResponse:
        body = codec.encode_request(req, model, stream=False)
        data = await self._post(self._method_url(model, "generateContent"), body)
        resp = codec.decode_response(data)
        resp.model = resp.model or model
        resp.created = resp.created or int(time.time())
        return resp

    async def stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        name = self.config.name
        body = codec.encode_request(req, model, stream=True)
        try:
            async with self._client.stream(
                "POST",
                self._method_url(model, "streamGenerateContent"),
                params={"alt": "sse"},
                content=orjson.dumps(body),
                headers=self._headers(),
            ) as resp:
                if not resp.is_success:
                    raise codec.decode_error(resp.status_code, await resp.aread())
                decoder = codec.StreamDecoder(model=model)
                sse = SSEEvents(decoder)
                events = relay_stream(
                    name,
                    resp.aiter_bytes(),
                    lambda chunk: [_stamp(ev) for ev in sse.feed(chunk)],
                    lambda: [_stamp(ev) for ev in sse.close()],
                    after_failure=decoder.abort,
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
        data = await self._post(self._method_url(model, "batchEmbedContents"), body)
        resp = codec.decode_embedding_response(data, model)
        if not resp.usage.input_tokens:
            chars = sum(len(t) for t in req.input if isinstance(t, str))
            resp.usage.input_tokens = math.ceil(chars / 4)
        return resp

    async def count_tokens(self, req: ChatRequest, model: str) -> int:
        body = codec.encode_count_tokens_request(req, model)
        return codec.decode_count_tokens(
            await self._post(self._method_url(model, "countTokens"), body)
        )

    async def list_models(self) -> list[str]:
        names: list[str] = []
        params: dict[str, str] = {"pageSize": "1000"}
        for _ in range(_MAX_MODEL_PAGES):
            data = await self._request("GET", f"{self._base}/models", params=params)
            models = data.get("models") if isinstance(data, dict) else None
            if not isinstance(models, list):
                raise malformed("models missing")
            for m in models:
                name = m.get("name") if isinstance(m, dict) else None
                if isinstance(name, str):
                    names.append(name.removeprefix("models/"))
            token = data.get("nextPageToken")
            if not token:
                break
            params = {**params, "pageToken": str(token)}
        return names

    # -- HTTP --------------------------------------------------------------------------------------

    def _method_url(self, model: str, method: str) -> str:
        if not _MODEL_ID.fullmatch(model) or ".." in model:
            raise InvalidRequest(f"gemini: {model!r} is not a Gemini model id", param="model")
        return f"{self._base}/{codec.model_path(model)}:{method}"

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.config.extra_headers}
        if self.config.api_key:
            headers["x-goog-api-key"] = self.config.api_key
        return headers

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        return await self._request("POST", url, content=orjson.dumps(body))

    async def _request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        try:
            resp = await self._client.request(
                method, url, content=content, params=params, headers=self._headers()
            )
        except Exception as exc:
            raise map_transport_error(exc, self.config.name) from exc
        if not resp.is_success:
            raise codec.decode_error(resp.status_code, resp.content)
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise malformed("invalid JSON") from exc


def _stamp(ev: StreamEvent) -> StreamEvent:
    if isinstance(ev, StreamStart) and not ev.created:
        ev.created = int(time.time())
    return ev
