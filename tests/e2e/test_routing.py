"""Routing through the real gateway and the official SDKs: aliases, agent tiers, fallback chains,
bounded retries, circuit breakers, billing of fallbacks, and live routing strategies.

Everything the gateway needs is seeded before it starts (aliases, agents, chains, prices); only
the routing strategy changes at run time, through the GraphQL admin API. Every test uses its own
model names, so breakers and latency/in-flight statistics never leak from one test into another
(the fakes answer any model name and record which one they were asked for).

Fakes: ``openai`` and ``anthropic`` as usual; ``strat``, a second OpenAI fake configured as the
custom provider ``strat`` (``SWITCHBOARD_PROVIDER_STRAT_*``) for circuit and strategy tests; and
``dead``, a custom provider pointing at a closed port (connection refused).
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import (
    GatewayProc,
    Seeded,
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

#: Upstream read timeout of the gateway under test (seconds).
TIMEOUT = 1.5
CIRCUIT_THRESHOLD = 4
CIRCUIT_COOLDOWN = 2.0
ADMIN = ("root@switchboard.test", "correct horse battery staple")
SDKS = ("openai", "anthropic")

# -- seeded routing configuration ---------------------------------------------------------------

GLOBAL_ALIAS = ("team-model", "openai/gpt-alias-global")
ORG_ALIAS = ("team-model", "anthropic/claude-alias-acme")
AGENT = {
    "agent_id": "coder",
    "name": "Coder",
    "role": "writes code",
    "normal_model": "openai/gpt-coder-normal",
    "heavy_model": "anthropic/claude-coder-heavy",
    "max_model": "openai/gpt-coder-max",
}

#: Fallback triggers: (primary's scripted replies, attempts the primary gets).
TRIGGERS: dict[str, tuple[Callable[[], list[Reply]], int]] = {
    "500": (lambda: [Reply(status=500), Reply(status=500)], 2),
    "503": (lambda: [Reply(status=503), Reply(status=503)], 2),
    "429": (lambda: [Reply(status=429), Reply(status=429)], 2),
    "401": (lambda: [Reply(status=401)], 1),
    "402": (lambda: [Reply(status=402)], 1),
    "403": (lambda: [Reply(status=403)], 1),
    "timeout": (lambda: [Reply(delay=TIMEOUT + 0.6), Reply(delay=TIMEOUT + 0.6)], 2),
}
#: (trigger, sdk, stream): every trigger through both SDKs (one streaming, one not), and the
#: plain 5xx in all four combinations.
TRIGGER_CASES = [(t, "openai", False) for t in TRIGGERS] + [
    (t, "anthropic", True) for t in TRIGGERS
]
TRIGGER_CASES += [("500", "openai", True), ("500", "anthropic", False)]


def case_model(trigger: str, sdk: str, stream: bool) -> str:
    return f"gpt-fb-{trigger}-{sdk}-{'stream' if stream else 'json'}"


PRICES = {
    # cheapest: b < c < a (input + output per million tokens)
    "strat/cheap-a": ("5", "5"),
    "strat/cheap-b": ("0.5", "0.5"),
    "strat/cheap-c": ("2", "2"),
    # billing of a fallback: the primary is 10x the fallback
    "openai/gpt-charge": ("1000", "2000"),
    "openai/gpt-charge-next": ("100", "200"),
}


def chains() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for trigger, sdk, stream in TRIGGER_CASES + [("400", s, False) for s in SDKS]:
        name = case_model(trigger, sdk, stream)
        out[f"openai/{name}"] = [f"openai/{name}-next"]
    for sdk in SDKS:
        out[f"dead/m-{sdk}"] = [f"openai/gpt-conn-{sdk}-next"]
        out[f"openai/gpt-drop-{sdk}"] = [f"anthropic/claude-drop-{sdk}"]
        out[f"openai/gpt-early-{sdk}"] = [f"openai/gpt-early-{sdk}-next"]
    out["openai/gpt-retry"] = ["openai/gpt-retry-next"]
    out["openai/gpt-charge"] = ["openai/gpt-charge-next"]
    out["strat/circuit-a"] = ["strat/circuit-b"]
    for s in ("cheap", "fast", "busy", "rr"):
        out[f"strat/{s}-a"] = [f"strat/{s}-b", f"strat/{s}-c"]
    return out


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class RoutingStack:
    gateway: GatewayProc
    database_url: str
    seeded: Seeded
    openai: OpenAIFake
    anthropic: AnthropicFake
    strat: OpenAIFake
    #: A user in the first organization with a weekly cap, used only by the billing test.
    capped_user_id: int
    capped_key: str
    tmp: Path

    def reset(self) -> None:
        for fake in (self.openai, self.anthropic, self.strat):
            fake.reset()


async def seed_routing(db: str, org_id: int) -> tuple[int, str]:
    from backend.admin.bootstrap import bootstrap_super_admin
    from backend.data.models.keys import ApiKey
    from backend.data.models.routing import AgentConfig, FallbackChain, ModelAlias, ModelPrice
    from backend.data.models.tenancy import User
    from backend.security.api_keys import generate_key

    async with orm(db):
        await ModelAlias.create(requested_model=GLOBAL_ALIAS[0], target_model=GLOBAL_ALIAS[1])
        await ModelAlias.create(
            requested_model=ORG_ALIAS[0], target_model=ORG_ALIAS[1], organization_id=org_id
        )
        await AgentConfig.create(**AGENT)  # type: ignore[arg-type]
        for primary, chain in chains().items():
            await FallbackChain.create(primary_model=primary, chain=chain)
        for model, (inp, out) in PRICES.items():
            await ModelPrice.create(
                model=model, input_per_mtok=Decimal(inp), output_per_mtok=Decimal(out)
            )
        carol = await User.create(
            name="Carol",
            email=f"carol-{uuid.uuid4().hex[:6]}@acme.test",
            organization_id=org_id,
            weekly_cap_usd=Decimal("5"),
        )
        secret, prefix, digest = generate_key()
        await ApiKey.create(prefix=prefix, key_hash=digest, name="capped", user=carol)
        await bootstrap_super_admin(*ADMIN)
    return carol.id, secret


@pytest.fixture(scope="module")
async def rstack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RoutingStack]:
    tmp = tmp_path_factory.mktemp("routing")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    capped_id, capped_key = await seed_routing(db, seeded.org_id)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    strat = OpenAIFake()
    strat.start()
    # Bound but never listening: connections are refused, and no other process on the machine
    # can take the port meanwhile (a merely "free" port could be reused by then).
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    env = gateway_env(db, tmp, fakes) | {
        "SWITCHBOARD_UPSTREAM_TIMEOUT": str(TIMEOUT),
        "SWITCHBOARD_CIRCUIT_THRESHOLD": str(CIRCUIT_THRESHOLD),
        "SWITCHBOARD_CIRCUIT_COOLDOWN": str(CIRCUIT_COOLDOWN),
        "SWITCHBOARD_PROVIDER_STRAT_BASE_URL": strat.sdk_base_url,
        "SWITCHBOARD_PROVIDER_STRAT_API_KEY": "sk-strat-0123456789",
        "SWITCHBOARD_PROVIDER_DEAD_BASE_URL": f"http://127.0.0.1:{dead.getsockname()[1]}/v1",
        "SWITCHBOARD_PROVIDER_DEAD_API_KEY": "sk-dead-0123456789",
    }
    gw = GatewayProc(env, tmp / "gateway.log")
    try:
        gw.start()
        yield RoutingStack(
            gw,
            db,
            seeded,
            fakes["openai"],
            fakes["anthropic"],
            strat,
            capped_id,
            capped_key,
            tmp,
        )
    finally:
        gw.stop()
        for fake in [*fakes.values(), strat]:
            fake.stop()
        dead.close()
        await drop_database(db)


# -- calling the gateway with the official SDKs -------------------------------------------------


@dataclass
class Answer:
    text: str
    headers: Mapping[str, str]

    @property
    def request_id(self) -> str:
        return self.headers["x-request-id"]

    @property
    def model(self) -> str | None:
        return self.headers.get("x-switchboard-model")


def ask(
    stack: RoutingStack,
    sdk: str,
    model: str,
    *,
    key: str | None = None,
    stream: bool = False,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One chat call through the named SDK; SDK exceptions propagate."""
    key = key or stack.seeded.user_key
    messages: Any = [{"role": "user", "content": "hello"}]
    if sdk == "openai":
        oc = openai.OpenAI(
            base_url=stack.gateway.openai_base_url, api_key=key, max_retries=0, timeout=30
        )
        raw: Any = oc.chat.completions.with_raw_response.create(
            model=model, messages=messages, max_tokens=50, stream=stream, extra_headers=headers
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        else:
            text = raw.parse().choices[0].message.content or ""
        return Answer(text, raw.headers)
    ac = anthropic.Anthropic(base_url=stack.gateway.url, api_key=key, max_retries=0, timeout=30)
    araw: Any = ac.messages.with_raw_response.create(
        model=model, messages=messages, max_tokens=50, stream=stream, extra_headers=headers
    )
    if stream:
        text = "".join(
            ev.delta.text
            for ev in araw.parse()
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta"
        )
    else:
        msg = araw.parse()
        text = "".join(b.text for b in msg.content if b.type == "text")
    return Answer(text, araw.headers)


def status_of(err: BaseException) -> int:
    assert isinstance(err, (openai.APIStatusError, anthropic.APIStatusError))
    return err.status_code


def request_id_of(err: BaseException) -> str:
    assert isinstance(err, (openai.APIStatusError, anthropic.APIStatusError))
    return str(err.response.headers["x-request-id"])


def models_called(fake: OpenAIFake | AnthropicFake) -> list[str]:
    return [r.json["model"] for r in fake.requests if r.json and "model" in r.json]


async def request_rows(stack: RoutingStack, rid: str, count: int) -> tuple[Any, list[Any]]:
    """The request's own row and its superseded attempt rows (waiting for ``count`` rows).

    Superseded rows are queued when the fallback happens, the request's own row when it ends
    (after a stream's last event), so a flush may write them apart: wait for the own row too.
    """
    deadline = time.monotonic() + 10
    while True:
        rows = await wait_for_rows(stack.database_url, count, request_id=rid)
        own = [r for r in rows if not r.superseded]
        if own or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert len(own) == 1, [(r.actual_model, r.superseded) for r in rows]
    return own[0], [r for r in rows if r.superseded]


# -- aliases --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("who", ["user", "app", "other_org"])
async def test_org_alias_beats_global_alias_for_its_own_org_only(
    rstack: RoutingStack, sdk: str, who: str
) -> None:
    rstack.reset()
    key = {
        "user": rstack.seeded.user_key,
        "app": rstack.seeded.app_key,
        "other_org": rstack.seeded.other_key,
    }[who]
    target = GLOBAL_ALIAS[1] if who == "other_org" else ORG_ALIAS[1]
    answer = ask(rstack, sdk, "team-model", key=key, stream=sdk == "anthropic")
    assert answer.text == "ok"
    assert answer.model == target
    provider, upstream_model = target.split("/", 1)
    assert models_called(rstack.openai) + models_called(rstack.anthropic) == [upstream_model]
    assert len(getattr(rstack, provider).requests) == 1
    row, superseded = await request_rows(rstack, answer.request_id, 1)
    assert (row.requested_model, row.actual_model, row.provider) == (
        "team-model",
        target,
        provider,
    )
    assert row.status == 200 and row.attempts == 1 and not superseded


# -- agent tiers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize(
    ("model", "tier_header", "tier", "target"),
    [
        ("agent/coder", None, "normal", AGENT["normal_model"]),
        ("agent/coder:heavy", None, "heavy", AGENT["heavy_model"]),
        ("agent/coder", "max", "max", AGENT["max_model"]),
        # A suffix in the model name wins over the header.
        ("agent/coder:heavy", "max", "heavy", AGENT["heavy_model"]),
    ],
)
async def test_agent_tier_resolves_on_both_endpoints(
    rstack: RoutingStack, sdk: str, model: str, tier_header: str | None, tier: str, target: str
) -> None:
    rstack.reset()
    headers = {"x-switchboard-tier": tier_header} if tier_header else None
    answer = ask(rstack, sdk, model, headers=headers)
    assert answer.text == "ok" and answer.model == target
    assert models_called(rstack.openai) + models_called(rstack.anthropic) == [
        target.split("/", 1)[1]
    ]
    row, _ = await request_rows(rstack, answer.request_id, 1)
    assert (row.requested_model, row.actual_model) == (model, target)
    assert (row.agent_id, row.tier) == ("coder", tier)


