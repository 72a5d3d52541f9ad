"""``ResponseStore`` against a real database (SQLite, or PostgreSQL + Redis in CI's second pass).

Two stores on one database and one bus play two gateway instances. The clock is injected, so
expiry is tested without waiting for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend.data.events import EventBus, LocalBus, RedisBus
from backend.data.models.responses import StoredResponse
from backend.dlp.redact import Redactor
from backend.dlp.rules import DlpPolicy
from backend.dlp.vault import Vault
from backend.ir.errors import GatewayError
from backend.responses_store import ResponseStore
from backend.state.snapshot import KeyInfo, OrgInfo, Principal, UserInfo
from tests.dbutil import initialised_database, redis_url

TTL = 3600.0
ALICE_EMAIL = "alice.private@example.com"


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def principal(org_id: int, user_id: int) -> Principal:
    org = OrgInfo(org_id, f"Org {org_id}", f"org-{org_id}")
    user = UserInfo(user_id, "U", f"u{user_id}@x.test", org_id=org_id)
    return Principal(KeyInfo(user_id, "sk-x", user_id, None), user, None, org)


ACME = principal(1, 10)
ACME_OTHER_USER = principal(1, 11)
GLOBEX = principal(2, 20)


def response(rid: str, text: str, *, status: str = "completed") -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": 1_900_000_000,
        "status": status,
        "model": "anthropic/claude-x",
        "output": [
            {
                "id": f"msg_{rid}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            },
            {
                "id": f"rs_{rid}",
                "type": "reasoning",
                "summary": [],
                "encrypted_content": "gAAAA-opaque-" + rid,
            },
        ],
        "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
    }


def user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with initialised_database(tmp_path_factory.mktemp("responses")) as url:
        yield url


@pytest.fixture
async def db(database: str) -> str:
    await StoredResponse.all().delete()
    return database


class Pair:
    def __init__(self, a: ResponseStore, b: ResponseStore, clock: Clock) -> None:
        self.a, self.b, self.clock = a, b, clock


@pytest.fixture
async def pair(db: str) -> AsyncIterator[Pair]:
    clock = Clock()
    redis: Any = None
    bus: EventBus = LocalBus()
    prefix = f"sbtest-{uuid.uuid4().hex[:8]}:"
    if redis_url():
        import redis.asyncio as aioredis

        redis = aioredis.from_url(redis_url() or "")
        bus = RedisBus(redis, prefix=prefix)
    await bus.start()
    policy = Redactor.from_policy(DlpPolicy())

    def store(name: str) -> ResponseStore:
        return ResponseStore(
            bus=bus,
            redis=redis,
            redis_prefix=prefix,
            ttl_s=TTL,
            redactor_for=lambda p: policy if p.org_id == 1 else None,
            instance_id=name,
            clock=clock,
            grace_s=0.2,
            sweep_interval_s=3600,
        )

    a, b = store("a"), store("b")
    await a.start()
    await b.start()
    try:
        yield Pair(a, b, clock)
    finally:
        await a.close()
        await b.close()
        await bus.close()
        if redis is not None:
            keys = [k async for k in redis.scan_iter(match=prefix + "*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


async def saved(store: ResponseStore, p: Principal, rid: str, **kw: Any) -> None:
    kw.setdefault("input_items", [user_item("hi")])
    await store.save(p, response=kw.pop("response", None) or response(rid, "ok"), **kw)
    await store.get(p, rid)  # waits for the background save on this instance


async def rows() -> list[StoredResponse]:
    return await StoredResponse.all().order_by("created_at", "id")


async def test_a_three_turn_chain_replays_in_order_on_another_instance(pair: Pair) -> None:
    await saved(pair.a, ACME, "resp_1", input_items=[user_item("turn one")])
    await saved(
        pair.a,
        ACME,
        "resp_2",
        input_items=[user_item("turn two")],
        response=response("resp_2", "two"),
        previous_response_id="resp_1",
    )
    await pair.a.writer.flush()
    # Instance B never saw them: Redis (when configured) or the database has them.
    items = await pair.b.load_conversation(ACME_OTHER_USER, "resp_2")
    texts = [c.get("text") for i in items if i["type"] == "message" for c in i["content"]]
    assert texts == ["turn one", "ok", "turn two", "two"]
    # Encrypted reasoning travels with the replay (OpenAI needs it to continue).
    assert [i["encrypted_content"] for i in items if i["type"] == "reasoning"] == [
        "gAAAA-opaque-resp_1",
        "gAAAA-opaque-resp_2",
    ]
    listed = await pair.b.input_items(ACME, "resp_2")
    assert [i["type"] for i in listed] == ["message", "message", "reasoning", "message"]
    assert all(isinstance(i["id"], str) and i["id"] for i in listed)
    assert listed == await pair.a.input_items(ACME, "resp_2")  # same ids on every instance


async def test_another_organization_gets_the_unknown_id_answer(pair: Pair) -> None:
    await saved(pair.a, ACME, "resp_acme")
    for store in (pair.a, pair.b):
        with pytest.raises(GatewayError) as caught:
            await store.load_conversation(GLOBEX, "resp_acme")
        err = caught.value
        assert (err.status, err.code, err.param) == (
            404,
            "previous_response_not_found",
            "previous_response_id",
        )
        assert err.message == "Previous response with id 'resp_acme' not found."
        with pytest.raises(GatewayError) as caught:
            await store.get(GLOBEX, "resp_acme")
        assert caught.value.status == 404
        assert caught.value.message == "Response with id 'resp_acme' not found."
        with pytest.raises(GatewayError):
            await store.delete(GLOBEX, "resp_acme")
        with pytest.raises(GatewayError):
            await store.input_items(GLOBEX, "resp_acme")
    assert (await pair.a.get(ACME, "resp_acme")).id == "resp_acme"


async def test_failed_answers_are_not_kept(pair: Pair) -> None:
    await pair.a.save(ACME, response=response("resp_f", "x", status="failed"), input_items=[])
    with pytest.raises(GatewayError):
        await pair.a.get(ACME, "resp_f")


async def test_stored_rows_hold_placeholders_never_the_values(pair: Pair) -> None:
    vault = Vault()
    placeholder = vault.placeholder(ALICE_EMAIL, "EMAIL", "email")
    leaked = "bob.unseen@example.org"  # the answer brought it up itself
    args = '{"to": "alice.private\\u0040example.com"}'  # a JSON escape the text scan misses
    resp = response("resp_dlp", f"Mail {ALICE_EMAIL} and {leaked}")
    resp["output"].append(
        {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "send", "arguments": args}
    )
    resp["metadata"] = {"owner": ALICE_EMAIL}
    await saved(
        pair.a,
        ACME,
        "resp_dlp",
        response=resp,
        input_items=[user_item(f"My address is {ALICE_EMAIL}")],
        dlp=(object(), vault),
    )
    await pair.a.writer.flush()
    [row] = await rows()
    stored = row.response + row.input_items
    assert ALICE_EMAIL not in stored and leaked not in stored
    assert "alice.private\\\\u0040" not in stored and "alice.private@" not in stored
    assert placeholder in row.input_items and placeholder in row.response
    # The caller's vault is untouched (the request's restorer still reads it).
    assert vault.items() == [(placeholder, ALICE_EMAIL)]
    # What is read back is the stored (redacted) copy.
    rec = await pair.b.get(ACME, "resp_dlp")
    assert ALICE_EMAIL not in str(rec.response)


async def test_expired_responses_are_gone_and_swept(pair: Pair) -> None:
    await saved(pair.a, ACME, "resp_old")
    await pair.a.writer.flush()
    pair.clock.now += TTL + 1
    for store in (pair.a, pair.b):
        with pytest.raises(GatewayError):
            await store.get(ACME, "resp_old")
    assert len(await rows()) == 1
    assert await pair.b.sweep() == 1
    assert await rows() == []


async def test_a_conversation_that_goes_on_keeps_its_first_turn(pair: Pair) -> None:
    await saved(pair.a, ACME, "resp_c1")
    pair.clock.now += TTL * 0.8
    await saved(pair.a, ACME, "resp_c2", previous_response_id="resp_c1")
    await pair.a.writer.flush()
    pair.clock.now += TTL * 0.5  # past resp_c1's own expiry, not past the conversation's
    await pair.a.sweep()
    assert [i["type"] for i in await pair.b.load_conversation(ACME, "resp_c2")][:1] == ["message"]
    assert {r.id for r in await rows()} == {"resp_c1", "resp_c2"}


async def test_delete_reaches_every_instance(pair: Pair) -> None:
    await saved(pair.a, ACME, "resp_d1")
    await saved(pair.a, ACME, "resp_d2", previous_response_id="resp_d1")
    await pair.a.writer.flush()
    await pair.b.get(ACME, "resp_d1")  # cached on B now
    await pair.a.delete(ACME, "resp_d1")
    assert {r.id for r in await rows()} == {"resp_d2"}
    for store in (pair.a, pair.b):
        await _eventually_missing(store, "resp_d1")
        with pytest.raises(GatewayError) as caught:
            await store.load_conversation(ACME, "resp_d2")
        assert "resp_d1" in caught.value.message


async def test_delete_while_the_row_is_being_written(pair: Pair) -> None:
    # The writer starts on submit: the delete may come before, during or after its
    # transaction. A row that lands after the delete is deleted again shortly after.
    await saved(pair.a, ACME, "resp_q")
    await pair.a.delete(ACME, "resp_q")
    for store in (pair.b, pair.a):  # never served again, whatever the row is doing
        with pytest.raises(GatewayError):
            await store.get(ACME, "resp_q")
    await pair.a.writer.flush()
    await pair.a.idle()  # the second delete
    assert await rows() == []
    with pytest.raises(GatewayError):
        await pair.b.get(ACME, "resp_q")


async def test_close_writes_everything_queued(db: str) -> None:
    bus = LocalBus()
    store = ResponseStore(
        bus=bus, redis=None, redis_prefix="x:", ttl_s=TTL, redactor_for=lambda p: None
    )
    await store.start()
    for n in range(5):
        await store.save(ACME, response=response(f"resp_c{n}", "ok"), input_items=[])
    await store.close()
    assert len(await rows()) == 5


async def _eventually_missing(store: ResponseStore, rid: str) -> None:
    for _ in range(100):
        try:
            await store.get(ACME, rid)
        except GatewayError:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{rid} still readable")
