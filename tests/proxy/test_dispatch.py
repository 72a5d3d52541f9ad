"""The proxy routes' fast dispatch (``proxy/dispatch.py``): derived from the route list, and it
answers exactly as the Starlette stack it skips would (request id, errors in the caller's
protocol, the body deadline, the in-flight gauge), leaving 405/404/WebSockets to Starlette."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from backend.config import Settings
from backend.ir.errors import GatewayError
from backend.observability.metrics_http import create_metrics
from backend.proxy.dispatch import GatewayApp, ProxyTable
from backend.proxy.http_errors import exception_handlers
from backend.proxy.routes import proxy_routes


def test_every_proxy_route_is_dispatched_first() -> None:
    """A route added to ``proxy_routes()`` needs no second registration."""
    routes = proxy_routes()
    table = ProxyTable(routes)
    checked = 0
    for route in routes:
        if not isinstance(route, Route):
            continue
        path = route.path.replace("{name:path}", "gemini-2.0-flash:generateContent")
        path = path.replace("{response_id}", "resp_123")
        for method in route.methods or ():
            scope = {"type": "http", "path": path, "method": method}
            endpoint = table.find(scope)
            assert endpoint is not None, (method, route.path)
            checked += 1
    assert checked >= 6
    # WebSockets and unknown methods/paths are Starlette's (it answers 405 with Allow, 404).
    assert table.find({"type": "http", "path": "/v1/chat/completions", "method": "GET"}) is None
    assert table.find({"type": "http", "path": "/v1/nope", "method": "POST"}) is None
    ws = [r for r in routes if isinstance(r, WebSocketRoute)]
    for route in ws:
        assert table.find({"type": "http", "path": route.path, "method": "GET"}) is None


def test_path_parameters_reach_the_endpoint() -> None:
    async def endpoint(request: Request) -> Response:
        return Response(request.path_params["name"])

    table = ProxyTable([Route("/v1beta/models/{name:path}", endpoint, methods=["POST"])])
    scope = {"type": "http", "path": "/v1beta/models/a/b:generateContent", "method": "POST"}
    assert table.find(scope) is endpoint
    assert scope["path_params"] == {"name": "a/b:generateContent"}


# -- the app ---------------------------------------------------------------------------------------
async def echo(request: Request) -> Response:
    body = await request.body()
    gauge = request.app.state.metrics.in_flight
    return JSONResponse(
        {"len": len(body), "in_flight": gauge._value.get(), "app": request.app.state.name},
        headers={"x-request-id": "req_own"},
    )


async def boom(request: Request) -> Response:
    raise RuntimeError("secret detail that must not leak")


async def teapot(request: Request) -> Response:
    raise HTTPException(status_code=400, detail="bad thing")


async def reads_body(request: Request) -> Response:
    try:
        await request.body()
    except GatewayError as err:
        return JSONResponse({"error": {"message": err.message}}, status_code=err.status)
    return Response(b"{}")


async def no_id(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    metrics = create_metrics(Settings())
    proxy = [
        Route("/v1/chat/completions", echo, methods=["POST"]),
        Route("/v1/messages", boom, methods=["POST"]),
        Route("/v1/embeddings", teapot, methods=["POST"]),
        Route("/v1/models", no_id, methods=["GET"]),
        Route("/v1/responses", reads_body, methods=["POST"]),
    ]
    app = GatewayApp(
        proxy=proxy,
        metrics=metrics,
        body_timeout_s=0.3,
        routes=proxy,
        exception_handlers=exception_handlers(),
    )
    app.state.metrics = metrics
    app.state.name = "the app"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        yield c


async def test_fast_path_serves_the_endpoint(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/chat/completions", content=b"12345")
    assert resp.status_code == 200
    # request.app is the app (its state), the in-flight gauge counts the request.
    assert resp.json() == {"len": 5, "in_flight": 1.0, "app": "the app"}
    assert resp.headers["x-request-id"] == "req_own"  # the endpoint's own id is kept
    resp = await client.get("/v1/models")
    assert resp.headers["x-request-id"]  # an answer without one gets one


async def test_crash_answers_in_the_callers_protocol(client: httpx.AsyncClient) -> None:
    resp = await client.post("/v1/messages", content=b"{}")
    assert resp.status_code == 500
    body = resp.json()
    assert body["type"] == "error" and "secret" not in resp.text  # Anthropic's shape
    assert resp.headers["x-request-id"]
    resp = await client.post("/v1/embeddings", content=b"{}")
    assert resp.status_code == 400 and "bad thing" in resp.json()["error"]["message"]


async def test_wrong_method_and_unknown_path_are_starlettes(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/chat/completions")
    assert resp.status_code == 405 and resp.headers["allow"] == "POST"
    assert "use POST" in resp.json()["error"]["message"]
    resp = await client.post("/v1/nothing-here", content=b"{}")
    assert resp.status_code == 404 and resp.headers["x-request-id"]


async def test_a_stalled_body_gets_408_on_the_fast_path(client: httpx.AsyncClient) -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield b'{"model":'
        await asyncio.sleep(5)
        yield b"1}"

    # /v1/responses reads the body as the real endpoints do and answers the deadline's
    # GatewayError with its status; the deadline also closes the connection after the answer.
    resp = await client.post("/v1/responses", content=stalled())
    assert resp.status_code == 408
    assert "not received within 0.3 seconds" in resp.json()["error"]["message"]
    assert resp.headers["connection"] == "close"
