"""Configuration errors are not outages (issue 16 item 4, must-show 4).

A model of a provider without credentials, or of a disabled provider, gets a 404 in the caller's
protocol with ``x-should-retry: false``: the official SDKs (default retries on) send each call
once, fallback skips the candidate, and no circuit breaker ever opens for it. A circuit that does
open for a real failure says what that failure was.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from backend.data.models.routing import FallbackChain
from backend.data.models.settings import ProviderCredential
from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import Stack, gateway_env
from tests.e2e.harness import GatewayProc, orm, prepare_database, seed_basic, wait_for_rows
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake

UNCONFIGURED = "azure/gpt-4o-mini"
WITH_FALLBACK = "azure/with-fallback"
CONFIGURED = "openai/gpt-4o-mini"
DISABLED = "gemini/gemini-2.5-flash"
CALLS = 10


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The usual stack, plus a fallback chain from Azure and Gemini disabled by its row.

    Azure has a base URL (the OpenAI fake) but no key: were the gateway to call it anyway, the
    fake would see the request.
    """
    tmp = tmp_path_factory.mktemp("config-errors")
    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    async with orm(db):
        await FallbackChain.create(primary_model=WITH_FALLBACK, chain=[CONFIGURED])
        await ProviderCredential.create(provider="gemini", kind="gemini", enabled=False)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    env = gateway_env(db, tmp, fakes) | {"AZURE_OPENAI_BASE_URL": fakes["openai"].sdk_base_url}
    gw = GatewayProc(env, tmp / "gateway.log").start()
    try:
        yield Stack(gw, db, seeded, tmp=tmp, **fakes)
    finally:
        gw.stop()
        for fake in fakes.values():
            fake.stop()
        await drop_database(db)


