"""OpenAI's own Responses API as an upstream: a Responses client's request to OpenAI.

Used by ``OpenAIProvider`` when the caller speaks the Responses API and the provider is OpenAI
itself (``protocols.openai_responses.rules.uses_responses_api``): the request goes to
``POST /v1/responses`` with everything the client sent (hosted tools, files, encrypted
reasoning...), rebuilt from the IR so that DLP's redactions hold. Other OpenAI-format providers
(Azure, compatible servers) keep chat completions.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import orjson

from backend.ir.chat import ChatRequest, ChatResponse
from backend.ir.errors import GatewayError, UpstreamError
from backend.ir.stream import StreamEvent
from backend.protocols.openai_responses import (
    StreamDecoder,
    decode_response,
    encode_request,
    is_responses_request,
    uses_responses_api,
)
from backend.providers.base import SSEEvents, map_transport_error, relay_stream

if TYPE_CHECKING:
    from backend.providers.openai import OpenAIProvider

PATH = "responses"


def wants_responses_api(provider: OpenAIProvider, req: ChatRequest) -> bool:
    return is_responses_request(req) and uses_responses_api(
        provider.config.kind, provider.config.name
    )


async def responses_chat(provider: OpenAIProvider, req: ChatRequest, model: str) -> ChatResponse:
    body = encode_request(req, model, stream=False)
    data = await provider._send("POST", PATH, body)
    return decode_response(data, provider=provider.config.name)


async def responses_stream(
    provider: OpenAIProvider, req: ChatRequest, model: str
) -> AsyncGenerator[StreamEvent, None]:
    name = provider.config.name
    body = orjson.dumps(encode_request(req, model, stream=True))
    try:
        async with provider._client.stream(
            "POST", PATH, content=body, headers=provider._headers(), params=provider._params()
        ) as resp:
            if resp.status_code >= 400:
                raise provider._error(resp.status_code, await resp.aread(), resp.headers)
            if not resp.headers.get("content-type", "").startswith("text/event-stream"):
                raise UpstreamError(f"{name}: expected an event stream from /v1/responses")
            sse = SSEEvents(StreamDecoder(provider=name))
            events = relay_stream(name, resp.aiter_bytes(), sse.feed, sse.close, stop_at_end=True)
            async with contextlib.aclosing(events):
                async for ev in events:
                    yield ev
    except GatewayError:
        raise
    except Exception as exc:
        raise map_transport_error(exc, name) from exc
