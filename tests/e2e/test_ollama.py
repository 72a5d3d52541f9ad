"""Ollama through the real gateway: discovery against the fake Ollama (``/api/tags``), models
listed as ``ollama/<name>`` in both protocols, zero cost in the log, and an unreachable Ollama that
is marked unhealthy without slowing requests to other providers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import Stack, gateway_env
from tests.e2e.harness import GatewayProc, orm, wait_for_rows
from tests.fakes.base import Reply

DISCOVERED = {"ollama/llama3.2", "ollama/qwen3:8b", "ollama/nomic-embed-text"}


def model_ids(gateway: GatewayProc, key: str, protocol: str) -> set[str]:
    if protocol == "openai":
        client = openai.OpenAI(base_url=gateway.openai_base_url, api_key=key, max_retries=0)
        return {m.id for m in client.models.list()}
    aclient = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    return {m.id for m in aclient.models.list()}


async def wait_for_models(
    gateway: GatewayProc, key: str, wanted: set[str], timeout: float = 10
) -> set[str]:
    deadline = time.monotonic() + timeout
    ids: set[str] = set()
    while time.monotonic() < deadline:
        ids = model_ids(gateway, key, "openai")
        if wanted <= ids:
            break
        await asyncio.sleep(0.1)
    return ids


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_discovered_models_are_listed(stack: Stack, protocol: str) -> None:
    await wait_for_models(stack.gateway, stack.seeded.user_key, DISCOVERED)
    ids = model_ids(stack.gateway, stack.seeded.user_key, protocol)
    assert DISCOVERED <= ids
    # ``x:latest`` is listed once, without the tag (Ollama treats both names alike).
    assert "ollama/llama3.2:latest" not in ids
    assert not any(i.startswith("ollama/") for i in ids - DISCOVERED)


@pytest.mark.parametrize(
    ("sdk", "model", "stream"),
    [
        ("openai", "ollama/llama3.2", False),
        ("anthropic", "ollama/qwen3:8b", True),
        # A bare name of a discovered model is routed to Ollama.
        ("openai", "qwen3:8b", True),
    ],
)
async def test_ollama_answers_cost_zero(stack: Stack, sdk: str, model: str, stream: bool) -> None:
    await wait_for_models(stack.gateway, stack.seeded.user_key, DISCOVERED)
    stack.reset()
    stack.ollama.replies.append(Reply(text="local answer", input_tokens=123, output_tokens=45))
    messages: Any = [{"role": "user", "content": "hi"}]
    if sdk == "openai":
        client = openai.OpenAI(
            base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
        )
        extra: Any = {"stream_options": {"include_usage": True}} if stream else {}
        raw: Any = client.chat.completions.with_raw_response.create(
            model=model, messages=messages, stream=stream, **extra
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        else:
            text = raw.parse().choices[0].message.content or ""
        headers = raw.headers
    else:
        aclient = anthropic.Anthropic(
            base_url=stack.gateway.url, api_key=stack.seeded.user_key, max_retries=0
        )
        with aclient.messages.stream(model=model, max_tokens=50, messages=messages) as s:
            text = "".join(s.text_stream)
            headers = s.response.headers
    assert text == "local answer"
    name = model.removeprefix("ollama/")
    assert [r.json["model"] for r in stack.ollama.requests] in ([name], [f"{name}:latest"])
    assert headers["x-switchboard-model"] == f"ollama/{name}"
    rows = await wait_for_rows(stack.database_url, 1, request_id=headers["x-request-id"])
    row = rows[0]
    assert (row.provider, row.actual_model, row.requested_model) == (
        "ollama",
        f"ollama/{name}",
        model,
    )
    assert (row.input_tokens, row.output_tokens) == (123, 45)
    # Zero, not "unknown": Ollama models are free.
    assert row.cost_usd is not None and Decimal(row.cost_usd) == 0


# -- an Ollama that cannot be reached -------------------------------------------------------------


@pytest.fixture
def unreachable_gateway(stack: Stack) -> Iterator[GatewayProc]:
    """A second gateway on the same database whose Ollama is a closed port."""
    # Bound but never listening: connections are refused and no other process can take it.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    fakes: dict[str, object] = stack.fakes()
    env = gateway_env(stack.database_url, stack.tmp, fakes) | {
        "OLLAMA_BASE_URL": f"http://127.0.0.1:{closed.getsockname()[1]}",
    }
    gw = GatewayProc(env, stack.tmp / "gateway-no-ollama.log")
    try:
        yield gw.start()
    finally:
        gw.stop()
        closed.close()


@pytest.mark.serial
async def test_unreachable_ollama_is_unhealthy_and_slows_nothing(
    stack: Stack, unreachable_gateway: GatewayProc
) -> None:
    gw = unreachable_gateway
    key = stack.seeded.user_key
    stack.reset()
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0, timeout=10)
    messages: Any = [{"role": "user", "content": "hi"}]

    # Ollama's models are skipped at once (no connection attempt per request): 503, fast.
    deadline = time.monotonic() + 10
    while True:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="ollama/llama3.2", messages=messages)
        elapsed = time.monotonic() - started
        if "unavailable" in str(info.value).lower() or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert info.value.status_code == 503
    assert elapsed < 1.0

    # Other providers are not slowed down by it.
    latencies = []
    for _ in range(5):
        started = time.monotonic()
        resp = client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
        latencies.append(time.monotonic() - started)
        assert resp.choices[0].message.content == "ok"
    assert max(latencies) < 1.0, latencies

    ids = model_ids(gw, key, "openai")
    assert "openai/gpt-4o-mini" in ids
    assert not any(i.startswith("ollama/") for i in ids)
    # The healthy gateway next to it still lists them.
    assert DISCOVERED <= model_ids(stack.gateway, key, "anthropic")

    # The admin API shows the state: Ollama down here (its requests failed), OpenAI healthy...
    token = await admin_token(stack, gw)
    assert await provider_health(gw, token, "ollama") == "DOWN"
    assert await provider_health(gw, token, "openai") == "HEALTHY"
    # ...and each gateway's own discovery: failed here, answered on the other one. (Its load
    # badge reads the shared log, where this gateway's failed Ollama requests now are.)
    settings = "{ gatewaySettings { ollama { healthy } } }"
    assert graphql(gw, token, settings)["gatewaySettings"]["ollama"]["healthy"] is False
    assert graphql(stack.gateway, token, settings)["gatewaySettings"]["ollama"]["healthy"] is True
    catalog = graphql(gw, token, "{ modelCatalog { model reachable } }")["modelCatalog"]
    assert not [m for m in catalog if m["model"].startswith("ollama/") and m["reachable"]]


# -- the admin API --------------------------------------------------------------------------------

ADMIN = ("ops@switchboard.test", "correct horse battery staple")


def graphql(gateway: GatewayProc, token: str | None, query: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    resp = httpx.post(f"{gateway.url}/graphql", json={"query": query}, headers=headers, timeout=30)
    body = resp.json()
    assert resp.status_code == 200 and not body.get("errors"), body
    return dict(body["data"])


async def admin_token(stack: Stack, gateway: GatewayProc) -> str:
    from backend.admin.bootstrap import bootstrap_super_admin

    async with orm(stack.database_url):
        await bootstrap_super_admin(*ADMIN)
    query = f'mutation {{ login(email: "{ADMIN[0]}", password: "{ADMIN[1]}") {{ token }} }}'
    return str(graphql(gateway, None, query)["login"]["token"])


async def provider_health(gateway: GatewayProc, token: str, provider: str) -> str | None:
    """The provider's health on the dashboard, once a request to it was logged."""
    deadline = time.monotonic() + 10
    while True:
        data = graphql(
            gateway, token, "{ dashboard { providerLoad(hours: 1) { provider health } } }"
        )
        found = {r["provider"]: r["health"] for r in data["dashboard"]["providerLoad"]}
        if provider in found or time.monotonic() > deadline:
            return found.get(provider)
        await asyncio.sleep(0.2)


async def test_models_endpoint_needs_a_key(stack: Stack) -> None:
    resp = httpx.get(f"{stack.gateway.url}/v1/models", timeout=10)
    assert resp.status_code == 401
