"""OpenTelemetry traces of proxied requests, exported over OTLP/HTTP; off unless configured.

On when the standard variables ask for it (``config.otel_traces_enabled``):
``OTEL_TRACES_EXPORTER=otlp`` or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). The SDK reads the rest itself (endpoint, headers,
timeout, sampler, batch sizes, ``OTEL_SERVICE_NAME``). Off, nothing of this module runs per
request: the middleware is not installed and the pipeline's
hooks see ``gateway.tracing is None`` (``NO_ATTEMPT`` stands in for an attempt span).

Spans, following the GenAI semantic conventions:

- one SERVER span per ``/v1/*`` request (``TraceRequests``), the child of the caller's W3C
  ``traceparent`` when it sends one; the pipeline names it ``chat <model>`` and adds model,
  provider, token usage and status when the request ends (``end_request``);
- one CLIENT child span per provider attempt (``attempt``): retries and fallbacks give several.
  A streamed attempt's span ends with its first event, where fallback ends; the request span
  covers the rest of the stream. Every upstream request carries the attempt's ``traceparent``
  (``providers.http.upstream_trace_headers``), or the request span's outside an attempt.

No prompt or answer text is recorded unless ``SWITCHBOARD_TRACE_CONTENT`` is on; then the
attempt span holds the request the provider received (already DLP-redacted) and the answer it
gave (placeholders not yet restored).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.ir.chat import ChatRequest, ChatResponse, Usage
from backend.ir.errors import GatewayError
from backend.policies.context import RequestContext
from backend.providers.http import upstream_trace_headers

log = logging.getLogger("switchboard.tracing")

#: ``gen_ai.provider.name`` of the built-in providers (semantic-convention values); a custom
#: OpenAI-compatible provider is named as configured.
GENAI_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "ollama": "ollama",
}


class _NoAttempt:
    """Stands in for an attempt span when tracing is off: entering it does nothing at all."""

    def __enter__(self) -> _NoAttempt:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def answered(self, resp: ChatResponse) -> None:
        return None


NO_ATTEMPT = _NoAttempt()


class _Attempt:
    def __init__(self, span: Span, content: bool) -> None:
        self._span = span
        self._content = content

    def answered(self, resp: ChatResponse) -> None:
        span = self._span
        span.set_attribute("gen_ai.response.model", resp.model)
        span.set_attribute("gen_ai.response.id", resp.id)
        span.set_attribute("gen_ai.response.finish_reasons", [str(resp.finish_reason)])
        _set_usage(span, resp.usage)
        if self._content:
            span.set_attribute("gen_ai.output.messages", orjson.dumps(resp.content).decode())


class Tracing:
    """The tracer provider of one gateway process: built by ``start``, flushed by ``close``."""

    def __init__(
        self,
        *,
        content: bool = False,
        exporter: SpanExporter | None = None,
        service_name: str = "switchboard",
    ) -> None:
        self.content = content
        self._exporter = exporter
        self._service_name = service_name
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        self._propagator = TraceContextTextMapPropagator()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        exporter = self._exporter
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, timeout: from OTEL_* variables
        # Resource.create adds OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES over our default.
        resource = Resource.create({"service.name": self._service_name})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        self._provider = provider
        self._tracer = provider.get_tracer("switchboard")
        log.info("tracing: exporting spans over OTLP/HTTP")

    async def close(self) -> None:
        """Export every span still queued, then stop (off the loop: the export blocks)."""
        provider, self._provider, self._tracer = self._provider, None, None
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)

    # -- the request span ----------------------------------------------------------------------
    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = self._tracer
        if tracer is None:
            await app(scope, receive, send)
            return
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in (b"traceparent", b"tracestate")
        }
        parent = self._propagator.extract(carrier) if carrier else None
        method = scope.get("method", "GET")
        span = tracer.start_span(
            f"{method} {scope['path']}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        headers_token = upstream_trace_headers.set(self._headers(span))

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            await send(message)

        try:
            await app(scope, receive, send_traced)
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            upstream_trace_headers.reset(headers_token)
            otel_context.detach(token)
            span.end()

    def end_request(self, ctx: RequestContext) -> None:
        """The request's outcome on its span, from the pipeline's ``RequestContext``."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        operation = "embeddings" if ctx.endpoint == "/v1/embeddings" else "chat"
        span.update_name(f"{operation} {ctx.requested_model or ''}".strip())
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "switchboard.request_id": ctx.request_id,
            "switchboard.endpoint": ctx.endpoint,
            "switchboard.attempts": max(ctx.attempts, 1),
            "switchboard.streamed": ctx.streamed,
            "switchboard.cache_hit": ctx.cache_hit,
        }
        if ctx.requested_model:
            attrs["gen_ai.request.model"] = ctx.requested_model
        if ctx.actual_model:
            attrs["gen_ai.response.model"] = ctx.actual_model
        if ctx.provider:
            attrs.update(_provider_attrs(ctx.provider))
        principal = ctx.principal
        if principal is not None and principal.org_id is not None:
            attrs["switchboard.org_id"] = principal.org_id
        if ctx.error is not None:
            attrs["error.type"] = ctx.error.kind
        elif ctx.status == 499:
            attrs["error.type"] = "client_closed"
        if self.content and ctx.streamed and ctx.response_body:
            attrs["gen_ai.output.messages"] = ctx.response_body
        span.set_attributes(attrs)
        _set_usage(span, ctx.usage)

    # -- attempt spans -------------------------------------------------------------------------
    @contextlib.contextmanager
    def attempt(
        self, ctx: RequestContext, req: ChatRequest, model: str, upstream_model: str, number: int
    ) -> Iterator[_Attempt | _NoAttempt]:
        """A span around one provider attempt, current while the attempt builds its requests."""
        tracer = self._tracer
        if tracer is None:
            yield NO_ATTEMPT
            return
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": upstream_model,
            "switchboard.model": model,
            "switchboard.attempt": number,
            **_provider_attrs(ctx.provider or ""),
        }
        if req.max_tokens is not None:
            attrs["gen_ai.request.max_tokens"] = req.max_tokens
        if req.temperature is not None:
            attrs["gen_ai.request.temperature"] = req.temperature
        if req.top_p is not None:
            attrs["gen_ai.request.top_p"] = req.top_p
        if self.content:
            attrs["gen_ai.input.messages"] = orjson.dumps(
                {"system": req.system, "messages": req.messages}
            ).decode()
        span = tracer.start_span(f"chat {upstream_model}", kind=SpanKind.CLIENT, attributes=attrs)
        token = otel_context.attach(trace.set_span_in_context(span))
        headers_token = upstream_trace_headers.set(self._headers(span))
        try:
            yield _Attempt(span, self.content)
        except GatewayError as err:
            # The kind and status only: an error's message can quote the upstream's answer.
            span.set_attribute("error.type", err.kind)
            # What the client would have got (the upstream's own status is in the code).
            span.set_attribute("switchboard.error_status", err.status)
            if err.code:
                span.set_attribute("switchboard.error_code", err.code)
            span.set_status(Status(StatusCode.ERROR, err.kind))
            raise
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            upstream_trace_headers.reset(headers_token)
            otel_context.detach(token)
            span.end()

    def _headers(self, span: Span) -> tuple[tuple[bytes, bytes], ...]:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        return tuple((k.encode(), v.encode()) for k, v in carrier.items())


class TraceRequests:
    """ASGI middleware: a request span around every proxy request (``/v1/*``, the Gemini door's
    ``/v1beta/*``), installed only when tracing is on."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("/v1/", "/v1beta/")):
            await self.tracing.serve(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _provider_attrs(provider: str) -> dict[str, str]:
    name = GENAI_PROVIDERS.get(provider, provider)
    # gen_ai.system is the older name of gen_ai.provider.name; backends read one or the other.
    return {"gen_ai.provider.name": name, "gen_ai.system": name, "switchboard.provider": provider}


def _set_usage(span: Span, usage: Usage) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    if usage.cached_tokens:
        span.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens)
