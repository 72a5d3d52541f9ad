"""The dashboard's only client of the gateway: GraphQL over HTTP, subscriptions over WebSocket.

The dashboard never imports ``backend``; it speaks to the gateway exactly as an automation script
would. Queries and mutations are HTTP POSTs to ``/graphql``; subscriptions use the
``graphql-transport-ws`` protocol; the CSV export is a plain authenticated GET. Every failure is
turned into an :class:`ApiError` whose message is fit to show to a person (never a trace).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
import orjson
import websockets
from websockets.asyncio.client import connect

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 15.0
# Codes the gateway puts in ``extensions.code`` when the session is missing or expired.
AUTH_CODES = frozenset({"UNAUTHENTICATED", "UNAUTHORIZED", "INVALID_TOKEN", "SESSION_EXPIRED"})
_AUTH_WORDS = ("not authenticated", "authentication required", "invalid token", "expired")


class ApiError(Exception):
    """A failure worth showing as-is: ``str(error)`` is plain words.

    ``auth`` is true when the session is missing or expired (the caller should log in again);
    ``forbidden`` when the signed-in user may not do this.
    """

    def __init__(self, message: str, *, code: str = "", auth: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.auth = auth

    @property
    def forbidden(self) -> bool:
        return self.code in {"FORBIDDEN", "PERMISSION_DENIED"} or "not allowed" in self.message


def gateway_url() -> str:
    return os.environ.get("SWITCHBOARD_GATEWAY_URL", DEFAULT_GATEWAY_URL).rstrip("/")


def graphql_http_url() -> str:
    return f"{gateway_url()}/graphql"


def graphql_ws_url() -> str:
    base = gateway_url()
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/graphql"
    return "ws://" + base.removeprefix("http://") + "/graphql"


def _headers(token: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _clean_message(raw: str) -> str:
    # A message is shown next to a form: keep its first line, never a stack.
    first = raw.strip().splitlines()[0] if raw.strip() else "The gateway refused the request."
    if first.startswith("Traceback"):
        return "The gateway could not complete the request."
    first = first[:300]
    # The gateway's messages are lowercase fragments ("a user with this email already exists").
    first = first[:1].upper() + first[1:]
    return first if first.endswith((".", "!", "?")) else first + "."


def error_from_graphql(errors: list[Mapping[str, Any]]) -> ApiError:
    """One :class:`ApiError` for a GraphQL ``errors`` list (messages joined, auth detected)."""
    messages: list[str] = []
    code = ""
    for err in errors:
        message = _clean_message(str(err.get("message") or ""))
        if message not in messages:
            messages.append(message)
        ext = err.get("extensions") or {}
        if isinstance(ext, Mapping) and not code:
            code = str(ext.get("code") or "")
    text = " ".join(messages) or "The gateway refused the request."
    lowered = text.lower()
    auth = code in AUTH_CODES or any(word in lowered for word in _AUTH_WORDS)
    return ApiError(text, code=code, auth=auth)


def _unreachable(exc: Exception) -> ApiError:
    return ApiError(
        f"The gateway at {gateway_url()} is not reachable ({type(exc).__name__}). Is it running?",
        code="UNREACHABLE",
    )


async def execute(
    query: str, variables: Mapping[str, Any] | None = None, *, token: str | None = None
) -> dict[str, Any]:
    """Run one query or mutation; returns ``data`` or raises :class:`ApiError`."""
    body = orjson.dumps({"query": query, "variables": dict(variables or {})})
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            response = await client.post(graphql_http_url(), content=body, headers=_headers(token))
    except httpx.HTTPError as exc:
        raise _unreachable(exc) from exc
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        if response.status_code in (401, 403):
            raise ApiError("Your session has expired. Please sign in again.", auth=True)
        raise ApiError(f"The gateway answered HTTP {response.status_code} without a result.")
    errors = payload.get("errors")
    if errors:
        raise error_from_graphql(errors)
    if response.status_code in (401, 403):
        raise ApiError("Your session has expired. Please sign in again.", auth=True)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ApiError("The gateway returned no data.")
    return data


async def subscribe(
    query: str,
    variables: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    ack_timeout: float = 10.0,
    on_ack: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield each ``data`` of a subscription (graphql-transport-ws) until the server completes it.

    The token goes in the ``connection_init`` payload, as the gateway expects for WebSockets;
    ``on_ack`` runs once the gateway accepted the connection and the subscription was sent.
    """
    ids = itertools.count(1)
    init: dict[str, Any] = {}
    if token:
        init = {"Authorization": f"Bearer {token}", "authorization": f"Bearer {token}"}
    try:
        async with connect(
            graphql_ws_url(),
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
            open_timeout=ack_timeout,
            max_size=2**22,
        ) as ws:
            await ws.send(orjson.dumps({"type": "connection_init", "payload": init}).decode())
            await _await_ack(ws, ack_timeout)
            sub_id = str(next(ids))
            message = {
                "id": sub_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": dict(variables or {})},
            }
            await ws.send(orjson.dumps(message).decode())
            if on_ack is not None:
                await on_ack()
            try:
                async for raw in ws:
                    frame = orjson.loads(raw)
                    kind = frame.get("type")
                    if kind == "ping":
                        await ws.send('{"type":"pong"}')
                    elif kind == "next" and frame.get("id") == sub_id:
                        payload = frame.get("payload") or {}
                        if payload.get("errors"):
                            raise error_from_graphql(payload["errors"])
                        yield payload.get("data") or {}
                    elif kind == "error" and frame.get("id") == sub_id:
                        raise error_from_graphql(frame.get("payload") or [])
                    elif kind == "complete" and frame.get("id") == sub_id:
                        return
            finally:
                with contextlib.suppress(Exception):
                    await ws.send(orjson.dumps({"id": sub_id, "type": "complete"}).decode())
    except ApiError:
        raise
    except websockets.exceptions.InvalidStatus as exc:
        code = exc.response.status_code
        if code in (401, 403):
            raise ApiError("Your session has expired. Please sign in again.", auth=True) from exc
        raise ApiError(f"The gateway refused the live connection (HTTP {code}).") from exc
    except websockets.exceptions.ConnectionClosed as exc:
        if exc.rcvd is not None and exc.rcvd.code == 4403:
            raise ApiError("You are not allowed to watch this.", code="FORBIDDEN") from exc
        if exc.rcvd is not None and exc.rcvd.code in (4401, 4400):
            raise ApiError("Your session has expired. Please sign in again.", auth=True) from exc
        raise ApiError("The live connection to the gateway closed.") from exc
    except (OSError, TimeoutError) as exc:
        raise _unreachable(exc) from exc


async def _await_ack(ws: Any, timeout: float) -> None:
    import asyncio

    async def wait() -> None:
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame.get("type") == "connection_ack":
                return
            if frame.get("type") == "ping":
                await ws.send('{"type":"pong"}')
        raise ApiError("The gateway closed the live connection before accepting it.")

    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError as exc:
        raise ApiError("The gateway did not accept the live connection in time.") from exc


async def download(path: str, *, token: str | None) -> bytes:
    """GET a file the gateway serves to authenticated callers (e.g. a CSV export)."""
    try:
        async with httpx.AsyncClient(timeout=120.0) as client:
            response = await client.get(
                f"{gateway_url()}{path}",
                headers={"authorization": f"Bearer {token}"} if token else {},
            )
    except httpx.HTTPError as exc:
        raise _unreachable(exc) from exc
    if response.status_code in (401,):
        raise ApiError("Your session has expired. Please sign in again.", auth=True)
    if response.status_code == 403:
        raise ApiError("You are not allowed to export this activity.", code="FORBIDDEN")
    if response.status_code == 404:
        raise ApiError("There is no such user.")
    if response.status_code >= 400:
        raise ApiError(f"The export failed (HTTP {response.status_code}).")
    return response.content
