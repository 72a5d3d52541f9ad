"""The Gemini door: Google's Generative Language REST API, served over any provider.

``POST /v1beta/models/{model}:generateContent`` | ``:streamGenerateContent`` (``alt=sse``, or a
JSON array without it) | ``:countTokens`` | ``:embedContent`` | ``:batchEmbedContents``,
``GET /v1beta/models`` and ``GET /v1beta/models/{model}``; the same under ``/v1`` (google-genai
3.x calls ``/v1`` by default; ``GET /v1/models`` answers in Gemini's format when the caller sends
a Gemini key, see ``proxy.models``).

``{model}`` is any gateway model name, ``/`` included (``anthropic/claude-sonnet-4-5``, an alias,
``agent/coder:heavy``): the path is split on its last ``:``. The key comes as ``x-goog-api-key``
or ``?key=``; a query key is moved into the header before anything reads the request, and no
log holds a query string (request lines and error reports log the endpoint template
``/v1beta/models/{model}:generateContent``).

Chat methods run the one ``ChatPipeline`` (``proxy.chat.handle_chat``), counts and embeddings
the shared ``proxy.embeddings`` flows: no policy is specific to this door. Errors are Google's
``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from backend.gateway import Gateway
from backend.ir.errors import GatewayError, InvalidRequest, NotFound
from backend.policies.context import RequestContext
from backend.protocols.gemini import door_misc, inbound
from backend.proxy import http_errors
from backend.proxy.auth import presented_key, principal_for
from backend.proxy.chat import JSON, handle_chat, refusal
from backend.proxy.codecs import GEMINI, gemini_codec
from backend.proxy.embeddings import serve_count, serve_embeddings
from backend.proxy.models import list_models as openai_anthropic_models
from backend.proxy.models import visible_models

_CHAT = ("generateContent", "streamGenerateContent")
_EMBED = ("embedContent", "batchEmbedContents")
METHODS = (*_CHAT, "countTokens", *_EMBED)
#: Every ``endpoint`` this door logs (templates: no model, no query string), for log filters.
LOGGED_ENDPOINTS: tuple[str, ...] = (
    *(
        f"/{version}/models/{{model}}{suffix}"
        for version in ("v1beta", "v1")
        for suffix in ("", *(f":{m}" for m in METHODS))
    ),
    "/v1beta/models",
)
#: ``GET models``: page size when the client names none, and the most it may ask for.
_PAGE, _MAX_PAGE = 50, 1000


def gemini_flavoured(request: Request) -> bool:
    """A request that speaks Gemini: its key header, or a ``key`` query parameter."""
    return "x-goog-api-key" in request.headers or "key" in request.query_params


def use_query_key(request: Request) -> None:
    """``?key=`` becomes ``x-goog-api-key`` (unless a key header is there) before the request's
    headers are first read; the query string itself is never logged."""
    key = request.query_params.get("key")
    if key is None or presented_key(request.headers) is not None:
        return
    request.scope["headers"] = [*request.scope["headers"], (b"x-goog-api-key", key.encode())]
    request.__dict__.pop("_headers", None)


async def model_call(request: Request) -> Response:
    """``/{version}/models/{name}``: a method call (POST) or one model (GET)."""
    use_query_key(request)
    version = request.url.path.split("/", 2)[1]
    name: str = request.path_params["name"]
    if request.method == "GET":
        if version == "v1" and not gemini_flavoured(request):
            return await _not_gemini(request)
        return await get_model(request, version, name)
    model, sep, method = name.rpartition(":")
    template = f"/{version}/models/{{model}}:{method}"
    if not sep or not model or method not in METHODS:
        err = NotFound(
            f"Method {name.rpartition(':')[2] if sep else '(none)'!r} of "
            f"'models/{name}' is not served here: this gateway serves "
            f"{', '.join(METHODS)} under /{version}/models/{{model}}.",
            code="unknown_method",
        )
        return _refused(request, err, f"/{version}/models/{{model}}")
    model = model.removeprefix("models/")
    if method in _CHAT:
        stream = method == "streamGenerateContent"
        sse = request.query_params.get("alt") == "sse"
        return await handle_chat(request, gemini_codec(model, stream=stream, sse=sse), template)
    if method == "countTokens":
        return await serve_count(
            request,
            GEMINI,
            template,
            lambda body: inbound.decode_count_tokens_request(body, model),
            door_misc.encode_count_tokens_response,
        )
    batch = method == "batchEmbedContents"
    return await serve_embeddings(
        request,
        GEMINI,
        template,
        lambda body: door_misc.decode_embed_request(body, model, batch=batch),
        lambda _req, resp: door_misc.encode_embed_response(resp, batch=batch),
    )


async def v1_models(request: Request) -> Response:
    """``GET /v1/models``: Gemini's listing for a Gemini caller (google-genai 3.x lists there),
    else the OpenAI / Anthropic one."""
    if gemini_flavoured(request):
        return await list_models(request)
    return await openai_anthropic_models(request)


async def list_models(request: Request) -> Response:
    """``GET /{version}/models``: the models this key may use, as Gemini ``Model`` resources,
    paged with ``pageSize`` / ``pageToken``."""
    use_query_key(request)
    version = request.url.path.split("/", 2)[1]
    gw: Gateway = request.app.state.gateway
    ctx = RequestContext(endpoint=f"/{version}/models", created_at=gw.clock())
    try:
        principal = await principal_for(request.headers, gw.store, ctx.created_at)
        size = _int_param(request, "pageSize", _PAGE)
        start = _int_param(request, "pageToken", 0)
    except GatewayError as err:
        return refusal(gw, GEMINI, err, ctx)
    names = visible_models(gw, principal.org_id)
    page = names[start : start + min(max(size, 1), _MAX_PAGE)]
    body: dict[str, object] = {
        "models": [door_misc.model_resource(n, embedding=_embedding(n)) for n in page]
    }
    if start + len(page) < len(names):
        body["nextPageToken"] = str(start + len(page))
    return _json(body, ctx)


async def get_model(request: Request, version: str, name: str) -> Response:
    gw: Gateway = request.app.state.gateway
    ctx = RequestContext(endpoint=f"/{version}/models/{{model}}", created_at=gw.clock())
    try:
        principal = await principal_for(request.headers, gw.store, ctx.created_at)
    except GatewayError as err:
        return refusal(gw, GEMINI, err, ctx)
    model = name.removeprefix("models/")
    if model not in visible_models(gw, principal.org_id):
        unknown = NotFound(f"models/{model} is not found for this key.", code="model_not_found")
        return refusal(gw, GEMINI, unknown, ctx)
    return _json(door_misc.model_resource(model, embedding=_embedding(model)), ctx)


async def _not_gemini(request: Request) -> Response:
    """``GET /v1/models/{id}`` from an OpenAI or Anthropic client: its key is checked like on
    every proxy route, then the path is unknown to it (answered in its own protocol)."""
    gw: Gateway = request.app.state.gateway
    try:
        await principal_for(request.headers, gw.store, gw.clock())
    except GatewayError as err:
        return http_errors.error_response(request, err, "UNAUTHENTICATED")
    raise HTTPException(404)


def _refused(request: Request, err: GatewayError, endpoint: str) -> Response:
    gw: Gateway = request.app.state.gateway
    return refusal(gw, GEMINI, err, RequestContext(endpoint=endpoint, created_at=gw.clock()))


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise InvalidRequest(
            f"Invalid value at '{name}': expected a non-negative integer.", param=name
        )
    return int(raw)


def _embedding(name: str) -> bool:
    return "embed" in name.rsplit("/", 1)[-1]


def _json(body: object, ctx: RequestContext) -> Response:
    return Response(orjson.dumps(body), media_type=JSON, headers={"x-request-id": ctx.request_id})
