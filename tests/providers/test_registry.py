"""ProviderRegistry: rebuild only what changed, swap atomically, drain the old client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    TextPart,
    Usage,
)
from backend.ir.errors import NotFound, ProviderNotConfigured
from backend.ir.stream import StreamEnd, StreamEvent, StreamStart, TextDelta
from backend.providers.base import ProviderConfig
from backend.providers.http import Upstream as HttpUpstream
from backend.providers.registry import ProviderFactory, ProviderRegistry, default_factories
from tests.fakes.base import Reply
from tests.fakes.openai_fake import OpenAIFake

REQ = ChatRequest(model="m", messages=[Message("user", [TextPart("hi")])])


class Upstream:
    """An in-memory HTTP upstream; ``/slow`` and ``/stream`` wait for ``gate``."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.seen_keys: list[str] = []
        self.clients: list[HttpUpstream] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("authorization", "")
        self.seen_keys.append(key)
        if request.url.path == "/slow":
            await self.gate.wait()
        if request.url.path == "/stream":
            return httpx.Response(200, content=self._chunks(key))
        return httpx.Response(200, text=key)

    async def _chunks(self, key: str) -> AsyncIterator[bytes]:
        yield b"first\n"
        await self.gate.wait()
        yield f"{key}\n".encode()

    def client(self, config: ProviderConfig) -> HttpUpstream:
        client = HttpUpstream("http://upstream", transport=httpx.MockTransport(self.handle))
        self.clients.append(client)
        return client


class FakeProvider:
    built = 0

    def __init__(self, config: ProviderConfig, client: HttpUpstream) -> None:
        self.config = config
        self.client = client
        FakeProvider.built += 1

    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.config.api_key}"}

    async def chat(self, req: ChatRequest, model: str) -> ChatResponse:
        path = "/slow" if model == "slow" else "/fast"
        r = await self.client.post(path, headers=self._auth())
        return ChatResponse("id", model, [TextPart(r.text)], "stop", Usage())

    async def stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        async with self.client.stream("POST", "/stream", headers=self._auth()) as r:
            yield StreamStart("id", model)
            async for line in r.aiter_lines():
                yield TextDelta(0, line)
        yield StreamEnd("stop", Usage())

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        return EmbeddingResponse(model, [], Usage())

    async def count_tokens(self, req: ChatRequest, model: str) -> int:
        return 1

    async def list_models(self) -> list[str]:
        return ["m"]


class BrokenProvider:
    def __init__(self, config: ProviderConfig, client: HttpUpstream) -> None:
        raise RuntimeError(f"cannot start with key {config.api_key}")


def cfg(name: str, key: str | None = "k1", kind: str = "openai", **kw: object) -> ProviderConfig:
    return ProviderConfig(name=name, kind=kind, base_url="http://upstream", api_key=key, **kw)  # type: ignore[arg-type]


def registry(
    up: Upstream, close_grace_s: float = 0.0, drain_timeout_s: float = 900.0
) -> ProviderRegistry:
    factories: dict[str, ProviderFactory] = {
        "openai": FakeProvider,
        "anthropic": FakeProvider,
        "gemini": BrokenProvider,  # type: ignore[dict-item]
    }
    return ProviderRegistry(
        factories,
        client_factory=up.client,
        close_grace_s=close_grace_s,
        drain_timeout_s=drain_timeout_s,
    )


async def test_apply_builds_then_rebuilds_only_changed_providers() -> None:
    up = Upstream()
    reg = registry(up)
    changed = await reg.apply(
        {"openai": cfg("openai"), "anthropic": cfg("anthropic", kind="anthropic")}
    )
    assert changed == {"openai", "anthropic"}
    assert reg.names() == ["anthropic", "openai"]
    anthropic_client = reg.get("anthropic").client  # type: ignore[attr-defined]
    openai_client = reg.get("openai").client  # type: ignore[attr-defined]

    changed = await reg.apply(
        {"openai": cfg("openai", key="k2"), "anthropic": cfg("anthropic", kind="anthropic")}
    )
    assert changed == {"openai"}
    assert reg.get("anthropic").client is anthropic_client  # type: ignore[attr-defined]
    assert reg.get("openai").client is not openai_client  # type: ignore[attr-defined]
    assert reg.config("openai").api_key == "k2"
    await reg.wait_retired()
    assert openai_client.is_closed
    assert not anthropic_client.is_closed

    # The same configs again: nothing rebuilt.
    before = FakeProvider.built
    assert (
        await reg.apply(
            {"openai": cfg("openai", key="k2"), "anthropic": cfg("anthropic", kind="anthropic")}
        )
        == set()
    )
    assert FakeProvider.built == before
    await reg.close()
    assert all(c.is_closed for c in up.clients)


