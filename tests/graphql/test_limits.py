"""Size limits on /graphql: the request body (HTTP and WebSocket messages) and the document.

A body over ``graphql_max_body_bytes`` is refused with 413 and a GraphQL-style error before it
is decoded or parsed, whether it declares its length or streams it chunked; a WebSocket message
over the same limit closes the socket with 1009; a document over ``MAX_DOCUMENT_CHARS`` that
fits in the body limit is refused by the parser before lexing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.graphql.limits import MAX_DOCUMENT_CHARS
from tests.graphql.harness import Env, World, data, gql
from tests.graphql.test_subscriptions import recv, send, serve


def _huge_query(size: int) -> bytes:
    # A valid document padded with whitespace: cheap to build, slow to lex.
    return orjson.dumps({"query": "{ me { email } }" + " " * size})


def _assert_too_large(status: int, body: dict[str, object], limit: int) -> None:
    assert status == 413
    assert body == {
        "errors": [
            {
                "message": f"GraphQL request body exceeds the limit of {limit} bytes.",
                "extensions": {"code": "PAYLOAD_TOO_LARGE"},
            }
        ]
    }


async def test_oversized_body_is_refused_before_parsing(env: Env, world: World) -> None:
    limit = env.gw.settings.graphql_max_body_bytes
    raw = _huge_query(limit + 1)
    resp = await env.client.post(
        "/graphql", content=raw, headers={"content-type": "application/json"}
    )
    _assert_too_large(resp.status_code, resp.json(), limit)

    async def chunked() -> AsyncIterator[bytes]:
        # No content-length: the limit is enforced while the body streams in.
        for i in range(0, len(raw), 64 * 1024):
            yield raw[i : i + 64 * 1024]

    resp = await env.client.post(
        "/graphql", content=chunked(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in resp.request.headers
    _assert_too_large(resp.status_code, resp.json(), limit)

    # A body within the limit is served as before.
    me = await gql(env, "{ me { email } }", token=world.token("super"))
    assert data(me)["me"]["email"] == "super@example.com"


async def test_long_document_is_refused_by_the_parser(env: Env, world: World) -> None:
    # Under the body limit, over the document limit: refused without being lexed.
    resp = await env.client.post(
        "/graphql",
        json={"query": "{ me { email } }" + " " * MAX_DOCUMENT_CHARS},
        headers={"authorization": f"Bearer {world.tokens['super']}"},
    )
    body = resp.json()
    assert (resp.status_code, body.get("data")) == (200, None)
    assert body["errors"][0]["message"] == (
        f"Syntax Error: Source contains more than {MAX_DOCUMENT_CHARS} code points. "
        "Parsing aborted."
    )


async def test_oversized_websocket_message_closes_the_socket(env: Env, world: World) -> None:
    limit = env.gw.settings.graphql_max_body_bytes
    async with serve(env.app) as url:
        ws = await connect(url, subprotocols=["graphql-transport-ws"], max_size=None)  # type: ignore[list-item]
        await send(ws, {"type": "connection_init", "payload": {"token": world.token("super")}})
        assert (await recv(ws))["type"] == "connection_ack"
        query = "subscription { gatewayLogs { requestId } }" + " " * (limit + 1)
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": query}})
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws, timeout=30)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            1009,
            f"message exceeds {limit} bytes",
        )
