"""Answers the endpoints never see: unknown routes, wrong methods, crashes, and request ids.

``RequestIdMiddleware`` (pure ASGI) gives every HTTP answer an ``x-request-id``: endpoints that
made their own (the proxy's, whose id is also the log row's) keep it, every other answer
(``/v1/models``, ``/healthz``, GraphQL, a 404...) gets a fresh one.

``exception_handlers()`` answers Starlette's own 404/405 (and any other ``HTTPException``) and an
unhandled exception in the protocol the caller speaks, so an SDK shows a real message instead of
plain-text ``Not Found``. The rule, first match wins:

1. a path under ``/graphql``: GraphQL's ``{"errors": [{"message", "extensions": {"code"}}]}``;
2. a path under ``/v1beta/`` or a request carrying ``x-goog-api-key`` (the Gemini door's
   clients): Google's ``{"error": {"code", "message", "status"}}``;
3. a path under ``/v1/messages``, or a request carrying ``anthropic-version`` or ``x-api-key``
   (what the Anthropic SDK sends): Anthropic's ``{"type": "error", "error": {...}}``;
4. anything else: OpenAI's ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.ir.errors import GatewayError, InvalidRequest, NotFound
from backend.policies.context import new_request_id
from backend.protocols import anthropic_messages, openai_chat
from backend.protocols.gemini import answer as gemini_answer

JSON = "application/json"
_HEADER = b"x-request-id"
#: The caller's path is echoed back in the message: keep that bounded.
_MAX_PATH = 200
_ANSWER_STARTS = frozenset(
    ("http.response.start", "websocket.accept", "websocket.http.response.start")
)


class RequestIdMiddleware:
    """Adds ``x-request-id`` to every HTTP answer and WebSocket handshake that lacks one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            # A WebSocket's handshake answer (accept, or a denial) carries one too.
            if message["type"] in _ANSWER_STARTS:
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _HEADER for name, _ in headers):
                    headers.append((_HEADER, new_request_id().encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def protocol_of(path: str, headers: Mapping[str, str]) -> str:
    """``"graphql"``, ``"gemini"``, ``"anthropic"`` or ``"openai"``: see the module docstring."""
    if path == "/graphql" or path.startswith("/graphql/"):
        return "graphql"
    if path.startswith("/v1beta/") or "x-goog-api-key" in headers:
        return "gemini"
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return "anthropic"
    if "anthropic-version" in headers or "x-api-key" in headers:
        return "anthropic"
    return "openai"


def error_response(request: Request, err: GatewayError, graphql_code: str) -> Response:
    """``err`` in the caller's protocol, with its own request id; its reason logged once per
    cause like every refusal (the gateway is absent only before startup finished)."""
    request_id = new_request_id()
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is not None:
        gateway.request_log.refused(err, request_id=request_id, endpoint=_shown_path(request))
    protocol = protocol_of(request.url.path, request.headers)
    body: dict[str, Any]
    if protocol == "graphql":
        status = err.status
        body = {"errors": [{"message": err.message, "extensions": {"code": graphql_code}}]}
    elif protocol == "gemini":
        status, body = gemini_answer.encode_error(err)
    elif protocol == "anthropic":
        status, body = anthropic_messages.encode_error(err)
    else:
        status, body = openai_chat.encode_error(err)
    headers = {**err.headers, "x-request-id": request_id}
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def _routes_under_v1(request: Request) -> str:
    served = [
        f"{method} {route.path}"
        for route in request.app.router.routes
        if isinstance(route, Route) and route.path.startswith("/v1/")
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]
    return ", ".join(served)


def _shown_path(request: Request) -> str:
    path = request.url.path
    return path if len(path) <= _MAX_PATH else path[:_MAX_PATH] + "..."


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    where = f"{request.method} {_shown_path(request)}"
    err: GatewayError
    if status == 404:
        message = f"Unknown route: {where}."
        if request.url.path.startswith("/v1/"):
            message += f" This gateway serves {_routes_under_v1(request)}."
        err = NotFound(message, code="unknown_route", headers=headers)
        code = "NOT_FOUND"
    elif status == 405:
        allowed = _methods(headers.get("Allow") or headers.get("allow") or "")
        message = f"Method {request.method} is not allowed on {_shown_path(request)}"
        message += f"; use {allowed}." if allowed else "."
        err = InvalidRequest(message, status=405, code="method_not_allowed", headers=headers)
        code = "METHOD_NOT_ALLOWED"
    elif 400 <= status < 500:
        err = InvalidRequest(f"{where}: {exc.detail}", status=status, headers=headers)
        code = "BAD_REQUEST"
    else:
        err = GatewayError(f"{where}: {exc.detail}", status=status, headers=headers)
        code = "INTERNAL_SERVER_ERROR"
    return error_response(request, err, code)


def _methods(allow: str) -> str:
    # HEAD comes with every GET route: naming it would only distract.
    methods = {m.strip() for m in allow.split(",") if m.strip()}
    if "GET" in methods:
        methods.discard("HEAD")
    return ", ".join(sorted(methods))


async def unhandled_exception(request: Request, exc: Exception) -> Response:
    # Starlette re-raises ``exc`` after this answer, so the server logs its traceback; the
    # client's message never carries exception text (it could hold request data or secrets).
    err = GatewayError("Internal gateway error.", status=500)
    return error_response(request, err, "INTERNAL_SERVER_ERROR")


def exception_handlers() -> dict[Any, Any]:
    """For ``Starlette(exception_handlers=...)``."""
    return {HTTPException: http_exception, Exception: unhandled_exception}