class Sent:
    """Every HTTP request an SDK client sends (its retries included)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def client(self) -> httpx2.Client:
        # Both SDKs run on httpx2 (the anthropic one refuses an httpx client).
        return httpx2.Client(event_hooks={"request": [self._hook]}, timeout=30)

    def _hook(self, request: httpx2.Request) -> None:
        self.paths.append(request.url.path)


def openai_client(stack: Stack, sent: Sent) -> openai.OpenAI:
    # Default max_retries (2): the point is that the SDK decides not to use them.
    return openai.OpenAI(
        base_url=stack.gateway.openai_base_url,
        api_key=stack.seeded.user_key,
        http_client=sent.client(),
    )


def anthropic_client(stack: Stack, sent: Sent) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=stack.gateway.url, api_key=stack.seeded.user_key, http_client=sent.client()
    )


def call(sdk: str, stack: Stack, sent: Sent, model: str, *, stream: bool = False) -> str:
    """One chat call; returns the answer's text (SDK errors propagate)."""
    messages: Any = [{"role": "user", "content": "hello"}]
    if sdk == "openai":
        oc = openai_client(stack, sent)
        if stream:
            chunks = oc.chat.completions.create(model=model, messages=messages, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return (
            oc.chat.completions.create(model=model, messages=messages).choices[0].message.content
            or ""
        )
    ac = anthropic_client(stack, sent)
    if stream:
        with ac.messages.stream(model=model, messages=messages, max_tokens=50) as s:
            return s.get_final_text()
    msg = ac.messages.create(model=model, messages=messages, max_tokens=50)
    return "".join(b.text for b in msg.content if b.type == "text")


NOT_FOUND: dict[str, type[Exception]] = {
    "openai": openai.NotFoundError,
    "anthropic": anthropic.NotFoundError,
}


def refused(sdk: str, fn: Callable[[], object]) -> Any:
    with pytest.raises(NOT_FOUND[sdk]) as info:
        fn()
    return info.value


def error_fields(sdk: str, err: Any) -> tuple[str, str]:
    """(error type, message) from the caller's protocol body."""
    body = err.body
    if sdk == "anthropic":
        assert body["type"] == "error"
        return body["error"]["type"], body["error"]["message"]
    # The OpenAI SDK hands over the inner error object.
    return body["type"], body["message"]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_fallback_skips_an_unconfigured_primary_without_an_attempt(
    stack: Stack, sdk: str
) -> None:
    # First in this module: Azure's breakers are fresh, so a retry or a breaker fed by the
    # unconfigured primary would show here.
    stack.reset()
    stack.openai.replies.append(Reply(text="from the fallback"))
    sent = Sent()
    assert call(sdk, stack, sent, WITH_FALLBACK) == "from the fallback"
    assert len(sent.paths) == 1
    assert [r.json["model"] for r in stack.openai.requests] == ["gpt-4o-mini"]
    rows = await wait_for_rows(stack.database_url, 1, requested_model=WITH_FALLBACK)
    rows = [r for r in rows if r.endpoint.endswith(("messages", "completions"))]
    own = rows[-1]
    assert own.actual_model == CONFIGURED and own.status == 200 and own.attempts == 1
    assert not any(r.superseded for r in rows)
    # Nobody was refused, yet the operator is told: the chain's primary cannot be used.
    assert "WARNING switchboard.providers: provider 'azure' is not configured" in (
        stack.gateway.log_text()
    )


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_unconfigured_provider_is_a_configuration_error_every_time(
    stack: Stack, sdk: str
) -> None:
    stack.reset()
    sent = Sent()
    for i in range(CALLS):
        stream = i % 2 == 1
        err = refused(sdk, functools.partial(call, sdk, stack, sent, UNCONFIGURED, stream=stream))
        assert err.status_code == 404
        assert err.response.headers["x-should-retry"] == "false"
        assert err.response.headers["x-request-id"]
        etype, message = error_fields(sdk, err)
        assert etype == "not_found_error"
        assert "circuit" not in message
        assert message.startswith("provider 'azure' is not configured: set AZURE_OPENAI_API_KEY")
    # Another model of the same provider, never tried before: the same cause, not a circuit.
    err = refused(sdk, lambda: call(sdk, stack, sent, "azure/another"))
    assert "is not configured" in error_fields(sdk, err)[1]

    # One request per call: neither SDK retried, and nothing reached an upstream.
    assert len(sent.paths) == CALLS + 1
    assert stack.openai.requests == [] and stack.anthropic.requests == []
    endpoint = "/v1/messages" if sdk == "anthropic" else "/v1/chat/completions"
    rows = await wait_for_rows(
        stack.database_url,
        CALLS + 1,
        endpoint=endpoint,
        requested_model__in=[UNCONFIGURED, "azure/another"],
    )
    assert len(rows) == CALLS + 1
    assert {(r.status, r.error_type, r.provider, r.attempts) for r in rows} == {
        (404, "configuration", "azure", 1)
    }

    # A configured model keeps working, through both SDKs, streamed and not.
    stack.openai.replies.extend([Reply(text="still fine") for _ in range(4)])
    for other in ("openai", "anthropic"):
        for stream in (False, True):
            assert call(other, stack, sent, CONFIGURED, stream=stream) == "still fine"

    # The operator heard of it once (the registry's warning), not once per request.
    log = stack.gateway.log_text()
    assert log.count("WARNING switchboard.providers: provider 'azure' is not configured") == 1
    assert log.count("provider 'azure' is not configured") <= 2  # + a refusal's own warning


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_disabled_provider_is_a_configuration_error(stack: Stack, sdk: str) -> None:
    stack.reset()
    sent = Sent()
    for _ in range(3):
        err = refused(sdk, lambda: call(sdk, stack, sent, DISABLED))
        assert err.status_code == 404 and err.response.headers["x-should-retry"] == "false"
        etype, message = error_fields(sdk, err)
        assert (etype, message) == (
            "not_found_error",
            "provider 'gemini' is disabled by an administrator",
        )
    assert len(sent.paths) == 3 and stack.gemini.requests == []


async def test_an_open_circuit_names_its_last_real_cause(stack: Stack) -> None:
    stack.reset()
    model = f"openai/gpt-flaky-{uuid.uuid4().hex[:6]}"
    threshold = 5  # the default SWITCHBOARD_CIRCUIT_THRESHOLD
    # Each request tries the model twice (one same-model retry), so the 5th failure is the
    # third request's first attempt, and the circuit is open before its retry.
    stack.openai.replies.extend(
        [Reply(status=500, error_message=f"database on fire #{n}") for n in range(threshold)]
    )
    oc = openai.OpenAI(
        base_url=stack.gateway.openai_base_url, api_key=stack.seeded.user_key, max_retries=0
    )
    messages: Any = [{"role": "user", "content": "hello"}]
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as failed:
            oc.chat.completions.create(model=model, messages=messages)
        assert failed.value.status_code == 502
    assert len(stack.openai.requests) == threshold
    with pytest.raises(openai.InternalServerError) as info:
        oc.chat.completions.create(model=model, messages=messages)
    assert info.value.status_code == 503
    assert info.value.code == "circuit_open"
    assert info.value.body["message"] == (  # type: ignore[index]
        f"circuit open for {model} after {threshold} failures; "
        f"last: openai: database on fire #{threshold - 1}"
    )
    assert len(stack.openai.requests) == threshold
    # Only that model's circuit: the provider's other models still answer.
    stack.openai.replies.append(Reply(text="unaffected"))
    answer = oc.chat.completions.create(model=CONFIGURED, messages=messages)
    assert answer.choices[0].message.content == "unaffected"
