"""HTTP side of the metrics: the ``GET /metrics`` endpoint (optionally behind a bearer token) and
the pure-ASGI middleware counting proxy requests in flight.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.config import Settings
from backend.observability.metrics import LabelLimits, Metrics


def create_metrics(settings: Settings) -> Metrics:
    """The app's metrics in a registry of its own (several apps in one process never clash)."""
    limits = LabelLimits(
        organizations=settings.metrics_max_organizations, models=settings.metrics_max_models
    )
    return Metrics(
        CollectorRegistry(), limits=limits, multiprocess_dir=settings.metrics_multiproc_dir
    )


def metrics_endpoint(
    metrics: Metrics, token: str | None, before: Callable[[], object] | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics``; with ``token`` set, only for ``Authorization: Bearer <token>``.

    ``before`` runs first on every scrape (it brings time-driven states such as a breaker's
    open -> half-open up to date).
    """
    expected = f"Bearer {token}".encode() if token else None

    async def endpoint(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                return JSONResponse(
                    {
                        "error": {
                            "type": "authentication_error",
                            "message": "/metrics needs 'Authorization: Bearer <token>' with "
                            "the token set in SWITCHBOARD_METRICS_TOKEN.",
                        }
                    },
                    status_code=401,
                    headers={"www-authenticate": 'Bearer realm="metrics"'},
                )
        if before is not None:
            before()
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return endpoint


class InFlight:
    """Counts requests under ``prefix`` (the proxy's paths: ``/v1/`` and the Gemini door's
    ``/v1beta/``) from their start until their last byte (streams too)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        prefix: str | tuple[str, ...] = ("/v1/", "/v1beta/"),
    ) -> None:
        self.app = app
        self._gauge = metrics.in_flight
        self._prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._prefix):
            await self.app(scope, receive, send)
            return
        self._gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self._gauge.dec()
