"""Chat endpoints (``/v1/chat/completions``, ``/v1/messages``): decode -> pipeline -> encode."""

from __future__ import annotations

import logging
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response

from backend.gateway import Gateway
from backend.ir.errors import GatewayError
from backend.policies.context import RequestContext
from backend.policies.pipeline import ChatPipeline
from backend.proxy.auth import principal_for
from backend.proxy.body import read_json
from backend.proxy.codecs import ANTHROPIC, OPENAI, InboundCodec
from backend.proxy.headers import request_headers
from backend.proxy.streaming import StreamResponse

log = logging.getLogger("switchboard.proxy")

JSON = "application/json"


def error_response(codec: InboundCodec, err: GatewayError, ctx: RequestContext) -> Response:
    status, body = codec.encode_error(err)
    # The rate-limit headers of an admitted request, unless the error brings its own.
    headers = {"x-request-id": ctx.request_id, **ctx.rate_headers, **err.headers}
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def refusal(gw: Gateway, codec: InboundCodec, err: GatewayError, ctx: RequestContext) -> Response:
    """The answer to a request refused outside the pipeline, its reason logged once per cause."""
    gw.request_log.refused(err, request_id=ctx.request_id, endpoint=ctx.endpoint)
    return error_response(codec, err, ctx)


def internal_error(exc: BaseException) -> GatewayError:
    # The message never carries exception text: it could hold request data or secrets.
    log.error("internal error while handling a request", exc_info=exc)
    return GatewayError("Internal gateway error.", status=500)


async def handle_chat(request: Request, codec: InboundCodec, endpoint: str) -> Response:
    gw: Gateway = request.app.state.gateway
    pipeline: ChatPipeline = request.app.state.pipeline
    ctx = RequestContext(endpoint=endpoint, created_at=gw.clock())
    headers = request_headers(request.scope)  # one dict: Starlette's Headers scan per lookup
    if codec.requested_model is not None:
        ctx.requested_model = codec.requested_model[:200]
    try:
        body = await read_json(request, gw.settings.max_body_bytes, headers)
        if codec.requested_model is None and isinstance(body.get("model"), str):
            ctx.requested_model = body["model"][:200]
        ctx.principal = await principal_for(headers, gw.store, ctx.created_at)
        req = codec.decode_request(body, headers)
        prepared = await pipeline.prepare(ctx, req, headers)
        if req.stream:
            events = await pipeline.open_stream(ctx, prepared)
            return StreamResponse(
                codec.encode_stream(events, req),
                headers=_answer_headers(ctx),
                media_type=codec.stream_media_type,
                close=events.aclose,
            )
        resp = await pipeline.complete(ctx, prepared)
        pipeline.finish(ctx)
        return Response(
            orjson.dumps(codec.encode_response(resp, req.model)),
            media_type=JSON,
            headers=_answer_headers(ctx),
        )
    except GatewayError as err:
        return await refuse(pipeline, codec, ctx, err)
    except Exception as exc:
        return await refuse(pipeline, codec, ctx, internal_error(exc))


async def refuse(
    pipeline: ChatPipeline, codec: InboundCodec, ctx: RequestContext, err: GatewayError
) -> Response:
    """Settle what the request holds, log it, and answer the error in the caller's protocol."""
    if ctx.error is not err:
        await pipeline.fail(ctx, err)
    pipeline.finish(ctx)
    return error_response(codec, err, ctx)


def _header_value(text: str) -> str:
    # The model name is the client's text: a NUL or non-Latin-1 character in a header value
    # makes the server drop the connection, so anything unusual travels percent-encoded.
    return text if text.isascii() and text.isprintable() else quote(text, safe="/:@.-_~+ ")


def _answer_headers(ctx: RequestContext) -> dict[str, str]:
    headers = {"x-request-id": ctx.request_id, **ctx.rate_headers}
    if ctx.actual_model:
        headers["x-switchboard-model"] = _header_value(ctx.actual_model)
    if ctx.attempts > 1:
        headers["x-switchboard-attempts"] = str(ctx.attempts)
    if ctx.cache_hit:
        headers["x-switchboard-cache"] = "hit"
    return headers


async def openai_chat_completions(request: Request) -> Response:
    return await handle_chat(request, OPENAI, "/v1/chat/completions")


async def anthropic_messages(request: Request) -> Response:
    return await handle_chat(request, ANTHROPIC, "/v1/messages")
