"""Stored responses read back: ``GET /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``
and ``DELETE /v1/responses/{id}``.

The records of ``backend.responses_store``, in OpenAI's shapes, for the key's own
organization only: another organization's id is a 404, word for word what an unknown id gets.
Reasoning items' ``encrypted_content`` comes back only with ``include=reasoning.encrypted_content``
(``include[]=`` too, as the SDKs send arrays), as at OpenAI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from backend.gateway import Gateway
from backend.ir.errors import GatewayError, InvalidRequest
from backend.policies.context import RequestContext
from backend.proxy.auth import principal_for
from backend.proxy.chat import JSON, internal_error, refusal
from backend.proxy.codecs import OPENAI
from backend.responses_store.pages import page, parse_page_query
from backend.responses_store.records import (
    ENCRYPTED_REASONING,
    response_view,
    without_encrypted_reasoning,
)
from backend.responses_store.store import ResponseStore
from backend.state.snapshot import Principal

Handler = Callable[[Gateway, ResponseStore, Principal, Request, str], Awaitable[object]]


async def _serve(request: Request, endpoint: str, handler: Handler) -> Response:
    gw: Gateway = request.app.state.gateway
    ctx = RequestContext(endpoint=endpoint, created_at=gw.clock())
    try:
        principal = await principal_for(request.headers, gw.store, ctx.created_at)
        ctx.principal = principal
        store: ResponseStore | None = gw.responses_store
        if store is None:
            raise InvalidRequest("Stored responses are not available on this gateway.", status=404)
        response_id = request.path_params["response_id"]
        body = await handler(gw, store, principal, request, response_id)
    except GatewayError as err:
        return refusal(gw, OPENAI, err, ctx)
    except Exception as exc:
        return refusal(gw, OPENAI, internal_error(exc), ctx)
    return Response(orjson.dumps(body), media_type=JSON, headers={"x-request-id": ctx.request_id})


def _include(request: Request) -> set[str]:
    params = request.query_params
    values = [*params.getlist("include"), *params.getlist("include[]")]
    return {v for value in values for v in value.split(",") if v}


async def _get(
    gw: Gateway, store: ResponseStore, principal: Principal, request: Request, response_id: str
) -> object:
    if request.query_params.get("stream", "false").lower() not in ("false", "0", ""):
        raise InvalidRequest(
            "Streaming a stored response again is not supported by this gateway: "
            "retrieve it without 'stream'.",
            param="stream",
        )
    rec = await store.get(principal, response_id)
    return response_view(rec, _include(request))


async def _input_items(
    gw: Gateway, store: ResponseStore, principal: Principal, request: Request, response_id: str
) -> object:
    query = parse_page_query(request.query_params)
    items = await store.input_items(principal, response_id)
    if ENCRYPTED_REASONING not in _include(request):
        items = [without_encrypted_reasoning(i) for i in items]
    return page(items, query)


async def _delete(
    gw: Gateway, store: ResponseStore, principal: Principal, request: Request, response_id: str
) -> object:
    await store.delete(principal, response_id)
    return {"id": response_id, "object": "response", "deleted": True}


async def retrieve_response(request: Request) -> Response:
    return await _serve(request, "/v1/responses/{id}", _get)


async def list_input_items(request: Request) -> Response:
    return await _serve(request, "/v1/responses/{id}/input_items", _input_items)


async def delete_response(request: Request) -> Response:
    return await _serve(request, "/v1/responses/{id}", _delete)
