"""Tracing is off unless the standard OTEL_* variables ask, and off it costs no tracer call.

The second test serves the real app (``create_app``, lifespan, a fake provider) with every
OpenTelemetry entry point the gateway could reach replaced by one that fails the test: a no-op
tracer would pass through them, so this holds only if the hot path never calls one at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import opentelemetry.context
import opentelemetry.sdk.trace
import opentelemetry.trace
import pytest

from backend.app import create_app
from backend.config import Settings, otel_traces_enabled
from backend.observability.tracing import TraceRequests, Tracing
from tests.dbutil import create_database, drop_database, migrate_fresh, redis_url
from tests.e2e.harness import orm
from tests.fakes.openai_fake import OpenAIFake
from tests.security.authz_world import serve


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "gw", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            True,
        ),
    ],
)
def test_traces_follow_the_standard_variables(env: Mapping[str, str], enabled: bool) -> None:
    assert otel_traces_enabled(env) is enabled
    assert Settings.from_env(env).tracing is enabled


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    ],
)
def test_an_exporter_we_do_not_ship_is_refused_at_startup(env: Mapping[str, str]) -> None:
    with pytest.raises(ValueError, match="not supported"):
        Settings.from_env(env)


def _forbidden(*_: Any, **__: Any) -> Any:
    raise AssertionError("an OpenTelemetry call on the request path while tracing is off")


async def test_off_no_tracer_call_and_no_traceparent_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.data.models.keys import ApiKey
    from backend.data.models.tenancy import Organization, User
    from backend.security.api_keys import generate_key

    url = await create_database(tmp_path)
    await migrate_fresh(url)
    secret, prefix, digest = generate_key()
    async with orm(url):
        org = await Organization.create(name="Off", slug=f"off-{uuid.uuid4().hex[:6]}")
        user = await User.create(name="O", email="o@off.test", organization=org)
        await ApiKey.create(prefix=prefix, key_hash=digest, name="o", user=user)
    fake = OpenAIFake().start()
    settings = Settings(
        database_url=url,
        redis_url=redis_url(),
        redis_prefix=f"sboff-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp_path / "data",
        secret_key=f"off-{uuid.uuid4().hex}",
        provider_env={"OPENAI_API_KEY": "sk-upstream", "OPENAI_BASE_URL": fake.sdk_base_url},
    )
    assert settings.tracing is False
    app = create_app(settings)
    assert not any(m.cls is TraceRequests for m in app.user_middleware)
    for target, name in [
        (opentelemetry.trace, "get_current_span"),
        (opentelemetry.trace, "get_tracer"),
        (opentelemetry.trace, "set_span_in_context"),
        (opentelemetry.context, "attach"),
        (opentelemetry.sdk.trace.Tracer, "start_span"),
        (opentelemetry.trace.NoOpTracer, "start_span"),
        (Tracing, "serve"),
        (Tracing, "end_request"),
        (Tracing, "attempt"),
        (Tracing, "start"),
    ]:
        monkeypatch.setattr(target, name, _forbidden)
    try:
        async with serve(app) as base:
            headers = {
                "authorization": f"Bearer {secret}",
                "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            }
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                for stream in (False, True):
                    r = await client.post(
                        "/v1/chat/completions",
                        headers=headers,
                        json={
                            "model": "openai/gpt-4o-mini",
                            "messages": [{"role": "user", "content": "hi"}],
                            "stream": stream,
                        },
                    )
                    assert r.status_code == 200, r.text
                refused = await client.post(
                    "/v1/chat/completions",
                    headers={"authorization": "Bearer sk-wrong"},
                    json={"model": "openai/gpt-4o-mini", "messages": []},
                )
                assert refused.status_code == 401
        chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
        assert len(chats) == 2
        assert all("traceparent" not in r.headers for r in chats)
    finally:
        fake.stop()
        await drop_database(url)
