"""Admin HTTP routes beside GraphQL: the user activity CSV export.

``GET /admin/users/{user_id}/activity.csv[?since=ISO&until=ISO]`` with ``Authorization: Bearer
<session or admin token>``. super_admins may export anyone; org_admins the rows made under their
organization by its users and by users who have since moved out; users their own rows made under
their current organization (``backend.admin.logs.activity_scope``). The body is streamed page by
page (flat memory).
"""

from __future__ import annotations

import datetime as dt

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from backend.admin.errors import AdminError, InvalidInput, NotAuthenticated
from backend.admin.logs import activity_scope
from backend.admin.lookup import found
from backend.data.models.tenancy import User
from backend.exports.activity import activity_csv
from backend.gateway import Gateway
from backend.security.sessions import authenticate_token, bearer

STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "BAD_USER_INPUT": 400}


def _error(err: AdminError) -> Response:
    body = {"error": {"message": err.message, **err.extensions}}
    headers = {"WWW-Authenticate": "Bearer"} if err.code == "UNAUTHENTICATED" else None
    return Response(
        orjson.dumps(body),
        status_code=STATUS.get(err.code, 400),
        media_type="application/json",
        headers=headers,
    )


def _when(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date-time", field=name) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def admin_routes(gateway: Gateway) -> list[BaseRoute]:
    async def user_activity_csv(request: Request) -> Response:
        try:
            token = bearer(request.headers.get("authorization"))
            viewer = await authenticate_token(token, now=gateway.clock()) if token else None
            if viewer is None:
                raise NotAuthenticated("a valid session or admin token is required")
            user_id = request.path_params["user_id"]
            user = await found(User, user_id, "user")
            scope = await activity_scope(viewer, user)
            since, until = _when(request, "since"), _when(request, "until")
        except AdminError as err:
            return _error(err)
        filename = f"user-{user.id}-activity.csv"
        return StreamingResponse(
            activity_csv(user.id, scope=scope, since=since, until=until),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )

    return [
        Route("/admin/users/{user_id:int}/activity.csv", user_activity_csv, methods=["GET"]),
    ]
