"""The ASGI GraphQL app: HTTP queries/mutations, GraphiQL, and WebSocket subscriptions.

Authentication: ``Authorization: Bearer <session or admin token>`` on HTTP (and on the WebSocket
upgrade if a client can send it); otherwise the ``connection_init`` payload
``{"Authorization": "Bearer ..."}`` or ``{"token": "..."}``. A WebSocket without a valid token
is closed with 4403 right after ``connection_init``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from backend.data.models.tenancy import User
from backend.gateway import Gateway
from backend.graphql.context import Context
from backend.graphql.schema import schema
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


class SwitchboardGraphQL(GraphQL[Context, None]):
    def __init__(self, gateway: Gateway) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            keep_alive=True,
            keep_alive_interval=15,
        )
        self.gateway = gateway

    async def _authenticate(self, token: str | None) -> User | None:
        if not token:
            return None
        return await authenticate_token(token, now=self.gateway.clock())

    async def get_context(  # type: ignore[override]
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        token = bearer(request.headers.get("authorization"))
        return Context(
            gateway=self.gateway,
            request=request,
            response=response,
            viewer=await self._authenticate(token),
            token=token,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:  # type: ignore[override]
        token = _token_from_params(context.connection_params) or context.token
        user = await self._authenticate(token)
        if user is None:
            raise ConnectionRejectionError(
                {"message": "a valid session or admin token is required"}
            )
        context.viewer = user
        context.token = token
        return UNSET


def create_graphql_app(gateway: Gateway) -> SwitchboardGraphQL:
    """Mount it for both HTTP (GET/POST) and WebSocket at ``/graphql``."""
    return SwitchboardGraphQL(gateway)
