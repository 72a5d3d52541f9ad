"""The proxy routes, dispatched before Starlette's middleware stack and router.

Every request through Starlette crosses its error middleware, the exception middleware, four
pure-ASGI middlewares of ours, the router's linear match over every route (admin and GraphQL
included) and the endpoint wrapper: about 14 % of a proxied request's CPU in the last profile,
for an answer the endpoint builds itself. ``GatewayApp`` is a ``Starlette`` whose ``__call__``
looks the request up in a table built from ``proxy.routes.proxy_routes()`` first, so a route
added there is served here with no second registration:

- a path without parameters is one dict lookup; a path with parameters (``/v1beta/models/
  {name:path}``) is matched by the route's own compiled pattern;
- a match runs the endpoint with exactly what the middlewares gave it: the in-flight gauge
  (``InFlight``), the body deadline (``BodyDeadline``'s ``BodyClock``), an ``x-request-id`` on
  an answer that lacks one (``RequestIdMiddleware``), and an exception turned into the same
  answer in the caller's protocol (``http_errors.exception_handlers``), all in one frame;
- anything else (a wrong method, which Starlette answers 405 with ``Allow``; an unknown path;
  WebSockets; the admin side; lifespan) goes through Starlette unchanged, as before. With
  tracing on, everything does: the request span is a middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Message, Receive, Scope, Send

from backend.observability.metrics import Metrics
from backend.policies.context import new_request_id
from backend.proxy.http_errors import http_exception, unhandled_exception
from backend.security.http_limits import BodyClock

log = logging.getLogger("switchboard.proxy")

Endpoint = Callable[[Request], Awaitable[Response]]
_HEADER = b"x-request-id"


class ProxyTable:
    """Method + path -> endpoint (with path parameters), from a list of Starlette routes."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.exact: dict[str, dict[str, Endpoint]] = {}
        self.patterns: list[Route] = []
        for route in routes:
            if not isinstance(route, Route) or not route.methods:
                continue  # WebSocket routes stay with Starlette
            if route.param_convertors:
                self.patterns.append(route)
                continue
            by_method = self.exact.setdefault(route.path, {})
            for method in route.methods:
                by_method.setdefault(method, route.endpoint)

    def find(self, scope: Scope) -> Endpoint | None:
        """The endpoint for ``scope`` (path parameters set in it), or None to let Starlette do it.

        The first full match wins, as in Starlette; a path served only with other methods is
        left to Starlette, which answers 405 with ``Allow``.
        """
        by_method = self.exact.get(scope["path"])
        if by_method is not None:
            return by_method.get(scope["method"])
        for route in self.patterns:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                return route.endpoint  # type: ignore[no-any-return]
        return None


class GatewayApp(Starlette):
    """Starlette with the proxy routes served first (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        proxy: Sequence[BaseRoute] = (),
        metrics: Metrics | None = None,
        body_timeout_s: float = 60.0,
        dispatch_first: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._table = ProxyTable(proxy) if dispatch_first else ProxyTable(())
        self._gauge = metrics.in_flight if metrics is not None else None
        self._body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self._table.find(scope)
            if endpoint is not None:
                await self._serve(scope, receive, send, endpoint)
                return
        await super().__call__(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, endpoint: Endpoint) -> None:
        """The endpoint with what the skipped middlewares did, in one frame and one wrapper
        each for receive and send (every await level is paid again on each resumption)."""
        scope["app"] = self
        # BodyDeadline's clock: the body must arrive within the limit (408 after that).
        clock = BodyClock(receive, self._body_timeout_s)
        started = False

        async def answer_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.get("headers") or []
                # RequestIdMiddleware: an answer without an x-request-id gets one.
                if not any(name.lower() == _HEADER for name, _ in headers):
                    headers = [*headers, (_HEADER, new_request_id().encode())]
                    message = {**message, "headers": headers}
                if clock.timed_out:
                    message = clock.closing(message)
            await send(message)

        request = Request(scope, clock.receive, answer_send)
        gauge = self._gauge
        if gauge is not None:
            gauge.inc()
        try:
            response = await endpoint(request)
            await response(scope, clock.receive, answer_send)
        except Exception as exc:
            if started:
                raise  # the answer is on its way: the server closes the connection
            if isinstance(exc, HTTPException):
                answer = await http_exception(request, exc)
            else:
                log.error("unhandled error on %s", scope["path"], exc_info=exc)
                answer = await unhandled_exception(request, exc)
            await answer(scope, clock.receive, answer_send)
        finally:
            if gauge is not None:
                gauge.dec()
