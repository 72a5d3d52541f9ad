"""The exact-match response cache: keys, isolation, TTL, replay, memory and real Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from backend.cache.backends import make_cache_backend
from backend.cache.response_cache import (
    CachedAnswer,
    ResponseCache,
    cache_key,
    cache_scope,
    new_answer,
    replay_as_stream,
)
from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    StreamEnd,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.state.snapshot import AppInfo, KeyInfo, OrgInfo, Principal, UserInfo

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"

ANSWER = ChatResponse(
    id="chatcmpl-1",
    model="gpt-4o-mini-2024-07-18",
    content=[TextPart("Paris.")],
    finish_reason="stop",
    usage=Usage(input_tokens=9, output_tokens=2),
    created=1_700_000_000,
)
BODY = {
    "model": "fast",
    "messages": [{"role": "user", "content": "Capital of France?"}],
    "temperature": 0,
}


def req(text: str = "Capital of France?", **kw: object) -> ChatRequest:
    return ChatRequest(model="fast", messages=[Message("user", [TextPart(text)])], **kw)  # type: ignore[arg-type]


# -- keys --------------------------------------------------------------------------------------


def test_key_ignores_stream_options_and_user_but_nothing_else() -> None:
    base = cache_key("org:1", "gpt-4o-mini", BODY)
    same = BODY | {"stream": True, "stream_options": {"include_usage": True}, "user": "alice"}
    assert cache_key("org:1", "gpt-4o-mini", same) == base
    assert cache_key("org:1", "gpt-4o-mini", dict(reversed(list(BODY.items())))) == base
    assert cache_key("org:1", "gpt-4o-mini", BODY | {"temperature": 1}) != base
    assert cache_key("org:1", "gpt-4o-mini", BODY | {"max_tokens": 5}) != base
    assert cache_key("org:1", "gpt-4o", BODY) != base  # resolved model
    assert cache_key("org:2", "gpt-4o-mini", BODY) != base  # tenant
    assert cache_key("app:1", "gpt-4o-mini", BODY) != base


def test_key_over_the_ir_request() -> None:
    base = cache_key("org:1", "m", req())
    assert cache_key("org:1", "m", req(stream=True, include_usage=True, user="bob")) == base
    assert cache_key("org:1", "m", req("Capital of Spain?")) != base
    assert cache_key("org:1", "m", req(temperature=0.5)) != base
    assert cache_key("org:1", "m", req(system=[TextPart("be terse")])) != base
    with pytest.raises(ValueError):
        cache_key("", "m", req())


def test_scope_is_the_app_for_app_keys_else_the_organization() -> None:
    org = OrgInfo(7, "Acme", "acme")
    user = UserInfo(3, "Ann", "ann@acme.test", org_id=7)
    app = AppInfo(5, "bot", "bot", org_id=7)
    assert cache_scope(Principal(KeyInfo(1, "sb-1", 3, None), user, None, org)) == "org:7"
    assert cache_scope(Principal(KeyInfo(2, "sb-2", None, 5), None, app, org)) == "app:5"
    assert (
        cache_scope(Principal(KeyInfo(3, "sb-3", 4, None), UserInfo(4, "B", "b@x"), None, None))
        == "user:4"
    )
    assert cache_scope(Principal(KeyInfo(4, "sb-4", None, None), None, None, None)) == "key:4"
    # A key rotated from key 4 keeps its answers: the scope is the chain's.
    rotated = KeyInfo(9, "sb-9", None, None, lineage_id=4)
    assert cache_scope(Principal(rotated, None, None, None)) == "key:4"


# -- behaviour on any backend ------------------------------------------------------------------


@pytest.fixture
def namespace() -> str:
    return f"sbtest:rc:{uuid.uuid4().hex}"


async def _redis_or_skip() -> aioredis.Redis:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()  # type: ignore[misc]
    except Exception as exc:
        await client.aclose()
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__}); set REDIS_URL")
    return client


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[ResponseCache]:
    if request.param == "memory":
        rc = ResponseCache(make_cache_backend(None, namespace=namespace))
        yield rc
        await rc.close()
        return
    raw = await _redis_or_skip()
    rc = ResponseCache.create(REDIS_URL, namespace=namespace)
    try:
        yield rc
    finally:
        await rc.close()
        keys = [k async for k in raw.scan_iter(match=f"{namespace}:*")]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()


async def test_miss_then_hit(cache: ResponseCache) -> None:
    key = cache_key("org:1", "gpt-4o-mini", BODY)
    assert await cache.get(key) is None
    assert not await cache.has(key)
    await cache.put(key, new_answer(ANSWER, provider="openai"), ttl=60)
    assert await cache.has(key)
    hit = await cache.get(key)
    assert hit is not None
    assert hit.response == ANSWER
    assert hit.provider == "openai"
    assert hit.stored_at > 0


async def test_one_organization_never_gets_anothers_answer(cache: ResponseCache) -> None:
    await cache.put(cache_key("org:1", "gpt-4o-mini", BODY), new_answer(ANSWER), ttl=60)
    assert await cache.get(cache_key("org:2", "gpt-4o-mini", BODY)) is None
    assert await cache.get(cache_key("app:1", "gpt-4o-mini", BODY)) is None
    assert await cache.get(cache_key("org:1", "gpt-4o-mini", BODY)) is not None


async def test_entries_expire_after_their_ttl(cache: ResponseCache) -> None:
    key = cache_key("org:1", "m", BODY)
    await cache.put(key, new_answer(ANSWER), ttl=0.3)
    assert await cache.get(key) is not None
    await asyncio.sleep(0.45)
    assert await cache.get(key) is None
    await cache.put(key, new_answer(ANSWER), ttl=1)  # whole seconds take the SETEX path
    assert await cache.get(key) is not None


async def test_zero_ttl_stores_nothing_and_delete_removes(cache: ResponseCache) -> None:
    key = cache_key("org:1", "m", BODY)
    await cache.put(key, new_answer(ANSWER), ttl=0)
    assert await cache.get(key) is None
    await cache.put(key, new_answer(ANSWER), ttl=60)
    await cache.delete(key)
    assert await cache.get(key) is None


async def test_entries_this_version_cannot_read_are_misses(cache: ResponseCache) -> None:
    backend = cache._backend
    await backend.set("garbage", b"\xff\x00 not json", ttl=60)
    await backend.set("future", b'{"v": 999, "response": {}}', ttl=60)
    assert await cache.get("garbage") is None
    assert await cache.get("future") is None


# -- Redis specifics ---------------------------------------------------------------------------


async def test_two_instances_share_entries_through_redis(namespace: str) -> None:
    raw = await _redis_or_skip()
    a = ResponseCache.create(REDIS_URL, namespace=namespace)
    b = ResponseCache.create(REDIS_URL, namespace=namespace)
    try:
        key = cache_key("org:9", "gpt-4o-mini", BODY)
        assert await b.get(key) is None
        await a.put(key, new_answer(ANSWER, provider="openai"), ttl=30)
        hit = await b.get(key)
        assert hit is not None and hit.response == ANSWER
        # Stored under the namespace, with a TTL, as bytes of JSON (no pickles).
        stored = await raw.get(f"{namespace}:{key}")
        assert stored is not None and CachedAnswer.from_bytes(stored) is not None
        assert 0 < await raw.ttl(f"{namespace}:{key}") <= 30
        # And another organization still misses on the shared store.
        assert await b.get(cache_key("org:10", "gpt-4o-mini", BODY)) is None
    finally:
        await a.close()
        await b.close()
        await raw.delete(*[k async for k in raw.scan_iter(match=f"{namespace}:*")] or ["-"])
        await raw.aclose()


async def test_an_unreachable_redis_is_a_miss_not_an_error(namespace: str) -> None:
    rc = ResponseCache.create("redis://127.0.0.1:1/0", namespace=namespace)
    key = cache_key("org:1", "m", BODY)
    await rc.put(key, new_answer(ANSWER), ttl=60)
    assert await rc.get(key) is None
    assert not await rc.has(key)
    await rc.close()


# -- replay ------------------------------------------------------------------------------------


def test_replay_as_stream_event_order() -> None:
    resp = ChatResponse(
        id="msg_9",
        model="claude-x",
        content=[
            ThinkingPart(thinking="hmm", signature="s1"),
            TextPart("Let me check."),
            TextPart(""),  # skipped: clients reject empty text blocks
            ToolCallPart("call_a", "lookup", '{"q": 1}'),
            ToolCallPart("call_b", "noargs", ""),
            ThinkingPart(redacted_data="xyz"),
        ],
        finish_reason="tool_calls",
        usage=Usage(input_tokens=5, output_tokens=7),
        created=123,
    )
    assert replay_as_stream(resp) == [
        StreamStart(id="msg_9", model="claude-x", created=123),
        BlockStart(0, "thinking"),
        ThinkingDelta(0, "hmm", "s1"),
        BlockStop(0),
        BlockStart(1, "text"),
        TextDelta(1, "Let me check."),
        BlockStop(1),
        BlockStart(2, "tool_call", tool_call_id="call_a", tool_name="lookup"),
        ToolArgsDelta(2, '{"q": 1}'),
        BlockStop(2),
        BlockStart(3, "tool_call", tool_call_id="call_b", tool_name="noargs"),
        BlockStop(3),
        BlockStart(4, "redacted_thinking", data="xyz"),
        BlockStop(4),
        StreamEnd(finish_reason="tool_calls", usage=Usage(input_tokens=5, output_tokens=7)),
    ]


async def test_a_cached_answer_replays_as_a_stream(cache: ResponseCache) -> None:
    key = cache_key("org:1", "m", req(stream=True))
    await cache.put(key, new_answer(ANSWER), ttl=60)
    hit = await cache.get(key)
    assert hit is not None
    events = replay_as_stream(hit.response)
    assert [type(e) for e in events] == [StreamStart, BlockStart, TextDelta, BlockStop, StreamEnd]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris."
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop" and end.usage == ANSWER.usage
