"""Shared by the routing e2e modules (``test_routing.py``: where a request goes; and
``test_routing_fallback.py``: what happens when the model fails): the seeded routing
configuration, the gateway stack, and SDK calls.

Everything the gateway needs is seeded before it starts (aliases, agents, chains, prices); only
the routing strategy changes at run time, through the GraphQL admin API. Every test uses its own
model names, so breakers and latency/in-flight statistics never leak from one test into another
(the fakes answer any model name and record which one they were asked for).

Fakes: ``openai`` and ``anthropic`` as usual; ``strat``, a second OpenAI fake configured as the
custom provider ``strat`` (``SWITCHBOARD_PROVIDER_STRAT_*``) for circuit and strategy tests; and
``dead``, a custom provider pointing at a closed port (connection refused).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import (
    GatewayProc,
    Seeded,
    fake_upstreams,
    orm,
    prepare_database,
    seed_basic,
)
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
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
    # an alias created at run time must target a model the catalog knows: a price makes it so
    "openai/gpt-live": ("1", "1"),
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
    """A fresh database seeded for routing, the fakes, and the gateway: a test module's stack
    (import it as ``from tests.e2e.routing_support import rstack as rstack``)."""
    tmp = tmp_path_factory.mktemp("routing")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    capped_id, capped_key = await seed_routing(db, seeded.org_id)
    try:
        with fake_upstreams() as fakes:
            async with _routing_gateway(tmp, db, seeded, fakes, capped_id, capped_key) as stack:
                yield stack
    finally:
        await drop_database(db)


@asynccontextmanager
async def _routing_gateway(
    tmp: Path, db: str, seeded: Seeded, fakes: dict[str, Any], capped_id: int, capped_key: str
) -> AsyncIterator[RoutingStack]:
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
        strat.stop()
        dead.close()


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
        with openai.OpenAI(
            base_url=stack.gateway.openai_base_url, api_key=key, max_retries=0, timeout=30
        ) as oc:
            raw: Any = oc.chat.completions.with_raw_response.create(
                model=model, messages=messages, max_tokens=50, stream=stream, extra_headers=headers
            )
            if stream:
                text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
            else:
                text = raw.parse().choices[0].message.content or ""
        return Answer(text, raw.headers)
    with anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=key, max_retries=0, timeout=30
    ) as ac:
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
