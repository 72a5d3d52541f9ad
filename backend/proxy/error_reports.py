"""``POST /v1/error-reports``: clients and agents report their own errors (API key auth)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from backend.data.log_record import ErrorRecord
from backend.gateway import Gateway
from backend.ir.errors import GatewayError, InvalidRequest
from backend.policies import dlp as dlp_policy
from backend.policies.context import RequestContext
from backend.proxy.auth import principal_for
from backend.proxy.body import read_json
from backend.proxy.chat import JSON, refusal
from backend.proxy.codecs import OPENAI

FIELDS = {"type": 100, "error": 4000, "model": 200, "agent": 100, "version": 50, "request_id": 64}
REDACTED = ("type", "error")


async def report_error(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    ctx = RequestContext(endpoint="/v1/error-reports", created_at=gw.clock())
    try:
        body = await read_json(request, 64 * 1024)
        principal = await principal_for(request.headers, gw.store, ctx.created_at)
        values: dict[str, str | None] = {}
        for name, limit in FIELDS.items():
            v = body.get(name)
            if v is not None and not isinstance(v, str):
                raise InvalidRequest(f"'{name}' must be a string.", param=name)
            if v and name in REDACTED:
                # A report may quote what the client was sending: the caller's DLP policy
                # applies, before truncation (which could cut a value in half, unrecognisable).
                v = await dlp_policy.redact_note(principal, gw, v)
            values[name] = v[:limit] if v else None
        if not values["type"] or not values["error"]:
            raise InvalidRequest("'type' and 'error' are required.", param="error")
        gw.log_writer.submit_error(
            ErrorRecord(
                created_at=ctx.created_at,
                source="client",
                type=values["type"] or "",
                error=values["error"] or "",
                model=values["model"],
                user_id=principal.user.id if principal.user else None,
                org_id=principal.org_id,
                agent=values["agent"],
                version=values["version"],
                request_id=values["request_id"],
            )
        )
        return Response(orjson.dumps({"ok": True}), status_code=202, media_type=JSON)
    except GatewayError as err:
        return refusal(gw, OPENAI, err, ctx)
