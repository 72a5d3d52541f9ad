"""The app factory: ``create_app(settings)`` builds the Starlette app; its lifespan owns every
dependency (database, bus, caches, provider clients, background writers) in one ``Gateway``.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from backend.config import Settings
from backend.data.db import close_db, init_db
from backend.gateway import Gateway
from backend.observability.metrics_http import InFlight, create_metrics, metrics_endpoint
from backend.observability.tracing import TraceRequests, Tracing
from backend.proxy.dispatch import GatewayApp
from backend.proxy.http_errors import RequestIdMiddleware, exception_handlers
from backend.proxy.routes import proxy_routes
from backend.security.http_limits import BodyDeadline
from backend.security.login_guard import build_login_guard
from backend.services import build_gateway, close_gateway

log = logging.getLogger("switchboard")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    holder: dict[str, Gateway] = {}
    tracing = Tracing(content=settings.trace_content) if settings.tracing else None
    metrics = create_metrics(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The GraphQL app (~16 MB of modules and schema) is built on its first request, its
        # import in a thread (backend/graphql/lazy.py): a gateway that only proxies never pays
        # for it.
        admin = _admin_factories()
        await init_db(settings.database_url)
        if tracing is not None:
            tracing.start()
        gateway = await build_gateway(settings, metrics)
        gateway.tracing = tracing
        holder["gateway"] = gateway
        app.state.gateway = gateway
        app.state.pipeline = gateway.pipeline
        login_guard = build_login_guard(
            settings, redis=gateway.redis, clock=lambda: gateway.clock().timestamp()
        )
        routes, graphql = admin
        _mount_admin(app, gateway, routes, functools.partial(graphql, login_guard=login_guard))
        # What start-up built (modules, schema, caches) lives as long as the process: frozen
        # out of the collector's sight, a full collection no longer walks it (that walk took
        # tens of milliseconds, the p99 of unqueued requests).
        gc.collect()
        gc.freeze()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            login_guard.close()
            await close_gateway(gateway)
            await close_db()
            metrics.close()

    async def healthz(request: Request) -> Response:
        if getattr(request.app.state, "ready", False):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "starting"}, status_code=503)

    def tick_breakers() -> None:
        if "gateway" in holder:
            holder["gateway"].router.health_registry.rows()  # due open -> half-open changes

    scrape = metrics_endpoint(metrics, settings.metrics_token, before=tick_breakers)
    proxy = proxy_routes()
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
        *proxy,
    ]
    # A stalled request body gets 408 instead of holding its request open forever.
    middleware = [
        # x-request-id on every answer, 404s and GraphQL included.
        Middleware(RequestIdMiddleware),
        Middleware(InFlight, metrics=metrics),
        Middleware(BodyDeadline, timeout_s=settings.body_timeout_s),
    ]
    if tracing is not None:
        # Outermost: the request span covers everything the gateway does with the request.
        middleware.insert(0, Middleware(TraceRequests, tracing=tracing))
    # The proxy routes are served ahead of the middleware stack and router (proxy/dispatch.py);
    # Starlette still holds them for what the fast path leaves to it (405s, tracing).
    app = GatewayApp(
        proxy=proxy,
        metrics=metrics,
        body_timeout_s=settings.body_timeout_s,
        dispatch_first=tracing is None,
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        # Unknown routes, wrong methods and crashes answer in the caller's protocol.
        exception_handlers=exception_handlers(),
    )
    app.state.ready = False
    return app


AdminFactories = tuple[Callable[[Gateway], list[BaseRoute]], Callable[..., Any]]


def _admin_factories() -> AdminFactories:
    from backend.exports.routes import admin_routes
    from backend.graphql.lazy import LazyGraphQL

    return admin_routes, LazyGraphQL


def _mount_admin(
    app: Starlette,
    gateway: Gateway,
    admin_routes: Callable[[Gateway], list[BaseRoute]],
    create_graphql_app: Callable[[Gateway], Any],
) -> None:
    """GraphQL and admin HTTP routes need the gateway, so they are added once it exists."""
    from backend.sso.routes import sso_routes

    graphql = create_graphql_app(gateway)
    app.router.routes.extend(admin_routes(gateway))
    # Single sign-on: /auth/oidc/login and /auth/oidc/callback (backend/sso).
    app.router.routes.extend(sso_routes(gateway))
    app.router.routes.append(Route("/graphql", graphql, methods=["GET", "POST"]))
    app.router.routes.append(Route("/graphql/assets/{name}", graphql.serve_ide_asset))
    app.router.routes.append(WebSocketRoute("/graphql", graphql))


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (used by ``switchboard serve``, workers included)."""
    return create_app(Settings.from_env())