async def test_in_flight_call_finishes_on_the_old_client() -> None:
    up = Upstream()
    reg = registry(up)
    await reg.apply({"openai": cfg("openai", key="old")})
    old_client = up.clients[-1]

    call = asyncio.create_task(reg.get("openai").chat(REQ, "slow"))
    await asyncio.sleep(0.05)  # the request is now waiting upstream
    await reg.apply({"openai": cfg("openai", key="new")})

    # New requests go to the new client straight away...
    fast = await reg.get("openai").chat(REQ, "fast")
    assert fast.content == [TextPart("Bearer new")]
    # ...while the old one stays open for the request still running on it.
    await asyncio.sleep(0.05)
    assert not old_client.is_closed
    up.gate.set()
    resp = await call
    assert resp.content == [TextPart("Bearer old")]
    await reg.wait_retired()
    assert old_client.is_closed
    await reg.close()


async def test_in_flight_stream_and_use_block_hold_the_old_client() -> None:
    up = Upstream()
    reg = registry(up)
    await reg.apply({"openai": cfg("openai", key="old")})
    old_client = up.clients[-1]

    async with reg.use("openai") as provider:
        events = provider.stream(REQ, "m")
        first = await events.__anext__()
        assert isinstance(first, StreamStart)
        await reg.apply({"openai": cfg("openai", key="new")})
        await asyncio.sleep(0.05)
        assert not old_client.is_closed
        up.gate.set()
        rest = [ev async for ev in events]
        assert TextDelta(0, "Bearer old") in rest
        assert isinstance(rest[-1], StreamEnd)
        await asyncio.sleep(0.05)
        assert not old_client.is_closed  # the ``use`` block still holds it
    await reg.wait_retired()
    assert old_client.is_closed
    await reg.close()


async def test_grace_period_delays_closing_an_idle_retired_client() -> None:
    up = Upstream()
    reg = registry(up, close_grace_s=0.3)
    await reg.apply({"openai": cfg("openai", key="old")})
    old_client = up.clients[-1]
    stale = reg.get("openai")  # taken just before the swap, called just after
    await reg.apply({"openai": cfg("openai", key="new")})
    assert (await stale.chat(REQ, "fast")).content == [TextPart("Bearer old")]
    await asyncio.sleep(0.1)
    assert not old_client.is_closed
    await reg.wait_retired()
    assert old_client.is_closed
    await reg.close()


async def test_a_stuck_holder_cannot_pin_the_old_client_forever() -> None:
    up = Upstream()
    reg = registry(up, drain_timeout_s=0.2)
    await reg.apply({"openai": cfg("openai", key="old")})
    old_client = up.clients[-1]
    call = asyncio.create_task(reg.get("openai").chat(REQ, "slow"))
    await asyncio.sleep(0.05)
    await reg.apply({"openai": cfg("openai", key="new")})
    await asyncio.wait_for(reg.wait_retired(), 2)
    assert old_client.is_closed
    call.cancel()
    await reg.close()


