"""Embeddings and token counts, for every door: ``POST /v1/embeddings`` (OpenAI),
``POST /v1/messages/count_tokens`` (Anthropic) and the Gemini door's ``embedContent``,
``batchEmbedContents`` and ``countTokens`` (``proxy.gemini``).

``serve_embeddings`` and ``serve_count`` hold the policies (keys, limits, routing, DLP, budget,
logs); a door gives its decode and encode functions and its error codec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response

from backend.gateway import Gateway
from backend.ir.chat import ChatRequest, EmbeddingRequest, EmbeddingResponse, Usage
from backend.ir.errors import GatewayError
from backend.policies import budget as budget_policy
from backend.policies import dlp as dlp_policy
from backend.policies import limits as limits_policy
from backend.policies import tags as tags_policy
from backend.policies.calls import traced
from backend.policies.context import RequestContext
from backend.policies.pipeline import ChatPipeline
from backend.protocols import anthropic_messages, openai_chat
from backend.protocols.gemini.door_misc import embedding_refusal
from backend.proxy.auth import principal_for
from backend.proxy.body import read_json
from backend.proxy.chat import JSON, internal_error, refusal, refuse
from backend.proxy.codecs import ANTHROPIC, OPENAI, InboundCodec

DecodeEmbedding = Callable[[Any], EmbeddingRequest]
EncodeEmbedding = Callable[[EmbeddingRequest, EmbeddingResponse], dict[str, Any]]


async def embeddings(request: Request) -> Response:
    return await serve_embeddings(
        request,
        OPENAI,
        "/v1/embeddings",
        openai_chat.decode_embedding_request,
        lambda req, resp: openai_chat.encode_embedding_response(
            resp, req.model, encoding_format=req.encoding_format
        ),
    )


async def serve_embeddings(
    request: Request,
    codec: InboundCodec,
    endpoint: str,
    decode: DecodeEmbedding,
    encode: EncodeEmbedding,
) -> Response:
    gw: Gateway = request.app.state.gateway
    pipeline: ChatPipeline = request.app.state.pipeline
    ctx = RequestContext(endpoint=endpoint, created_at=gw.clock())
    try:
        body = await read_json(request, gw.settings.max_body_bytes)
        ctx.principal = await principal_for(request.headers, gw.store, ctx.created_at)
        req = decode(body)
        ctx.requested_model = req.model
        ctx.tags = tags_policy.parse(None, request.headers.get(tags_policy.HEADER))
        resolution = gw.router.resolve(req.model, ctx.principal, gw.store.routing, tier=None)
        model = limits_policy.allowed_primary(ctx.principal, resolution)
        await limits_policy.admit_tokens(ctx, gw, budget_policy.embedding_tokens(req))
        req = await dlp_policy.redact_embedding(ctx, gw, req)
        ref = gw.router.parse(model)
        ctx.actual_model, ctx.provider, ctx.attempts = model, ref.provider, 1
        provider = traced(ctx, gw.providers.get(ref.provider))
        refused = embedding_refusal(req, provider.config.kind, ref.provider, ref.model)
        if refused is not None:
            raise refused
        await budget_policy.reserve_embedding(ctx, gw, req, model)
        try:
            resp = await provider.embed(req, ref.model)
        finally:
            pipeline.calls.record_pool_calls(ctx, model, 0)
        ctx.usage = Usage(input_tokens=resp.usage.input_tokens)
        await budget_policy.settle(ctx, gw)
        ctx.mark_first_byte()
        pipeline.finish(ctx)
        return Response(
            orjson.dumps(encode(req, resp)),
            media_type=JSON,
            headers={"x-request-id": ctx.request_id, **ctx.rate_headers},
        )
    except GatewayError as err:
        return await refuse(pipeline, codec, ctx, err)
    except Exception as exc:
        return await refuse(pipeline, codec, ctx, internal_error(exc))
    except BaseException:
        # Cancelled (the client is gone, the server is stopping): the reservation must not
        # hold the caller's cap until its TTL. Shielded: in a cancelled scope every await is
        # cancelled again, and a Redis budget really awaits. After a settle this is a no-op.
        with anyio.CancelScope(shield=True):
            await budget_policy.release(ctx, gw)
        raise


async def count_tokens(request: Request) -> Response:
    """Anthropic's count endpoint, answered by the provider (an estimate where it cannot count)."""
    return await serve_count(
        request,
        ANTHROPIC,
        "/v1/messages/count_tokens",
        lambda body: anthropic_messages.decode_count_tokens_request(body, request.headers),
        lambda n: {"input_tokens": n},
    )


async def serve_count(
    request: Request,
    codec: InboundCodec,
    endpoint: str,
    decode: Callable[[Any], ChatRequest],
    encode: Callable[[int], dict[str, Any]],
) -> Response:
    gw: Gateway = request.app.state.gateway
    ctx = RequestContext(endpoint=endpoint, created_at=gw.clock())
    try:
        body = await read_json(request, gw.settings.max_body_bytes)
        ctx.principal = await principal_for(request.headers, gw.store, ctx.created_at)
        req = decode(body)
        resolution = gw.router.resolve(req.model, ctx.principal, gw.store.routing, tier=None)
        req = await dlp_policy.redact(ctx, gw, req)
        ref = gw.router.parse(resolution.primary)
        provider = gw.providers.get(ref.provider)
        # Anthropic and Gemini count upstream; OpenAI-format and Ollama providers estimate.
        n = await provider.count_tokens(req, ref.model)
        return Response(
            orjson.dumps(encode(n)), media_type=JSON, headers={"x-request-id": ctx.request_id}
        )
    except GatewayError as err:
        return refusal(gw, codec, err, ctx)
    except Exception as exc:
        return refusal(gw, codec, internal_error(exc), ctx)