@pytest.mark.parametrize("sdk", SDKS)
async def test_unknown_agent_and_tier_are_the_callers_mistake(
    rstack: RoutingStack, sdk: str
) -> None:
    rstack.reset()
    errors = (openai.APIStatusError, anthropic.APIStatusError)
    with pytest.raises(errors) as info:
        ask(rstack, sdk, "agent/nobody")
    assert status_of(info.value) == 404
    with pytest.raises(errors) as info:
        ask(rstack, sdk, "agent/coder:huge")
    assert status_of(info.value) == 400
    assert not rstack.openai.requests and not rstack.anthropic.requests


# -- fallback triggers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("trigger", "sdk", "stream"), TRIGGER_CASES)
async def test_fallback_trigger_moves_to_the_next_model(
    rstack: RoutingStack, trigger: str, sdk: str, stream: bool
) -> None:
    rstack.reset()
    make_replies, primary_attempts = TRIGGERS[trigger]
    name = case_model(trigger, sdk, stream)
    rstack.openai.replies.extend([*make_replies(), Reply(text="from the fallback")])
    answer = ask(rstack, sdk, f"openai/{name}", stream=stream)
    assert answer.text == "from the fallback"
    assert models_called(rstack.openai) == [name] * primary_attempts + [f"{name}-next"]
    assert answer.model == f"openai/{name}-next"
    assert answer.headers["x-switchboard-attempts"] == str(primary_attempts + 1)
    row, superseded = await request_rows(rstack, answer.request_id, primary_attempts + 1)
    assert row.status == 200 and row.streamed is stream
    assert (row.requested_model, row.actual_model) == (f"openai/{name}", f"openai/{name}-next")
    assert row.attempts == primary_attempts + 1
    assert [r.actual_model for r in superseded] == [f"openai/{name}"] * primary_attempts
    for r in superseded:
        assert r.status >= 429 and r.error_type in (
            "upstream",
            "timeout",
            "unavailable",
            "rate_limit",
        )
        assert r.cost_usd is None and r.input_tokens == r.output_tokens == 0


