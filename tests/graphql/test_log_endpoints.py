"""The gateway log filter by door (``GatewayLogFilter.endpoint``), the Responses door included."""

from __future__ import annotations

import datetime as dt

from backend.admin.logs import ENDPOINTS
from backend.data.models.logs import RequestLog
from backend.graphql.logs import GatewayEndpoint
from backend.proxy.responses import ENDPOINT as RESPONSES_PATH
from tests.graphql.harness import T0, Env, World, data, error, gql

LIST = (
    "query($f: GatewayLogFilter) { gatewayLogs(filter: $f, sort: NEWEST, first: 50) "
    "{ nodes { requestId endpoint } } }"
)
PATHS = [
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1/responses/{id}",
    "/v1beta/models/{model}:streamGenerateContent",
    "/v1/models/{model}:generateContent",
    "/v1/embeddings",
]


async def test_filter_by_door(env: Env, world: World) -> None:
    for i, path in enumerate(PATHS):
        await RequestLog.create(
            request_id=f"req-{i}",
            created_at=T0 + dt.timedelta(minutes=i),
            user_id=world.users["member_a"].id,
            org_id=world.org_a.id,
            endpoint=path,
            requested_model="m",
            status=200,
        )
    sup = world.token("super")

    async def paths(endpoint: str | None) -> list[str]:
        f = None if endpoint is None else {"endpoint": endpoint}
        nodes = data(await gql(env, LIST, {"f": f}, sup))["gatewayLogs"]["nodes"]
        return sorted(n["endpoint"] for n in nodes)

    assert await paths(None) == sorted(PATHS)
    assert await paths("RESPONSES") == ["/v1/responses"]
    assert await paths("STORED_RESPONSES") == ["/v1/responses/{id}"]
    assert await paths("GEMINI") == [
        "/v1/models/{model}:generateContent",
        "/v1beta/models/{model}:streamGenerateContent",
    ]
    assert await paths("CHAT_COMPLETIONS") == ["/v1/chat/completions"]
    assert await paths("COUNT_TOKENS") == []
    assert (
        "GatewayEndpoint" in error(await gql(env, LIST, {"f": {"endpoint": "FAX"}}, sup))["message"]
    )


def test_every_door_has_paths() -> None:
    assert {str(m.value) for m in GatewayEndpoint} == set(ENDPOINTS)
    assert ENDPOINTS["responses"] == (RESPONSES_PATH,)
