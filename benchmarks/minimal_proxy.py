"""The Python ceiling: a minimal Starlette proxy forwarding to the upstream.

No parsing, no policy, no logging: it forwards the body and the Authorization header to
``UPSTREAM`` + the same path and relays the answer (streamed answers chunk by chunk). The gateway
is measured against it in the same run. ``UPSTREAM=http://127.0.0.1:PORT python minimal_proxy.py
PORT`` (uvicorn with uvloop and httptools, one worker, no access log). ``CLIENT=aiohttp``
(default) or ``CLIENT=reqwest`` (pyreqwest, the gateway's default transport) picks the upstream
client: the issue measures the gateway against both.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8080")
CLIENT = os.environ.get("CLIENT", "aiohttp")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    if CLIENT == "reqwest":
        from pyreqwest.client import ClientBuilder

        client = ClientBuilder().build()
        app.state.client = client
        yield
        await client.close()
        return
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        app.state.session = session
        yield


async def proxy_reqwest(request: Request) -> Response:
    body = await request.body()
    headers = {"content-type": "application/json"}
    if "authorization" in request.headers:
        headers["authorization"] = request.headers["authorization"]
    builder = request.app.state.client.post(UPSTREAM + request.url.path).headers(headers)
    builder = builder.body_bytes(body)
    if request.url.path.startswith("/sse/"):
        context = builder.streamed_read_buffer_limit(1).build_streamed()
        up = await context.__aenter__()

        async def relay() -> AsyncIterator[bytes]:
            try:
                while (chunk := await up.body_reader.read_chunk()) is not None:
                    yield bytes(chunk)
            finally:
                await context.__aexit__(None, None, None)

        ctype = up.headers.get("content-type") or "text/event-stream"
        return StreamingResponse(relay(), status_code=up.status, media_type=ctype)
    up = await builder.build().send()
    data = bytes(await up.bytes())
    ctype = up.headers.get("content-type") or "application/json"
    return Response(data, status_code=up.status, media_type=ctype)


async def proxy(request: Request) -> Response:
    if CLIENT == "reqwest":
        return await proxy_reqwest(request)
    body = await request.body()
    headers = {"content-type": "application/json"}
    if "authorization" in request.headers:
        headers["authorization"] = request.headers["authorization"]
    up = await request.app.state.session.post(
        UPSTREAM + request.url.path, data=body, headers=headers
    )
    ctype = up.headers.get("content-type", "application/json")
    if ctype.startswith("text/event-stream"):

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in up.content.iter_any():
                    yield chunk
            finally:
                up.release()

        return StreamingResponse(relay(), status_code=up.status, media_type=ctype)
    data = await up.read()
    up.release()
    return Response(data, status_code=up.status, media_type=ctype)


app = Starlette(routes=[Route("/{path:path}", proxy, methods=["POST"])], lifespan=lifespan)

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
