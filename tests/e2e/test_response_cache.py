"""The exact-match response cache through a real gateway process (issue 7 must-show 4).

The gateway offers the ``response_cache`` feature (super_admin, GraphQL) and users opt in from
their own dashboard session (GraphQL). A repeated request from an opted-in user is answered from
the cache: the fake upstream sees one call, the log row is marked ``cache_hit`` with cost 0, and a
streamed repeat is replayed as a stream, in both protocols. A user of the same organization who
did not opt in, an app key, and an opted-in user of another organization are not served from it.

Two instances sharing one entry through Redis: ``test_scaleout.py`` (it already runs two).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anthropic
import openai
import pytest

from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import User
from backend.security.api_keys import generate_key
from backend.security.passwords import hash_password
from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import (
    GatewayProc,
    Seeded,
    gql_data,
    orm,
    prepare_database,
    seed_basic,
    wait_for_rows,
)
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

START_TIMEOUT_S = 120.0
ADMIN = ("cache-root@switchboard.test", "cache-root-password-1234")
PASSWORD = "user-password-1234"
FEATURE = "RESPONSE_CACHE"  # the GraphQL name of the stored "response_cache"
OPENAI_MODEL = "openai/gpt-4o-mini"
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"


@dataclass
class CacheStack:
    gateway: GatewayProc
    database_url: str
    #: Alice (Acme, opts in), Bob (Globex, opts in), Acme's app key.
    seeded: Seeded
    #: Carol: Acme, never opts in.
    carol_id: int
    carol_key: str
    openai: OpenAIFake
    anthropic: AnthropicFake
    alice_email: str = ""
    bob_email: str = ""
    admin_token: str = ""


@pytest.fixture(scope="module")
async def cache_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CacheStack]:
    from backend.admin.bootstrap import bootstrap_super_admin

    tmp: Path = tmp_path_factory.mktemp("response-cache")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    async with orm(db):
        await bootstrap_super_admin(*ADMIN)
        emails = []
        for user_id in (seeded.user_id, seeded.other_user_id):
            user = await User.get(id=user_id)
            user.password_hash = hash_password(PASSWORD)
            await user.save(update_fields=["password_hash"])
            emails.append(user.email)
        carol = await User.create(
            name="Carol",
            email=f"carol-{uuid.uuid4().hex[:6]}@acme.test",
            organization_id=seeded.org_id,
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="carol", user=carol)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    gw = GatewayProc(gateway_env(db, tmp, fakes), tmp / "gateway.log")
    try:
        gw.start(START_TIMEOUT_S)
        stack = CacheStack(
            gw, db, seeded, carol.id, secret, fakes["openai"], fakes["anthropic"], *emails
        )
        stack.admin_token = login(stack, ADMIN[0], ADMIN[1])
        offered = gql(
            stack,
            stack.admin_token,
            "mutation($f: [Feature!]!) { setOfferedFeatures(features: $f) { offeredFeatures } }",
            f=[FEATURE],
        )
        assert offered["setOfferedFeatures"]["offeredFeatures"] == [FEATURE]
        for email in emails:
            opt_in(stack, login(stack, email, PASSWORD), True)
        yield stack
    finally:
        gw.stop()
        for fake in fakes.values():
            fake.stop()
        await drop_database(db)


# -- helpers ----------------------------------------------------------------------------------


def gql(stack: CacheStack, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
    return gql_data(stack.gateway.url, token, query, **variables)


def login(stack: CacheStack, email: str, password: str) -> str:
    data = gql(
        stack,
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        e=email,
        p=password,
    )
    return str(data["login"]["token"])


def opt_in(stack: CacheStack, token: str, enabled: bool) -> None:
    """The user behind ``token`` opts in or out themselves, as on their dashboard."""
    data = gql(
        stack,
        token,
        "mutation($f: Feature!, $e: Boolean!) { setFeatureOptIn(feature: $f, enabled: $e) "
        "{ name offered enabled } }",
        f=FEATURE,
        e=enabled,
    )
    (row,) = [f for f in data["setFeatureOptIn"] if f["name"] == FEATURE]
    assert row == {"name": FEATURE, "offered": True, "enabled": enabled}


def question() -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"What is {uuid.uuid4().hex}?"}]


def ask_openai(
    stack: CacheStack, key: str, messages: list[dict[str, Any]], *, stream: bool = False
) -> tuple[str, str, int]:
    """``(text, request id, chunks received)`` through the official OpenAI SDK."""
    client = openai.OpenAI(base_url=stack.gateway.openai_base_url, api_key=key, max_retries=0)
    if not stream:
        raw = client.chat.completions.with_raw_response.create(
            model=OPENAI_MODEL,
            messages=cast(Any, messages),
        )
        return raw.parse().choices[0].message.content or "", raw.headers["x-request-id"], 0
    raw_stream = client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL,
        messages=cast(Any, messages),
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw_stream.headers["content-type"].startswith("text/event-stream")
    text, chunks, finish = "", 0, None
    for chunk in raw_stream.parse():
        chunks += 1
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert finish == "stop"
    return text, raw_stream.headers["x-request-id"], chunks


def ask_anthropic(
    stack: CacheStack, key: str, messages: list[dict[str, Any]], *, stream: bool = False
) -> tuple[str, str]:
    client = anthropic.Anthropic(base_url=stack.gateway.url, api_key=key, max_retries=0)
    if not stream:
        raw = client.messages.with_raw_response.create(
            model=ANTHROPIC_MODEL,
            max_tokens=50,
            messages=messages,  # type: ignore[arg-type]
        )
        msg = raw.parse()
        return "".join(b.text for b in msg.content if b.type == "text"), raw.headers["x-request-id"]
    with client.messages.stream(
        model=ANTHROPIC_MODEL,
        max_tokens=50,
        messages=messages,  # type: ignore[arg-type]
    ) as s:
        kinds = {ev.type for ev in s}
        msg = s.get_final_message()
        rid = s.response.headers["x-request-id"]
    assert {"message_start", "content_block_delta", "message_stop"} <= kinds, kinds
    return "".join(b.text for b in msg.content if b.type == "text"), rid


async def rows_by_request(stack: CacheStack, *request_ids: str) -> list[Any]:
    found: dict[str, Any] = {}
    for rid in request_ids:
        (row,) = await wait_for_rows(stack.database_url, 1, request_id=rid)
        found[rid] = row
    return [found[rid] for rid in request_ids]


def calls(fake: OpenAIFake | AnthropicFake, messages: list[dict[str, Any]]) -> int:
    """How many requests carrying this question reached the upstream."""
    needle = messages[0]["content"]
    return sum(needle in r.body.decode() for r in fake.requests)


# -- tests ------------------------------------------------------------------------------------


async def test_repeat_of_an_opted_in_user_is_served_from_the_cache(
    cache_stack: CacheStack,
) -> None:
    s = cache_stack
    q = question()
    s.openai.replies.append(Reply(text="forty-two, freshly computed", output_tokens=7))
    first, rid1, _ = ask_openai(s, s.seeded.user_key, q)
    assert first == "forty-two, freshly computed" and calls(s.openai, q) == 1

    again, rid2, _ = ask_openai(s, s.seeded.user_key, q)
    streamed, rid3, chunks = ask_openai(s, s.seeded.user_key, q, stream=True)
    assert again == streamed == first
    assert chunks >= 2  # a real stream: content chunk(s), then the finish / usage chunks
    assert calls(s.openai, q) == 1  # the upstream saw the question once

    miss, hit, hit_streamed = await rows_by_request(s, rid1, rid2, rid3)
    assert miss.cache_hit is False and miss.cost_usd is not None and miss.cost_usd > 0
    for row in (hit, hit_streamed):
        assert row.cache_hit is True and row.status == 200
        assert row.cost_usd is not None and Decimal(row.cost_usd) == 0
        assert row.user_id == s.seeded.user_id and row.actual_model == OPENAI_MODEL
        # The stored token counts stay visible (for information; they were not billed).
        assert row.output_tokens == 7
    assert hit.streamed is False and hit_streamed.streamed is True


async def test_anthropic_protocol_repeat_replays_as_a_stream(cache_stack: CacheStack) -> None:
    s = cache_stack
    q = question()
    s.anthropic.replies.append(Reply(text="cached in Anthropic's format"))
    text, rid1 = ask_anthropic(s, s.seeded.user_key, q)
    streamed, rid2 = ask_anthropic(s, s.seeded.user_key, q, stream=True)
    assert streamed == text == "cached in Anthropic's format"
    assert calls(s.anthropic, q) == 1
    miss, hit = await rows_by_request(s, rid1, rid2)
    assert (miss.cache_hit, hit.cache_hit) == (False, True)
    assert hit.streamed is True and Decimal(hit.cost_usd) == 0


async def test_others_are_not_served_from_a_users_entry(cache_stack: CacheStack) -> None:
    s = cache_stack
    q = question()
    ask_openai(s, s.seeded.user_key, q)  # Alice (Acme, opted in) fills the cache
    assert calls(s.openai, q) == 1
    ask_openai(s, s.seeded.user_key, q)
    assert calls(s.openai, q) == 1  # ... and it is there

    # Carol: same organization, never opted in.
    _, carol_rid, _ = ask_openai(s, s.carol_key, q)
    assert calls(s.openai, q) == 2
    # Acme's app key: no user, so no one's opt-in.
    _, app_rid, _ = ask_openai(s, s.seeded.app_key, q)
    assert calls(s.openai, q) == 3
    # Bob: opted in, but of another organization; he gets (and then reuses) his own entry.
    _, bob_rid, _ = ask_openai(s, s.seeded.other_key, q)
    assert calls(s.openai, q) == 4
    _, bob_rid2, _ = ask_openai(s, s.seeded.other_key, q)
    assert calls(s.openai, q) == 4

    carol, app, bob, bob2 = await rows_by_request(s, carol_rid, app_rid, bob_rid, bob_rid2)
    assert (carol.cache_hit, app.cache_hit, bob.cache_hit, bob2.cache_hit) == (
        False,
        False,
        False,
        True,
    )
    assert carol.cost_usd > 0 and bob.cost_usd > 0


async def test_opting_out_stops_cache_answers(cache_stack: CacheStack) -> None:
    s = cache_stack
    q = question()
    ask_openai(s, s.seeded.user_key, q)
    token = login(s, s.alice_email, PASSWORD)
    opt_in(s, token, False)
    try:
        _, rid, _ = ask_openai(s, s.seeded.user_key, q)
        assert calls(s.openai, q) == 2
        (row,) = await rows_by_request(s, rid)
        assert row.cache_hit is False
    finally:
        opt_in(s, token, True)
    ask_openai(s, s.seeded.user_key, q)  # opted in again: the entry is still there
    assert calls(s.openai, q) == 2