async def test_errors_for_unknown_unconfigured_disabled_and_broken() -> None:
    up = Upstream()
    reg = registry(up)
    await reg.apply(
        {
            "openai": cfg("openai", key="sk-secret-openai", enabled=False),
            "gemini": cfg("gemini", key="sk-secret-gemini", kind="gemini"),
            "custom": cfg("custom", key="sk-secret-custom", kind="nonsense"),
            "ok": cfg("ok"),
        },
        {"anthropic": "credential for 'provider:anthropic' failed authentication"},
    )
    assert reg.names() == ["ok"]
    assert set(reg.configured()) == {"ok"}

    cases = {
        "nosuch": (NotFound, "provider_not_found", "unknown provider"),
        "azure": (ProviderNotConfigured, "provider_not_configured", "set AZURE_OPENAI_API_KEY"),
        "openai": (ProviderNotConfigured, "provider_disabled", "disabled"),
        "anthropic": (ProviderNotConfigured, "provider_misconfigured", "failed authentication"),
        "gemini": (ProviderNotConfigured, "provider_misconfigured", "failed to start (Runtime"),
        "custom": (ProviderNotConfigured, "provider_misconfigured", "no adapter for provider kind"),
    }
    for name, (exc_type, code, text) in cases.items():
        with pytest.raises(exc_type) as exc:
            reg.get(name)
        assert type(exc.value) is exc_type and exc.value.code == code
        assert text in exc.value.message
        assert "sk-secret" not in exc.value.message
        with pytest.raises(exc_type):
            async with reg.use(name):
                pass
        with pytest.raises(exc_type):
            reg.require(name)
    assert reg.errors()["gemini"].endswith("(RuntimeError)")
    assert "sk-secret" not in repr(reg.errors())
    # Configuration is nothing to retry: fallback skips it, clients are told not to retry.
    err = ProviderNotConfigured("x")
    assert not err.retryable and err.status == 404 and err.headers == {"x-should-retry": "false"}

    # Fixed: a broken provider comes back on the next apply.
    await reg.apply({"ok": cfg("ok"), "anthropic": cfg("anthropic", kind="anthropic")})
    assert reg.names() == ["anthropic", "ok"]
    with pytest.raises(ProviderNotConfigured, match="not configured"):
        reg.get("openai")
    await reg.close()
    assert all(c.is_closed for c in up.clients)  # incl. the one the broken adapter never used


async def test_removed_provider_is_closed_and_reported() -> None:
    up = Upstream()
    reg = registry(up)
    await reg.apply({"openai": cfg("openai")})
    client = up.clients[-1]
    assert await reg.apply({}) == {"openai"}
    with pytest.raises(ProviderNotConfigured):
        reg.get("openai")
    await reg.wait_retired()
    assert client.is_closed
    await reg.close()


async def test_counted_wrapper_passes_every_operation_through() -> None:
    up = Upstream()
    reg = registry(up)
    await reg.apply({"openai": cfg("openai")})
    p = reg.get("openai")
    assert p.config.name == "openai"
    assert await p.count_tokens(REQ, "m") == 1
    assert await p.list_models() == ["m"]
    assert (await p.embed(EmbeddingRequest("e", ["x"]), "e")).model == "e"
    await reg.close()


async def test_credential_change_reaches_a_real_upstream_through_default_adapters() -> None:
    """The production path: default adapters, aiohttp-backed clients, a real HTTP server."""
    with OpenAIFake() as fake:
        reg = ProviderRegistry(default_factories(), close_grace_s=0)
        base = ProviderConfig("openai", "openai", fake.sdk_base_url, api_key="sk-old-1111")
        await reg.apply({"openai": base})
        fake.replies.append(Reply(text="slow answer", delay=0.5))
        slow = asyncio.create_task(reg.get("openai").chat(REQ, "gpt-4o-mini"))
        await asyncio.sleep(0.2)

        await reg.apply(
            {"openai": ProviderConfig("openai", "openai", fake.sdk_base_url, api_key="sk-new-2222")}
        )
        fast = await reg.get("openai").chat(REQ, "gpt-4o-mini")
        assert fast.content
        resp = await slow  # would fail if its connection pool had been closed under it
        assert isinstance(resp.content[0], TextPart) and resp.content[0].text == "slow answer"
        auth = [r.headers.get("authorization") for r in fake.requests]
        assert auth == ["Bearer sk-old-1111", "Bearer sk-new-2222"]
        await reg.close()


async def test_a_configuration_problem_is_logged_once_per_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg = registry(Upstream())
    await reg.apply({"ok": cfg("ok"), "openai": cfg("openai", enabled=False)})

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    with caplog.at_level(logging.WARNING, logger="switchboard.providers"):
        for _ in range(10):
            for name in ("azure", "openai", "nosuch"):
                with pytest.raises(NotFound):
                    reg.get(name)
        assert len(warnings()) == 2
        assert "provider 'azure' is not configured: set AZURE_OPENAI_API_KEY" in warnings()[0]
        assert "provider 'openai' is disabled" in warnings()[1]
        # An unrelated change does not repeat them; a new cause is told once again.
        await reg.apply({"ok": cfg("ok", key="other"), "openai": cfg("openai", enabled=False)})
        reg.get("ok")
        with pytest.raises(ProviderNotConfigured):
            reg.get("openai")
        assert len(warnings()) == 2
        await reg.apply({"ok": cfg("ok")})
        for _ in range(3):
            with pytest.raises(ProviderNotConfigured):
                reg.get("openai")
        assert len(warnings()) == 3 and "'openai' is not configured" in warnings()[2]
    await reg.close()