@pytest.mark.parametrize("sdk", SDKS)
async def test_connection_refused_moves_to_the_next_model(rstack: RoutingStack, sdk: str) -> None:
    rstack.reset()
    rstack.openai.replies.append(Reply(text="from the fallback"))
    answer = ask(rstack, sdk, f"dead/m-{sdk}", stream=sdk == "anthropic")
    assert answer.text == "from the fallback"
    assert answer.model == f"openai/gpt-conn-{sdk}-next"
    assert models_called(rstack.openai) == [f"gpt-conn-{sdk}-next"]
    row, superseded = await request_rows(rstack, answer.request_id, 2)
    assert row.status == 200 and row.actual_model == f"openai/gpt-conn-{sdk}-next"
    assert superseded and all(
        r.actual_model == f"dead/m-{sdk}" and r.status == 503 and r.error_type == "unavailable"
        for r in superseded
    )


@pytest.mark.parametrize("sdk", SDKS)
async def test_bad_request_from_upstream_does_not_fall_back(rstack: RoutingStack, sdk: str) -> None:
    rstack.reset()
    name = case_model("400", sdk, False)
    rstack.openai.replies.append(Reply(status=400, error_message="bad parameter"))
    with pytest.raises((openai.BadRequestError, anthropic.BadRequestError)) as info:
        ask(rstack, sdk, f"openai/{name}")
    assert "bad parameter" in str(info.value)
    assert models_called(rstack.openai) == [name]  # no retry, no fallback
    rid = request_id_of(info.value)
    row, superseded = await request_rows(rstack, rid, 1)
    assert row.status == 400 and row.actual_model == f"openai/{name}" and row.attempts == 1
    await asyncio.sleep(0.3)  # a superseded row would have been flushed with the request's own
    _, superseded = await request_rows(rstack, rid, 1)
    assert not superseded


