"""OpenTelemetry traces from a real gateway process, received by an in-process OTLP collector.

The gateway runs as operators run it (``switchboard serve``) with only the standard variables
set (``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at ``OtlpCollector``, a real OTLP/HTTP receiver
decoding the protobuf ``ExportTraceServiceRequest``). Clients are the official SDKs sending a
W3C ``traceparent``; providers are the fakes, which record the headers they received.

Shown: one trace per request, under the caller's trace id, whose request span carries the GenAI
attributes; one attempt span per provider attempt (a retried primary and its fallback give
three); every upstream request carries the traceparent of its own attempt span; no prompt or
answer text anywhere in what was exported. With ``SWITCHBOARD_TRACE_CONTENT`` on, the prompt is
recorded, DLP-redacted as the provider received it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

from tests.dbutil import create_database, drop_database
from tests.e2e.conftest import gateway_env
from tests.e2e.harness import GatewayProc, Seeded, orm, prepare_database, seed_basic
from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import RecordedRequest, Reply
from tests.fakes.gemini_fake import GeminiFake
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake
from tests.observability.otlp_collector import CLIENT, SERVER, CollectedSpan, OtlpCollector

PRIMARY = "openai/gpt-trace-primary"
FALLBACK = "anthropic/claude-trace-next"
STREAMED = "anthropic/claude-trace-stream"
PLAIN = "openai/gpt-trace-plain"
CHAT_PATHS = ("/chat/completions", "/v1/messages")
ERROR = 2  # OTLP Status.code


@dataclass
class TraceStack:
    gateway: GatewayProc
    collector: OtlpCollector
    seeded: Seeded
    openai: OpenAIFake
    anthropic: AnthropicFake

    def reset(self) -> None:
        self.openai.reset()
        self.anthropic.reset()


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpCollector]:
    with OtlpCollector() as c:
        yield c


async def _stack(
    tmp: Path, collector: OtlpCollector, extra_env: dict[str, str], *, dlp: bool = False
) -> AsyncIterator[TraceStack]:
    from backend.data.models.routing import FallbackChain
    from backend.data.models.tenancy import Organization

    db = await create_database(tmp)
    await prepare_database(db)
    seeded = await seed_basic(db)
    async with orm(db):
        await FallbackChain.create(primary_model=PRIMARY, chain=[FALLBACK])
        if dlp:
            await Organization.filter(id=seeded.org_id).update(dlp_enabled=True)
    fakes: dict[str, Any] = {
        "openai": OpenAIFake().start(),
        "anthropic": AnthropicFake().start(),
        "gemini": GeminiFake().start(),
        "ollama": OllamaFake().start(),
    }
    env = gateway_env(db, tmp, fakes) | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        # Export within a tenth of a second instead of the default five.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **extra_env,
    }
    gw = GatewayProc(env, tmp / "gateway.log")
    try:
        gw.start()
        yield TraceStack(gw, collector, seeded, fakes["openai"], fakes["anthropic"])
    finally:
        gw.stop()
        for fake in fakes.values():
            fake.stop()
        await drop_database(db)


@pytest.fixture(scope="module")
async def tstack(
    tmp_path_factory: pytest.TempPathFactory, collector: OtlpCollector
) -> AsyncIterator[TraceStack]:
    env = {k: "" for k in os.environ if k.startswith("OTEL_")}
    async for stack in _stack(tmp_path_factory.mktemp("traces"), collector, env):
        yield stack


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def _in_trace(spans: list[CollectedSpan], trace_id: str) -> list[CollectedSpan]:
    return sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: s.start_ns)


def _chat_requests(*fakes: OpenAIFake | AnthropicFake) -> list[RecordedRequest]:
    return [r for f in fakes for r in f.requests if r.path.endswith(CHAT_PATHS)]


def _upstream_parent(req: RecordedRequest, trace_id: str) -> str:
    version, tid, parent, flags = req.headers["traceparent"].split("-")
    assert (version, tid) == ("00", trace_id), req.headers["traceparent"]
    assert int(flags, 16) & 1, "sampled"
    return parent


async def test_one_trace_per_request_with_attempt_spans_and_no_prompt_text(
    tstack: TraceStack,
) -> None:
    tstack.reset()
    marker = f"plan-{uuid.uuid4().hex}"
    prompt = f"Summarise the quarterly {marker} please"
    answer = f"The answer is {marker}-reply"
    stream_answer = f"Streamed {marker}-stream"

    # 1. OpenAI SDK, not streamed: the primary fails twice (retried once), the fallback answers.
    trace_a, caller_a, header_a = _traceparent()
    tstack.openai.replies.extend([Reply(status=500), Reply(status=500)])
    tstack.anthropic.replies.append(Reply(text=answer, input_tokens=21, output_tokens=7))
    oc = openai.OpenAI(
        base_url=tstack.gateway.openai_base_url,
        api_key=tstack.seeded.user_key,
        max_retries=0,
        timeout=30,
    )
    raw = oc.chat.completions.with_raw_response.create(
        model=PRIMARY,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=50,
        extra_headers={"traceparent": header_a},
    )
    assert raw.parse().choices[0].message.content == answer
    attempts_a = int(raw.headers["x-switchboard-attempts"])
    assert attempts_a == 3
    upstream_a = _chat_requests(tstack.openai, tstack.anthropic)
    assert len(upstream_a) == attempts_a
    tstack.reset()

    # 2. Anthropic SDK, streamed, one attempt.
    trace_b, caller_b, header_b = _traceparent()
    tstack.anthropic.replies.append(Reply(text=stream_answer, input_tokens=12, output_tokens=4))
    ac = anthropic.Anthropic(
        base_url=tstack.gateway.url, api_key=tstack.seeded.user_key, max_retries=0, timeout=30
    )
    with ac.messages.with_streaming_response.create(
        model=STREAMED,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=50,
        stream=True,
        extra_headers={"traceparent": header_b},
    ) as streamed:
        request_id_b = streamed.headers["x-request-id"]
        body_b = streamed.read().decode()
    assert "message_stop" in body_b
    upstream_b = _chat_requests(tstack.anthropic)
    assert len(upstream_b) == 1
    tstack.reset()

    # 3. No traceparent from the caller: the gateway starts a trace of its own.
    raw_c = oc.chat.completions.with_raw_response.create(
        model=PLAIN, messages=[{"role": "user", "content": prompt}], max_tokens=50
    )
    upstream_c = _chat_requests(tstack.openai)
    assert len(upstream_c) == 1

    # 4. Refused before any provider: a request span, no attempt span.
    trace_d, caller_d, header_d = _traceparent()
    bad = openai.OpenAI(
        base_url=tstack.gateway.openai_base_url, api_key="sk-not-a-key", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(
            model=PLAIN,
            messages=[{"role": "user", "content": prompt}],
            extra_headers={"traceparent": header_d},
        )

    def servers(spans: list[CollectedSpan]) -> list[CollectedSpan]:
        return [s for s in spans if s.kind == SERVER]

    request_c = raw_c.headers["x-request-id"]

    def complete(spans: list[CollectedSpan]) -> bool:
        ids = {s.attributes.get("switchboard.request_id") for s in servers(spans)}
        return {raw.headers["x-request-id"], request_id_b, request_c} <= ids and any(
            s.trace_id == trace_d for s in servers(spans)
        )

    spans = tstack.collector.wait_for(complete)
    assert complete(spans), [(s.name, s.trace_id) for s in spans]

    # -- 1: the caller's trace, a request span under the caller's span, three attempt spans ----
    in_a = _in_trace(spans, trace_a)
    (req_a,) = [s for s in in_a if s.kind == SERVER]
    assert req_a.parent_span_id == caller_a
    assert req_a.name == f"chat {PRIMARY}"
    assert req_a.resource["service.name"] == "switchboard"
    a = req_a.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == PRIMARY
    assert a["gen_ai.response.model"] == FALLBACK
    assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "anthropic"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (21, 7)
    assert a["switchboard.request_id"] == raw.headers["x-request-id"]
    assert a["switchboard.attempts"] == 3
    assert a["switchboard.org_id"] == tstack.seeded.org_id
    assert a["http.response.status_code"] == 200
    attempts = [s for s in in_a if s.kind == CLIENT]
    assert len(attempts) == attempts_a
    assert all(s.parent_span_id == req_a.span_id for s in attempts)
    assert [s.attributes["gen_ai.provider.name"] for s in attempts] == [
        "openai",
        "openai",
        "anthropic",
    ]
    assert [s.attributes["gen_ai.request.model"] for s in attempts] == [
        "gpt-trace-primary",
        "gpt-trace-primary",
        "claude-trace-next",
    ]
    assert [s.attributes["switchboard.attempt"] for s in attempts] == [1, 2, 3]
    for failed in attempts[:2]:
        assert failed.status_code == ERROR
        assert failed.attributes["error.type"] == "upstream"
        assert failed.attributes["switchboard.error_code"] == "upstream_500"
        assert failed.attributes["switchboard.error_status"] == 502
    answered = attempts[2].attributes
    assert "error.type" not in answered and attempts[2].status_code != ERROR
    assert (answered["gen_ai.usage.input_tokens"], answered["gen_ai.usage.output_tokens"]) == (
        21,
        7,
    )
    # Each upstream request carried its own attempt's traceparent, in the caller's trace.
    assert [_upstream_parent(r, trace_a) for r in upstream_a] == [s.span_id for s in attempts]

    # -- 2: streamed -------------------------------------------------------------------------
    in_b = _in_trace(spans, trace_b)
    (req_b,) = [s for s in in_b if s.kind == SERVER]
    assert req_b.parent_span_id == caller_b
    b = req_b.attributes
    assert b["switchboard.request_id"] == request_id_b
    assert b["switchboard.streamed"] is True
    assert b["gen_ai.request.model"] == b["gen_ai.response.model"] == STREAMED
    assert b["gen_ai.provider.name"] == "anthropic"
    assert (b["gen_ai.usage.input_tokens"], b["gen_ai.usage.output_tokens"]) == (12, 4)
    (attempt_b,) = [s for s in in_b if s.kind == CLIENT]
    assert attempt_b.parent_span_id == req_b.span_id
    assert _upstream_parent(upstream_b[0], trace_b) == attempt_b.span_id

    # -- 3: a root span of the gateway's own trace ------------------------------------------
    (req_c,) = [s for s in servers(spans) if s.attributes["switchboard.request_id"] == request_c]
    assert req_c.parent_span_id == "" and req_c.trace_id not in (trace_a, trace_b, trace_d)
    (attempt_c,) = [s for s in spans if s.kind == CLIENT and s.trace_id == req_c.trace_id]
    assert _upstream_parent(upstream_c[0], req_c.trace_id) == attempt_c.span_id

    # -- 4: refused: the request span says why, no provider was attempted ------------------
    in_d = _in_trace(spans, trace_d)
    assert [s.kind for s in in_d] == [SERVER]
    d = in_d[0].attributes
    assert in_d[0].parent_span_id == caller_d
    assert d["error.type"] == "authentication"
    assert d["http.response.status_code"] == 401

    # One trace per request: no span of these requests landed in another trace.
    for trace_id in (trace_a, trace_b, req_c.trace_id, trace_d):
        assert len([s for s in servers(spans) if s.trace_id == trace_id]) == 1

    # No prompt or answer text in anything exported (nor the caller's key).
    exported = tstack.collector.raw()
    assert marker.encode() not in exported
    assert tstack.seeded.user_key.encode() not in exported
    assert not any(
        k.startswith("gen_ai.input") or k.startswith("gen_ai.output")
        for s in spans
        for k in s.attributes
    )


@pytest.fixture(scope="module")
async def content_stack(
    tmp_path_factory: pytest.TempPathFactory, collector: OtlpCollector
) -> AsyncIterator[TraceStack]:
    env = {k: "" for k in os.environ if k.startswith("OTEL_")}
    env["SWITCHBOARD_TRACE_CONTENT"] = "1"
    tmp = tmp_path_factory.mktemp("traces-content")
    async for stack in _stack(tmp, collector, env, dlp=True):
        yield stack


async def test_recorded_content_is_what_the_provider_got_dlp_redacted(
    content_stack: TraceStack,
) -> None:
    email = f"ceo-{uuid.uuid4().hex[:8]}@example.com"
    prompt = f"Write to {email} about the merger"
    trace_id, _, header = _traceparent()
    content_stack.openai.replies.append(Reply(text="Done, wrote to [EMAIL_1]."))
    oc = openai.OpenAI(
        base_url=content_stack.gateway.openai_base_url,
        api_key=content_stack.seeded.user_key,
        max_retries=0,
        timeout=30,
    )
    out = oc.chat.completions.create(
        model=PLAIN,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=50,
        extra_headers={"traceparent": header},
    )
    # The client gets its value back; the provider and the trace only ever saw the placeholder.
    assert out.choices[0].message.content == f"Done, wrote to {email}."
    (sent,) = _chat_requests(content_stack.openai)
    assert email not in sent.body.decode() and "[EMAIL_1]" in sent.body.decode()

    spans = content_stack.collector.wait_for(
        lambda spans: any(s.trace_id == trace_id and s.kind == SERVER for s in spans)
    )
    (attempt,) = [s for s in spans if s.trace_id == trace_id and s.kind == CLIENT]
    recorded_in = orjson.loads(attempt.attributes["gen_ai.input.messages"])
    assert "Write to [EMAIL_1] about the merger" in orjson.dumps(recorded_in).decode()
    assert "[EMAIL_1]" in attempt.attributes["gen_ai.output.messages"]
    assert email.encode() not in content_stack.collector.raw()
