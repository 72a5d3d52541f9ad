"""``LazyGraphQL``: the ``/graphql`` endpoint, built on its first request.

Importing strawberry, graphql-core and the schema costs ~16 MB of RSS (a sixth of an idle
gateway) and a second or more of CPU; a gateway that only proxies never needs it. So the
routes point at this stand-in, which imports ``backend.graphql.app`` in a thread on the first
request or WebSocket (the event loop keeps serving meanwhile: an import that blocked it for a
second timed out the first Ollama probe), builds the app once, and hands every call to it.

After the build the new objects are frozen out of the collector's sight, as ``create_app``'s
lifespan does for the start-up's: otherwise each full collection would walk the schema again.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from backend.gateway import Gateway
    from backend.graphql.app import SwitchboardGraphQL
    from backend.security.login_guard import LoginGuard


class LazyGraphQL:
    """An ASGI app (HTTP and WebSocket) standing for ``create_graphql_app(gateway, guard)``."""

    def __init__(self, gateway: Gateway, login_guard: LoginGuard | None = None) -> None:
        self.gateway = gateway
        self.login_guard = login_guard
        self._app: SwitchboardGraphQL | None = None
        self._building: asyncio.Future[SwitchboardGraphQL] | None = None

    async def app(self) -> SwitchboardGraphQL:
        """The real app; the first caller builds it, callers meanwhile wait for that build."""
        if self._app is not None:
            return self._app
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
        try:
            # shield: one waiter going away (a client hanging up) must not cancel the build.
            return await asyncio.shield(self._building)
        except Exception:
            self._building = None  # a failed build is retried by the next request
            raise

    async def _build(self) -> SwitchboardGraphQL:
        module: Any = await asyncio.to_thread(importlib.import_module, "backend.graphql.app")
        app: SwitchboardGraphQL = module.create_graphql_app(self.gateway, self.login_guard)
        gc.collect()
        gc.freeze()
        self._app = app
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app if self._app is not None else await self.app()
        await app(scope, receive, send)

    async def serve_ide_asset(self, request: Request) -> Response:
        """Endpoint of ``GET /graphql/assets/{name}``."""
        return await (await self.app()).serve_ide_asset(request)