# -- streams --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
async def test_stream_that_sent_bytes_does_not_fall_back(rstack: RoutingStack, sdk: str) -> None:
    rstack.reset()
    rstack.openai.replies.append(
        Reply(text="the first part and then nothing", chunks=10, drop_after=3)
    )
    got: list[str] = []
    if sdk == "openai":
        oc = openai.OpenAI(
            base_url=rstack.gateway.openai_base_url, api_key=rstack.seeded.user_key, max_retries=0
        )
        with pytest.raises(openai.APIError) as oinfo:
            for chunk in oc.chat.completions.create(
                model=f"openai/gpt-drop-{sdk}",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            ):
                got.extend(c.delta.content or "" for c in chunk.choices)
        message = str(oinfo.value)
    else:
        ac = anthropic.Anthropic(
            base_url=rstack.gateway.url, api_key=rstack.seeded.user_key, max_retries=0
        )
        with pytest.raises(anthropic.APIError) as ainfo:
            with ac.messages.stream(
                model=f"openai/gpt-drop-{sdk}",
                max_tokens=50,
                messages=[{"role": "user", "content": "hi"}],
            ) as s:
                got.extend(s.text_stream)
        message = str(ainfo.value)
    assert "".join(got) and "the first part".startswith("".join(got)[:5])
    assert "upstream" in message.lower() or "truncated" in message.lower()
    # Neither a retry of the same model nor the fallback: bytes already reached the client.
    assert models_called(rstack.openai) == [f"gpt-drop-{sdk}"]
    assert rstack.anthropic.requests == []
    rows = await wait_for_rows(rstack.database_url, 1, requested_model=f"openai/gpt-drop-{sdk}")
    assert len(rows) == 1 and not rows[0].superseded
    assert rows[0].status >= 500 and rows[0].streamed and rows[0].attempts == 1


