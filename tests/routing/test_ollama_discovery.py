"""Ollama discovery against a fake Ollama: models appear at $0, unreachable is quick and down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from backend.routing.fallback import run_with_fallback
from backend.routing.ollama_discovery import OllamaDiscovery, discover, fetch_tags, tags_url
from backend.routing.router import Router
from backend.state.snapshot import RoutingConfig
from tests.fakes.base import free_port
from tests.fakes.ollama_fake import OllamaFake


@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaFake]:
    fake = OllamaFake()
    with fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
async def hanging_url() -> AsyncIterator[str]:
    """A server that accepts connections and never answers (a blackholed Ollama)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    for w in held:
        w.close()
    server.close()
    await server.wait_closed()


def test_tags_url() -> None:
    assert tags_url("http://h:11434/") == "http://h:11434/api/tags"
    assert tags_url("http://h:11434/v1") == "http://h:11434/api/tags"


async def test_models_appear_with_zero_cost(ollama: OllamaFake, client: httpx.AsyncClient) -> None:
    assert await discover(client, ollama.base_url) == [
        "llama3.2:latest",
        "qwen3:8b",
        "nomic-embed-text:latest",
    ]
    router = Router()
    discovery = OllamaDiscovery(client, ollama.base_url, router)
    await discovery.refresh_now()
    assert router.ollama_status()["healthy"] is True
    entries = {e.model: e for e in router.catalog(["ollama"])}
    assert set(entries) == {"ollama/llama3.2", "ollama/qwen3:8b", "ollama/nomic-embed-text"}
    for e in entries.values():
        assert (e.source, e.reachable, e.input_per_mtok, e.output_per_mtok) == (
            "ollama",
            True,
            0,
            0,
        )
    # Discovered names are routable by bare name.
    assert router.resolve("qwen3:8b", None, RoutingConfig()).primary == "ollama/qwen3:8b"


async def test_refresh_now_picks_up_changes(ollama: OllamaFake, client: httpx.AsyncClient) -> None:
    router = Router()
    url: dict[str, str | None] = {"value": ollama.base_url}
    discovery = OllamaDiscovery(client, lambda: url["value"], router)
    original = list(ollama.models)
    try:
        ollama.models.append("mistral:7b")
        assert "mistral:7b" in await discovery.refresh_now()
        assert "ollama/mistral:7b" in router.ollama_status()["models"]
    finally:
        ollama.models[:] = original
    url["value"] = None  # Ollama unconfigured: no models, no health state
    assert await discovery.refresh_now() == []
    assert router.ollama_status()["healthy"] is None and router.ollama_models() == []


async def test_unreachable_ollama_is_quick_and_unhealthy(client: httpx.AsyncClient) -> None:
    router = Router()
    router.set_ollama_models(["llama3.2:latest"], healthy=True)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    assert await OllamaDiscovery(client, dead, router).refresh_now() == []
    assert time.monotonic() - started < 2.5
    status = router.ollama_status()
    assert status["healthy"] is False and "connection failed" in status["error"]
    assert status["models"] == ["ollama/llama3.2"]  # last known, shown unreachable
    assert await discover(client, dead) == []


@pytest.mark.serial
async def test_hanging_ollama_is_bounded_by_the_timeout(
    client: httpx.AsyncClient, hanging_url: str
) -> None:
    router = Router()
    started = time.monotonic()
    assert await OllamaDiscovery(client, hanging_url, router).refresh_now() == []
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 2.5  # the default 2 s bound, end to end
    assert router.ollama_status()["healthy"] is False
    with pytest.raises(Exception, match=r"no answer within 0\.2s"):
        await fetch_tags(client, hanging_url, timeout_s=0.2)


async def test_background_refresh_never_slows_requests(
    client: httpx.AsyncClient, hanging_url: str, ollama: OllamaFake
) -> None:
    router = Router()
    discovery = OllamaDiscovery(client, hanging_url, router, interval_s=0.05)
    discovery.start()
    try:
        # While the probe hangs in the background, a request resolves and runs at once.
        started = time.monotonic()
        res = router.resolve("gpt-4o-mini", None, RoutingConfig())

        async def answer(model: str, n: int) -> str:
            return "ok"

        result, model, _ = await run_with_fallback(res.candidates, answer, router_state=router)
        assert (result, model) == ("ok", "openai/gpt-4o-mini")
        assert time.monotonic() - started < 0.2
    finally:
        await discovery.stop()

    # The loop publishes results on its own.
    discovery = OllamaDiscovery(client, ollama.base_url, router, interval_s=0.05)
    discovery.start()
    try:
        for _ in range(100):
            if router.ollama_status()["healthy"]:
                break
            await asyncio.sleep(0.02)
        assert router.ollama_status()["healthy"] is True
    finally:
        await discovery.stop()
