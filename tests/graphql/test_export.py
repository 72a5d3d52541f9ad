"""User activity CSV export: auth, role checks, columns, paging across many rows, no secrets."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from backend.data.models.logs import RequestLog
from backend.exports.activity import COLUMNS
from tests.graphql.harness import T0, Env, World, data, gql


def url(user_id: int, query: str = "") -> str:
    return f"/admin/users/{user_id}/activity.csv{query}"


async def seed(world: World, n: int, who: str = "member_a") -> None:
    user = world.users[who]
    await RequestLog.bulk_create(
        [
            RequestLog(
                request_id=f"req-{i:05d}",
                created_at=T0 + dt.timedelta(seconds=i),
                key_prefix="sb-1234abcd",
                user_id=user.id,
                org_id=world.org_a.id,
                endpoint="/v1/messages",
                requested_model="claude",
                actual_model="anthropic/claude-sonnet",
                provider="anthropic",
                status=200,
                input_tokens=i,
                output_tokens=2 * i,
                cached_tokens=1,
                cost_usd=None if i == 1 else Decimal("0.00001") * i,
                latency_ms=12.5,
                superseded=i == 2,
                request_body='{"messages":[{"role":"user","content":"mail [EMAIL_1], x"}]}',
                response_body='=HYPERLINK("http://x")' if i == 3 else '{"content":"ok"}',
            )
            for i in range(n)
        ],
        batch_size=500,
    )


async def test_export_columns_and_rows(env: Env, world: World) -> None:
    await seed(world, 1203)
    key = data(
        await gql(
            env, "mutation { createApiKey(input: {}) { secret } }", token=world.token("member_a")
        )
    )
    secret = key["createApiKey"]["secret"]
    resp = await env.client.get(
        url(world.users["member_a"].id),
        headers={"Authorization": f"Bearer {world.token('admin_a')}"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'filename="user-' in resp.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert tuple(rows[0]) == COLUMNS
    body = rows[1:]
    assert len(body) == 1202  # every request across several pages, the superseded one left out
    assert [r[1] for r in body[:3]] == ["req-00000", "req-00001", "req-00003"]
    first = dict(zip(COLUMNS, body[0], strict=True))
    assert first["time"] == T0.isoformat()
    assert first["request"] == '{"messages":[{"role":"user","content":"mail [EMAIL_1], x"}]}'
    assert (first["input_tokens"], first["output_tokens"], first["cached_tokens"]) == (
        "0",
        "0",
        "1",
    )
    assert dict(zip(COLUMNS, body[1], strict=True))["cost_usd"] == ""  # unknown, not 0
    assert dict(zip(COLUMNS, body[-1], strict=True))["cost_usd"] == "0.01202000"
    # A formula in a conversation is not evaluated by spreadsheet apps.
    assert dict(zip(COLUMNS, body[2], strict=True))["response"] == '\'=HYPERLINK("http://x")'
    assert secret not in resp.text and "key_hash" not in resp.text


async def test_time_window(env: Env, world: World) -> None:
    await seed(world, 10)
    since = (T0 + dt.timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    until = (T0 + dt.timedelta(seconds=8)).isoformat()
    resp = await env.client.get(
        url(world.users["member_a"].id, f"?since={since}&until={until.replace('+', '%2B')}"),
        headers={"Authorization": f"Bearer {world.token('super')}"},
    )
    assert resp.status_code == 200, resp.text
    assert [r[1] for r in list(csv.reader(io.StringIO(resp.text)))[1:]] == [
        "req-00005",
        "req-00006",
        "req-00007",
    ]
    bad = await env.client.get(
        url(world.users["member_a"].id, "?since=yesterday"),
        headers={"Authorization": f"Bearer {world.token('super')}"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "since"


async def test_roles(env: Env, world: World) -> None:
    target = world.users["member_a"].id
    cases = [
        (None, 401),
        ("sba-00000000-forged", 401),
        ("member_b", 403),  # another organization's member
        ("admin_b", 403),  # another organization's admin
        ("member_a", 200),  # their own activity
        ("admin_a", 200),
        ("super", 200),
    ]
    for who, status in cases:
        token = world.token(who) if who and not who.startswith("sba-") else who
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await env.client.get(url(target), headers=headers)
        assert resp.status_code == status, (who, resp.text)
        if status != 200:
            assert "time,request_id" not in resp.text
    resp = await env.client.get(
        url(424242), headers={"Authorization": f"Bearer {world.token('super')}"}
    )
    assert resp.status_code == 404