@pytest.mark.parametrize("sdk", SDKS)
async def test_stream_failing_before_its_first_byte_falls_back(
    rstack: RoutingStack, sdk: str
) -> None:
    rstack.reset()
    # 200 and headers, then the connection drops before the first event (on both attempts).
    # The fallback is on the same provider: its success also resets the provider's breaker,
    # which counts dropped connections.
    rstack.openai.replies.extend(
        [Reply(drop_after=0), Reply(drop_after=0), Reply(text="fallback streamed", chunks=3)]
    )
    answer = ask(rstack, sdk, f"openai/gpt-early-{sdk}", stream=True)
    assert answer.text == "fallback streamed"
    assert answer.model == f"openai/gpt-early-{sdk}-next"
    assert models_called(rstack.openai) == [f"gpt-early-{sdk}"] * 2 + [f"gpt-early-{sdk}-next"]
    row, superseded = await request_rows(rstack, answer.request_id, 3)
    assert row.status == 200 and row.streamed and row.attempts == 3
    assert [r.actual_model for r in superseded] == [f"openai/gpt-early-{sdk}"] * 2


# -- bounded retries ------------------------------------------------------------------------------


async def test_bounded_retries_counted_at_the_upstream(rstack: RoutingStack) -> None:
    rstack.reset()
    rstack.openai.replies.extend([Reply(status=500) for _ in range(10)])
    with pytest.raises(openai.APIStatusError) as info:
        ask(rstack, "openai", "openai/gpt-retry")
    assert status_of(info.value) == 502
    # One retry per model, then the next model, then the last error goes back: 2 x 2 calls.
    assert models_called(rstack.openai) == ["gpt-retry"] * 2 + ["gpt-retry-next"] * 2
    assert len(rstack.openai.replies) == 6
    rid = request_id_of(info.value)
    row, superseded = await request_rows(rstack, rid, 4)
    assert row.status == 502 and row.attempts == 4
    assert row.actual_model == "openai/gpt-retry-next"
    assert len(superseded) == 3


# -- circuit breaker ------------------------------------------------------------------------------


async def test_circuit_opens_skips_the_model_and_recovers_after_cooldown(
    rstack: RoutingStack,
) -> None:
    fake = rstack.strat
    fake.reset()
    # Two requests whose primary fails twice each: the 4th consecutive failure opens it.
    for _ in range(2):
        fake.replies.extend([Reply(status=500), Reply(status=500), Reply(text="b")])
        answer = ask(rstack, "openai", "strat/circuit-a")
        assert answer.model == "strat/circuit-b"
    assert models_called(fake) == ["circuit-a", "circuit-a", "circuit-b"] * 2
    opened = time.monotonic()

    # Open: skipped without being called.
    fake.reset()
    answer = ask(rstack, "anthropic", "strat/circuit-a")
    assert answer.model == "strat/circuit-b"
    assert models_called(fake) == ["circuit-b"]
    row, superseded = await request_rows(rstack, answer.request_id, 1)
    assert row.attempts == 1 and not superseded
    assert time.monotonic() - opened < CIRCUIT_COOLDOWN, "machine too slow for this test"

    # After the cooldown one trial goes through; its success closes the circuit again.
    await asyncio.sleep(CIRCUIT_COOLDOWN + 0.3 - (time.monotonic() - opened))
    fake.reset()
    answer = ask(rstack, "openai", "strat/circuit-a")
    assert answer.model == "strat/circuit-a"
    assert models_called(fake) == ["circuit-a"]
    answer = ask(rstack, "anthropic", "strat/circuit-a", stream=True)
    assert answer.model == "strat/circuit-a"
    assert models_called(fake) == ["circuit-a", "circuit-a"]


