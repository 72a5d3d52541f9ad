"""OpenAI-format upstreams: OpenAI itself, any OpenAI-compatible base URL, and Azure OpenAI.

The injected ``Upstream`` (``providers/http.py``) has ``base_url = config.base_url``. For OpenAI
and compatible servers that URL includes ``/v1`` (as the OpenAI SDK takes it) and endpoints are
joined relative to it; for Azure it is the resource URL (``https://<res>.openai.azure.com``)
and requests go to ``openai/deployments/<deployment>/...?api-version=...`` with an ``api-key``
header.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from backend.ir.chat import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from backend.ir.errors import GatewayError, InvalidRequest, UpstreamError
from backend.ir.stream import StreamError, StreamEvent
from backend.protocols.openai_chat import (
    StreamDecoder,
    decode_embedding_response,
    decode_error,
    decode_response,
    encode_embedding_request,
    encode_request,
    estimate_tokens,
    events_from_response,
)
from backend.providers.base import ProviderConfig, SSEEvents, map_transport_error, relay_stream
from backend.providers.http import Upstream
from backend.providers.openai_responses import (
    responses_chat,
    responses_stream,
    wants_responses_api,
)

AZURE_DEFAULT_API_VERSION = "2024-10-21"


class OpenAIProvider:
    """Chat, streaming, embeddings and model listing against an OpenAI-format API."""

    def __init__(self, config: ProviderConfig, client: Upstream) -> None:
        self.config = config
        self._client = client

    # -- what differs between OpenAI and Azure -------------------------------------------------
    def _path(self, endpoint: str, model: str) -> str:
        return endpoint

    def _params(self) -> dict[str, str] | None:
        return None

    def _auth_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        if self.config.organization:
            headers["openai-organization"] = self.config.organization
        if self.config.project:
            headers["openai-project"] = self.config.project
        return headers

    # -- plumbing ------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {
            "content-type": "application/json",
            **self._auth_headers(),
            **self.config.extra_headers,
        }

    def _error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        err = decode_error(status, body, provider=self.config.name)
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            err.headers["retry-after"] = retry_after
        return err

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        name = self.config.name
        try:
            resp = await self._client.request(
                method,
                path,
                content=orjson.dumps(body) if body is not None else None,
                headers=self._headers(),
                params=self._params(),
            )
        except Exception as exc:
            raise map_transport_error(exc, name) from exc
        if resp.status_code >= 400:
            raise self._error(resp.status_code, resp.content, resp.headers)
        return _loads(resp.content, name)

    # -- Provider protocol ---------------------------------------------------------------------
    async def chat(self, req: ChatRequest, model: str) -> ChatResponse:
        if wants_responses_api(self, req):
            return await responses_chat(self, req, model)
        body = encode_request(req, model, stream=False)
        data = await self._send("POST", self._path("chat/completions", model), body)
        return decode_response(data, provider=self.config.name)

    async def stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        if wants_responses_api(self, req):
            async with contextlib.aclosing(responses_stream(self, req, model)) as events:
                async for ev in events:
                    yield ev
            return
        name = self.config.name
        body = orjson.dumps(encode_request(req, model, stream=True))
        try:
            # Leaving this block in any way (end, error, the consumer's aclose() or
            # cancellation) closes the upstream response.
            async with self._client.stream(
                "POST",
                self._path("chat/completions", model),
                content=body,
                headers=self._headers(),
                params=self._params(),
            ) as resp:
                if resp.status_code >= 400:
                    raise self._error(resp.status_code, await resp.aread(), resp.headers)
                if resp.headers.get("content-type", "").startswith("application/json"):
                    # A compatible server that ignored "stream": replay its whole answer.
                    answer = decode_response(_loads(await resp.aread(), name), provider=name)
                    for ev in events_from_response(answer):
                        yield ev
                    return
                decoder = StreamDecoder(provider=name)
                sse = SSEEvents(decoder)

                def after_failure(err: GatewayError) -> list[StreamEvent]:
                    # Dropped after the finish chunk: the answer is whole, end it cleanly.
                    return decoder.close() if decoder.answer_complete else [StreamError(err)]

                events = relay_stream(
                    name,
                    resp.aiter_bytes(),
                    sse.feed,
                    sse.close,
                    after_failure=after_failure,
                    stop_at_end=True,
                )
                async with contextlib.aclosing(events):
                    async for ev in events:
                        yield ev
        except GatewayError:
            raise
        except Exception as exc:
            raise map_transport_error(exc, name) from exc

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        body = encode_embedding_request(req, model)
        data = await self._send("POST", self._path("embeddings", model), body)
        return decode_embedding_response(data, provider=self.config.name)

    async def count_tokens(self, req: ChatRequest, model: str) -> int:
        """An estimate (~4 characters per token): OpenAI has no counting endpoint."""
        return estimate_tokens(req)

    async def list_models(self) -> list[str]:
        data = await self._send("GET", "models")
        return _model_ids(data, self.config.name)


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI: deployments in the path, ``api-version`` query, ``api-key`` header.

    The deployment is ``config.azure_deployment`` when set, else the model id routed to this
    provider (Azure deployments are usually named after their model).
    """

    def _prefix(self) -> str:
        # Tolerate a base URL configured with the "/openai" suffix already on it.
        return "" if self._client.base_url.path.rstrip("/").endswith("/openai") else "openai/"

    def _path(self, endpoint: str, model: str) -> str:
        name = self.config.azure_deployment or model
        if name in ("", ".", "..") or ".." in name:
            # Dot segments would be resolved by the URL parser and escape the deployment path.
            raise InvalidRequest(f"azure: {name!r} is not a deployment name", param="model")
        deployment = quote(name, safe="")
        return f"{self._prefix()}deployments/{deployment}/{endpoint}"

    def _params(self) -> dict[str, str] | None:
        return {"api-version": self.config.api_version or AZURE_DEFAULT_API_VERSION}

    def _auth_headers(self) -> dict[str, str]:
        return {"api-key": self.config.api_key} if self.config.api_key else {}

    async def list_models(self) -> list[str]:
        if self.config.azure_deployment:
            return [self.config.azure_deployment]
        data = await self._send("GET", f"{self._prefix()}models")
        return _model_ids(data, self.config.name)


def _loads(body: bytes, provider: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"{provider}: invalid JSON in upstream response") from None


def _model_ids(data: Any, provider: str) -> list[str]:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise UpstreamError(f"{provider}: malformed models list")
    return [m["id"] for m in items if isinstance(m, dict) and isinstance(m.get("id"), str)]


def make_openai_provider(config: ProviderConfig, client: Upstream) -> OpenAIProvider:
    """The adapter for ``config.kind`` ``"azure"`` or anything else OpenAI-compatible."""
    cls = AzureOpenAIProvider if config.kind == "azure" else OpenAIProvider
    return cls(config, client)
