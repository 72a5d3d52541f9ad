"""``GET /v1/models`` in the caller's protocol: what this key may use."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from backend.gateway import Gateway
from backend.ir.errors import GatewayError
from backend.policies.context import RequestContext
from backend.proxy.auth import principal_for
from backend.proxy.chat import JSON, refusal
from backend.proxy.codecs import ANTHROPIC, OPENAI

CREATED = 1_700_000_000


def visible_models(gw: Gateway, org_id: int | None) -> list[str]:
    """Catalog models that are reachable, plus the aliases and agents this caller can name."""
    names = [e.model for e in gw.router.catalog(gw.providers.configured()) if e.reachable]
    routing = gw.store.routing
    names += list(routing.global_aliases)
    if org_id is not None:
        names += list(routing.org_aliases.get(org_id, {}))
    names += [f"agent/{a}" for a in routing.agents]
    return sorted(set(names))


async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    anthropic = "anthropic-version" in request.headers
    codec = ANTHROPIC if anthropic else OPENAI
    ctx = RequestContext(endpoint="/v1/models", created_at=gw.clock())
    try:
        principal = await principal_for(request.headers, gw.store, ctx.created_at)
    except GatewayError as err:
        return refusal(gw, codec, err, ctx)
    names = visible_models(gw, principal.org_id)
    if anthropic:
        data = [
            {"type": "model", "id": n, "display_name": n, "created_at": "2024-01-01T00:00:00Z"}
            for n in names
        ]
        body = {
            "data": data,
            "has_more": False,
            "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None,
        }
    else:
        body = {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": CREATED, "owned_by": n.split("/", 1)[0]}
                for n in names
            ],
        }
    return Response(orjson.dumps(body), media_type=JSON)
