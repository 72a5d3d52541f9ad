"""``POST /v1/responses`` (the OpenAI Responses API front door): decode -> pipeline -> encode.

The same ``ChatPipeline`` as the chat endpoints (keys, caps, aliases, DLP, routing, fallback,
cache, logs); only the codec differs. Around it, the stored-responses hooks (the store is
``gateway.responses_store``, see ``/work``'s contract in ``backend.responses_store``):

- before ``prepare``: ``previous_response_id`` loads the stored conversation (input and output
  items of the chain, oldest first) that the decoder puts before ``input``;
- after the answer (``complete``, or the stream's terminal event): the response object and its
  input items are saved unless the request said ``store: false``. A failed save is logged, never
  the client's failure.

A WebSocket on ``/v1/responses`` (Codex tries one before HTTP) is refused in the handshake with
426 Upgrade Required and an OpenAI error body, which makes such clients use HTTP and SSE.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from backend.gateway import Gateway
from backend.ir.errors import GatewayError, InvalidRequest
from backend.ir.stream import StreamEvent
from backend.policies.context import RequestContext
from backend.policies.pipeline import ChatPipeline
from backend.protocols import openai_responses as oar
from backend.proxy.auth import principal_for
from backend.proxy.body import read_json
from backend.proxy.chat import _answer_headers, internal_error, refuse
from backend.proxy.codecs import InboundCodec
from backend.proxy.streaming import StreamResponse
from backend.state.snapshot import Principal

log = logging.getLogger("switchboard.proxy")

ENDPOINT = "/v1/responses"
JSON = "application/json"


def _unused(*_: Any) -> Any:
    raise NotImplementedError  # the Responses route encodes with its own per-response state


#: For the shared error paths (``refuse``): errors in OpenAI's format.
RESPONSES = InboundCodec(
    name="responses",
    decode_request=oar.decode_request,
    encode_response=_unused,
    encode_error=oar.encode_error,
    new_stream_encoder=_unused,
)

Saver = Callable[[dict[str, Any]], Awaitable[None]]


async def create_response(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    pipeline: ChatPipeline = request.app.state.pipeline
    ctx = RequestContext(endpoint=ENDPOINT, created_at=gw.clock())
    try:
        body = await read_json(request, gw.settings.max_body_bytes)
        if isinstance(body.get("model"), str):
            ctx.requested_model = body["model"][:200]
        ctx.principal = await principal_for(request.headers, gw.store, ctx.created_at)
        store = getattr(gw, "responses_store", None)
        prior = await _prior(store, ctx.principal, body)
        req = oar.decode_request(body, request.headers, prior)
        response_id = oar.new_response_id()
        created_at = int(ctx.created_at.timestamp())
        save = _saver(store, ctx, body)
        prepared = await pipeline.prepare(ctx, req, request.headers)
        if req.stream:
            events = await pipeline.open_stream(ctx, prepared)
            encoder = oar.StreamEncoder(req, response_id=response_id, created_at=created_at)
            return StreamResponse(
                _frames(events, encoder, save),
                headers=_answer_headers(ctx),
                close=events.aclose,
            )
        resp = await pipeline.complete(ctx, prepared)
        answer = oar.encode_response(resp, req, response_id=response_id, created_at=created_at)
        await save(answer)
        pipeline.finish(ctx)
        return Response(orjson.dumps(answer), media_type=JSON, headers=_answer_headers(ctx))
    except GatewayError as err:
        return await refuse(pipeline, RESPONSES, ctx, err)
    except Exception as exc:
        return await refuse(pipeline, RESPONSES, ctx, internal_error(exc))


async def _frames(
    events: AsyncIterator[StreamEvent], encoder: oar.StreamEncoder, save: Saver
) -> AsyncIterator[bytes]:
    try:
        async for ev in events:
            chunk = encoder.encode(ev)
            final = encoder.final
            if final is not None and final.get("status") in ("completed", "incomplete"):
                # Saved before the terminal event leaves: a client that asks for the response
                # as soon as its stream ended finds it.
                await save(final)
            if chunk:
                yield chunk
    finally:
        # Close the pipeline's generator now (settle, log, cancel upstream), not at GC time.
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


async def _prior(
    store: Any, principal: Principal | None, body: dict[str, Any]
) -> list[dict[str, Any]] | None:
    previous = body.get("previous_response_id")
    if previous is None:
        return None
    if not isinstance(previous, str) or not previous:
        raise InvalidRequest(
            "Invalid type for 'previous_response_id': expected a string.",
            param="previous_response_id",
        )
    if store is None:
        raise InvalidRequest(
            "'previous_response_id' is not supported by this gateway (no response store).",
            param="previous_response_id",
        )
    items: list[dict[str, Any]] = await store.load_conversation(principal, previous)
    return items


def _saver(store: Any, ctx: RequestContext, body: dict[str, Any]) -> Saver:
    async def save(answer: dict[str, Any]) -> None:
        if store is None or body.get("store") is False:
            return
        try:
            await store.save(
                ctx.principal,
                response=answer,
                input_items=oar.input_items(body.get("input") or []),
                previous_response_id=body.get("previous_response_id"),
                request_id=ctx.request_id,
                dlp=ctx.vault,
            )
        except Exception as exc:
            # The answer stands: the client asked a question, not for storage to work.
            log.error("could not store response %s", answer.get("id"), exc_info=exc)

    return save


async def responses_websocket(websocket: WebSocket) -> None:
    """Refuse the WebSocket transport in the handshake: clients then fall back to HTTP."""
    err = GatewayError(
        "WebSocket is not supported on /v1/responses by this gateway: use HTTP (POST with "
        "stream: true for server-sent events).",
        status=426,
        code="websocket_not_supported",
    )
    status, body = oar.encode_error(err)
    answer = Response(orjson.dumps(body), status_code=status, media_type=JSON)
    try:
        await websocket.send_denial_response(answer)
    except RuntimeError:
        # The server cannot send a denial response: closing before accept is a 403 handshake.
        await websocket.close()