# -- billing --------------------------------------------------------------------------------------


async def test_fallback_bills_only_the_answering_attempt(rstack: RoutingStack) -> None:
    from backend.data.models.logs import SpendCounter, UsageRollup

    rstack.reset()
    rstack.openai.replies.extend(
        [
            Reply(status=500),
            Reply(status=500),
            Reply(text="paid", input_tokens=1000, output_tokens=500),
        ]
    )
    answer = ask(rstack, "anthropic", "openai/gpt-charge", key=rstack.capped_key)
    assert answer.text == "paid" and answer.model == "openai/gpt-charge-next"
    row, superseded = await request_rows(rstack, answer.request_id, 3)
    # 1000 x $100/M + 500 x $200/M; the primary's price would have been ten times that.
    expected = Decimal("0.2")
    assert Decimal(row.cost_usd) == expected
    assert (row.input_tokens, row.output_tokens) == (1000, 500)
    assert len(superseded) == 2
    assert all(r.cost_usd is None and r.status == 502 for r in superseded)

    deadline = time.monotonic() + 10
    spent: Decimal | None = None
    while time.monotonic() < deadline:
        async with orm(rstack.database_url):
            counters = await SpendCounter.filter(scope="user", scope_id=rstack.capped_user_id)
            rollups = await UsageRollup.filter(user_id=rstack.capped_user_id)
        if counters and rollups:
            spent = sum((Decimal(c.spent_usd) for c in counters), Decimal(0))
            if spent == expected:
                break
        await asyncio.sleep(0.1)
    assert spent == expected
    assert sum(r.requests for r in rollups) == 1
    assert sum((Decimal(r.cost_usd) for r in rollups), Decimal(0)) == expected


# -- run-time changes through the GraphQL admin API -----------------------------------------------


def graphql(stack: RoutingStack, token: str, query: str, **variables: Any) -> dict[str, Any]:
    resp = httpx.post(
        f"{stack.gateway.url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    body = resp.json()
    assert resp.status_code == 200 and not body.get("errors"), body
    return dict(body["data"])


@pytest.fixture(scope="module")
def admin_token(rstack: RoutingStack) -> str:
    resp = httpx.post(
        f"{rstack.gateway.url}/graphql",
        json={
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) "
            "{ token } }",
            "variables": {"e": ADMIN[0], "p": ADMIN[1]},
        },
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["data"]["login"]["token"])


@pytest.fixture
def set_strategy(rstack: RoutingStack, admin_token: str) -> Iterator[Callable[[str], None]]:
    """Switch the routing strategy at run time; puts ``ordered`` back afterwards."""

    def switch(name: str) -> None:
        enum_name = name.upper().replace("-", "_")  # the GraphQL name of a stored strategy
        data = graphql(
            rstack,
            admin_token,
            "mutation($s: RoutingStrategy!) { setRoutingStrategy(strategy: $s) "
            "{ routingStrategy } }",
            s=enum_name,
        )
        assert data["setRoutingStrategy"]["routingStrategy"] == enum_name

    yield switch
    switch("ordered")


async def test_alias_created_at_run_time_applies_to_the_next_request(
    rstack: RoutingStack, admin_token: str
) -> None:
    rstack.reset()
    data = graphql(
        rstack,
        admin_token,
        'mutation($o: Int) { createModelAlias(input: {requestedModel: "live-alias", '
        'targetModel: "openai/gpt-live", organizationId: $o}) { id } }',
        o=rstack.seeded.org_id,
    )
    assert data["createModelAlias"]["id"]
    assert ask(rstack, "anthropic", "live-alias").model == "openai/gpt-live"
    with pytest.raises(openai.NotFoundError):  # an alias of another organization
        ask(rstack, "openai", "live-alias", key=rstack.seeded.other_key)
    assert models_called(rstack.openai) == ["gpt-live"]


