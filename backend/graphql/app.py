"""The ASGI GraphQL app: HTTP queries/mutations, GraphiQL, and WebSocket subscriptions.

GraphiQL (``GET /graphql`` from a browser) and its files (``/graphql/assets/...``) are served
from the gateway's own copy (``backend.graphql.ide``), never from a CDN.

Authentication: ``Authorization: Bearer <session or admin token>`` on HTTP (and on the WebSocket
upgrade if a client can send it); otherwise the ``connection_init`` payload
``{"Authorization": "Bearer ..."}`` or ``{"token": "..."}``. A WebSocket without a valid token
is closed with 4403 right after ``connection_init``, and later when its session ends
(``backend.graphql.live_sessions``).

Size: a request body larger than ``graphql_max_body_bytes`` is refused with 413 (a GraphQL-style
``{"errors": [...]}`` body) before any of it is parsed; a WebSocket message larger than that is
answered by closing the socket with 1009 (message too big). ``backend.graphql.limits`` bounds
the document itself.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from json import JSONDecodeError
from typing import Any, cast

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from backend.admin.auth import lockout_error
from backend.data.models.tenancy import User
from backend.gateway import Gateway
from backend.graphql.context import Context
from backend.graphql.ide import GraphiQLAssets
from backend.graphql.live_sessions import LegacyWSHandler, TransportWSHandler
from backend.graphql.schema import schema
from backend.security.http_limits import BodyTimeout
from backend.security.login_guard import LoginGuard, build_login_guard
from backend.security.sessions import authenticate_token, bearer


def _token_from_params(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    for key in ("Authorization", "authorization"):
        value = params.get(key)
        if isinstance(value, str) and (token := bearer(value)):
            return token
    token = params.get("token")
    return token.strip() if isinstance(token, str) and token.strip() else None


def graphql_error_response(status: int, message: str, code: str) -> Response:
    """A refusal in the shape GraphQL clients read: ``{"errors": [{message, extensions}]}``."""
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status)


class _BodyTooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, or ``_BodyTooLarge`` as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # http.disconnect: whatever arrived is all there is
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out the body already read, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _BoundedWebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry's adapter, but a message over the view's limit closes the socket (1009)
    instead of being decoded: a 16 MiB subscribe must not reach the JSON decoder or parser."""

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        limit = cast("SwitchboardGraphQL", self.view).max_message_bytes
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                # Characters first (free), bytes only when it could matter.
                if len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit:
                    await self.ws.close(code=1009, reason=f"message exceeds {limit} bytes")
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
        except KeyError as exc:  # a binary frame: no "text" key
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass


class SwitchboardGraphQL(GraphQL[Context, None]):
    websocket_adapter_class = _BoundedWebSocketAdapter  # type: ignore[assignment]
    # Operations on a socket live no longer than its session (``backend.graphql.live_sessions``).
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self,
        gateway: Gateway,
        login_guard: LoginGuard | None = None,
        ide_assets: GraphiQLAssets | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            keep_alive=True,
            keep_alive_interval=15,
        )
        # Read from the gateway when used, not here: the authorization audit builds the routes
        # without a gateway.
        self.gateway = gateway
        self._login_guard = login_guard
        self.ide_assets = ide_assets or GraphiQLAssets()

    @property
    def max_message_bytes(self) -> int:
        return self.gateway.settings.graphql_max_body_bytes

    @property
    def login_guard(self) -> LoginGuard:
        if self._login_guard is None:
            # Only apps built without one (tests of the GraphQL app alone) get here.
            gateway = self.gateway
            self._login_guard = build_login_guard(
                gateway.settings, clock=lambda: gateway.clock().timestamp()
            )
        return self._login_guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            refusal = self._refuse_declared_size(scope)
            if refusal is None:
                try:
                    body = await _read_body(receive, self.max_message_bytes)
                except _BodyTooLarge:
                    refusal = self._too_large()
                except BodyTimeout as exc:
                    refusal = graphql_error_response(408, exc.message, "REQUEST_TIMEOUT")
                else:
                    receive = _replay(body, receive)
                    refusal = await self._refuse_locked_out_address(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _refuse_declared_size(self, scope: Scope) -> Response | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_message_bytes:
                    return self._too_large()
                break
        return None

    async def _refuse_locked_out_address(self, scope: Scope) -> Response | None:
        """An anonymous request from an address locked out for failed logins, refused unparsed.

        Anonymous requests are logins and a public catalog. Once an address is locked out its
        logins are refused anyway; answering before the document is parsed, validated and run
        makes a login flood cost the loop a dictionary lookup per request instead of a GraphQL
        execution, so other tenants keep their latency (issue 13, the noisy-neighbour test).
        Requests with credentials are never refused here.
        """
        headers = Headers(scope=scope)
        if "authorization" in headers:
            return None
        guard = self.login_guard
        client = scope.get("client")
        address = guard.address_of(headers, client[0] if client else None)
        lockout = await guard.throttle.address_lockout(address)
        if lockout is None:
            return None
        err = lockout_error(lockout)
        body = {"data": None, "errors": [{"message": err.message, "extensions": err.extensions}]}
        # 200 like every other GraphQL refusal of a login; clients read the error's code.
        return JSONResponse(body, headers={"Retry-After": str(lockout.retry_after_s)})

    def _too_large(self) -> Response:
        return graphql_error_response(
            413,
            f"GraphQL request body exceeds the limit of {self.max_message_bytes} bytes.",
            "PAYLOAD_TOO_LARGE",
        )

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        # strawberry's page loads React and GraphiQL from unpkg.com: blank without internet.
        return self.ide_assets.page()

    async def serve_ide_asset(self, request: Request) -> Response:
        """Endpoint of ``GET /graphql/assets/{name}``."""
        return await self.ide_assets.serve(request)

    async def authenticate(self, token: str | None) -> User | None:
        if not token:
            return None
        return await authenticate_token(token, now=self.gateway.clock())

    async def get_context(  # type: ignore[override]
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        token = bearer(request.headers.get("authorization"))
        return Context(
            gateway=self.gateway,
            login_guard=self.login_guard,
            request=request,
            response=response,
            viewer=await self.authenticate(token),
            token=token,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:  # type: ignore[override]
        token = _token_from_params(context.connection_params) or context.token
        user = await self.authenticate(token)
        if user is None:
            raise ConnectionRejectionError(
                {"message": "a valid session or admin token is required"}
            )
        context.viewer = user
        context.token = token
        return UNSET


def create_graphql_app(
    gateway: Gateway, login_guard: LoginGuard | None = None
) -> SwitchboardGraphQL:
    """Mount it for both HTTP (GET/POST) and WebSocket at ``/graphql``.

    ``login_guard`` belongs to the caller, who closes it; without one (tests that build the
    GraphQL app alone) the app makes its own, counting failures in this process.
    """
    return SwitchboardGraphQL(gateway, login_guard)