# -- routing strategies ---------------------------------------------------------------------------


def walk(stack: RoutingStack, primary: str, *, reset: bool = True) -> list[str]:
    """The order the gateway tries ``primary``'s candidates, as seen at the upstream.

    Every candidate but the last refuses with 402 (a billing refusal: no same-model retry, on to
    the next candidate), so one request walks the whole ordered list once.
    """
    fake = stack.strat
    if reset:
        fake.reset()
    seen = len(fake.requests)
    fake.replies.extend([Reply(status=402), Reply(status=402), Reply(text="last")])
    answer = ask(stack, "openai", primary)
    order = models_called(fake)[seen:]
    assert answer.model == f"strat/{order[-1]}" and len(order) == 3
    return order


def answering(stack: RoutingStack, primary: str, delay: float = 0.0) -> str | None:
    stack.strat.reset()
    stack.strat.replies.append(Reply(delay=delay))
    answer = ask(stack, "openai", primary)
    assert len(stack.strat.requests) == 1
    return answer.model


async def test_ordered_and_cheapest_and_a_switch_applies_to_the_next_request(
    rstack: RoutingStack, set_strategy: Callable[[str], None]
) -> None:
    set_strategy("ordered")
    assert walk(rstack, "strat/cheap-a") == ["cheap-a", "cheap-b", "cheap-c"]
    set_strategy("cheapest")  # prices: b 0.5+0.5 < c 2+2 < a 5+5
    assert walk(rstack, "strat/cheap-a") == ["cheap-b", "cheap-c", "cheap-a"]
    assert answering(rstack, "strat/cheap-a") == "strat/cheap-b"
    set_strategy("ordered")
    assert answering(rstack, "strat/cheap-a") == "strat/cheap-a"
    set_strategy("cheapest")
    answer = ask(rstack, "anthropic", "strat/cheap-a")
    assert answer.model == "strat/cheap-b"
    row, _ = await request_rows(rstack, answer.request_id, 1)
    # Billed at the answering model's price: (10 + 5 tokens) x $0.5 per million.
    assert Decimal(row.cost_usd) == Decimal("0.0000075")


async def test_fastest_measures_first_then_orders_by_latency(
    rstack: RoutingStack, set_strategy: Callable[[str], None]
) -> None:
    set_strategy("fastest")
    latency = {"fast-a": 0.7, "fast-b": 0.0, "fast-c": 0.35}
    # Models never measured go first, in configured order, so each one gets measured.
    for name in ("fast-a", "fast-b", "fast-c"):
        assert answering(rstack, "strat/fast-a", latency[name]) == f"strat/{name}"
    assert walk(rstack, "strat/fast-a") == ["fast-b", "fast-c", "fast-a"]


async def test_least_busy_prefers_models_with_fewer_requests_in_flight(
    rstack: RoutingStack, set_strategy: Callable[[str], None]
) -> None:
    set_strategy("least-busy")
    fake = rstack.strat
    fake.reset()
    fake.replies.extend([Reply(text="held", delay=1.0) for _ in range(3)])
    with ThreadPoolExecutor(3) as pool:
        # In flight: busy-a once (nothing busy yet, so the primary), busy-b twice (direct).
        held = [pool.submit(ask, rstack, "openai", "strat/busy-a")]
        wait_until(lambda: len(fake.requests) == 1)
        held += [pool.submit(ask, rstack, "openai", "strat/busy-b") for _ in range(2)]
        wait_until(lambda: len(fake.requests) == 3)
        order = walk(rstack, "strat/busy-a", reset=False)
        answers = [f.result().model for f in held]
    assert order == ["busy-c", "busy-a", "busy-b"]
    assert answers == ["strat/busy-a", "strat/busy-b", "strat/busy-b"]
    # Nothing in flight any more: back to the configured order.
    assert walk(rstack, "strat/busy-a") == ["busy-a", "busy-b", "busy-c"]


async def test_round_robin_rotates_the_candidates(
    rstack: RoutingStack, set_strategy: Callable[[str], None]
) -> None:
    set_strategy("round-robin")
    got = [answering(rstack, "strat/rr-a") for _ in range(4)]
    assert got == ["strat/rr-a", "strat/rr-b", "strat/rr-c", "strat/rr-a"]
    assert walk(rstack, "strat/rr-a") == ["rr-b", "rr-c", "rr-a"]


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
