"""Provider calls with fallback: the only place the pipeline talks to providers.

Every failed attempt that a later candidate replaced is logged as a ``superseded`` row (visible,
never billed); the attempt that answered is the request's own row. A candidate whose provider
is not configured (or disabled) is skipped, not attempted: no row, no breaker. So is a candidate
that cannot honour the request (``model_rules.refusal``: ``n=2`` for Gemini, a forced tool for
Ollama...): it is never sent a degraded request, and when no candidate can honour it the first
candidate's refusal (a 400 naming the field and the provider) is the answer.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from backend.gateway import Gateway
from backend.ir.chat import ChatRequest, ChatResponse
from backend.ir.errors import GatewayError, InvalidRequest, ProviderNotConfigured, UpstreamError
from backend.ir.stream import StreamError, StreamEvent
from backend.observability.tracing import NO_ATTEMPT, Tracing
from backend.policies.context import RequestContext
from backend.policies.refusal import error_facts
from backend.protocols.model_rules import refusal
from backend.protocols.openai_responses.rules import responses_refusal, same_wire_view
from backend.providers.base import Provider
from backend.providers.deployment_pool import DeploymentPool, Trail
from backend.routing.fallback import run_with_fallback

T = TypeVar("T")


class ProviderCalls:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def _span(
        self, ctx: RequestContext, req: ChatRequest, model: str, upstream_model: str, n: int
    ) -> AbstractContextManager[Any]:
        """The attempt's trace span (``observability.tracing``); nothing when tracing is off."""
        tracing: Tracing | None = self.gw.tracing
        if tracing is None:
            return NO_ATTEMPT
        return tracing.attempt(ctx, req, model, upstream_model, n)

    def _target(self, ctx: RequestContext, model: str) -> tuple[Any, str]:
        ref = self.gw.router.parse(model)
        ctx.actual_model = model
        ctx.provider = ref.provider
        ctx.deployment = None
        ctx.attempts += 1
        return traced(ctx, self.gw.providers.get(ref.provider)), ref.model

    async def chat(
        self, ctx: RequestContext, req: ChatRequest, candidates: list[str]
    ) -> ChatResponse:
        async def attempt(model: str, n: int) -> ChatResponse:
            provider, upstream_model = self._target(ctx, model)
            mark = len(ctx.trail.calls) if ctx.trail is not None else 0
            with (
                self.gw.router.in_flight(model),
                self._span(ctx, req, model, upstream_model, n) as span,
            ):
                try:
                    resp: ChatResponse = await provider.chat(req, upstream_model)
                finally:
                    self.record_pool_calls(ctx, model, mark)
                span.answered(resp)
                return resp

        return await self._with_fallback(ctx, self._honouring(ctx, req, candidates), attempt)

    async def stream(
        self, ctx: RequestContext, req: ChatRequest, candidates: list[str]
    ) -> AsyncIterator[StreamEvent]:
        async def attempt(model: str, n: int) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            provider, upstream_model = self._target(ctx, model)
            mark = len(ctx.trail.calls) if ctx.trail is not None else 0
            with self._span(ctx, req, model, upstream_model, n):
                try:
                    return await first_event(provider, upstream_model)
                finally:
                    self.record_pool_calls(ctx, model, mark)

        async def first_event(
            provider: Any, upstream_model: str
        ) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            events = provider.stream(req, upstream_model).__aiter__()
            try:
                first = await events.__anext__()
            except StopAsyncIteration:
                raise UpstreamError(
                    f"{ctx.provider}: upstream closed the stream without data"
                ) from None
            except BaseException:
                await _aclose(events)
                raise
            if isinstance(first, StreamError):
                # Nothing reached the client yet, so another candidate may still answer.
                await _aclose(events)
                raise first.error
            return first, events

        first, events = await self._with_fallback(
            ctx, self._honouring(ctx, req, candidates), attempt
        )
        return _Chain(first, events, self.gw.router.in_flight(ctx.actual_model or ""))

    async def _with_fallback(
        self,
        ctx: RequestContext,
        candidates: list[str],
        attempt: Callable[[str, int], Awaitable[T]],
    ) -> T:
        failures: list[tuple[str, str | None, GatewayError, float]] = []
        # Each attempt's own start, so a superseded row's latency is that attempt's.
        starts: dict[int, float] = {}

        async def timed(model: str, n: int) -> T:
            starts[n] = time.perf_counter()
            return await attempt(model, n)

        def on_failed(model: str, n: int, err: GatewayError) -> None:
            began = starts.get(n, ctx.started)
            failures.append((model, ctx.provider, err, (time.perf_counter() - began) * 1000.0))

        answered = False
        try:
            result, model, _ = await run_with_fallback(
                candidates,
                timed,
                router=self.gw.router,
                on_attempt_failed=on_failed,
                usable=functools.partial(self._require_provider, ctx),
            )
            answered = True
        finally:
            # When every attempt failed, the last failure is the request's own row.
            self._log_superseded(ctx, failures if answered else failures[:-1])
        ctx.actual_model = model
        return result

    def _honouring(self, ctx: RequestContext, req: ChatRequest, candidates: list[str]) -> list[str]:
        """The candidates that can honour ``req``; the first refusal when none can."""
        kept: list[str] = []
        first: tuple[str, str, InvalidRequest] | None = None
        for model in candidates:
            ref = self.gw.router.parse(model)
            try:
                config = self.gw.providers.config(ref.provider)
            except GatewayError:
                kept.append(model)  # unusable provider: fallback reports it as before
                continue
            err = responses_refusal(req, config.kind, config.name, ref.model) or refusal(
                same_wire_view(req, config.kind, config.name), config.kind, config.name, ref.model
            )
            if err is None:
                kept.append(model)
            elif first is None:
                first = (model, ref.provider, err)
        if kept or first is None:
            return kept
        ctx.actual_model, ctx.provider = first[0], first[1]
        raise first[2]

    def _require_provider(self, ctx: RequestContext, model: str) -> None:
        # Raises ProviderNotConfigured for a provider the configuration rules out, so fallback
        # skips it before the circuit breaker is asked (an open circuit must not hide it).
        ref = self.gw.router.parse(model)
        try:
            self.gw.providers.require(ref.provider)
        except ProviderNotConfigured:
            if ctx.provider is None:
                # The request's row names the first provider that could not be used, unless
                # another candidate answers or fails for real.
                ctx.actual_model, ctx.provider = model, ref.provider
            raise

    def record_pool_calls(self, ctx: RequestContext, model: str, mark: int) -> None:
        """After an attempt on ``model``: when a deployment pool served it, the request's row
        names the deployment that answered (or failed last), and each deployment that failed
        before it is an attempt of the request, logged like a fallback's (the attempt's own
        failure, the last call, is logged by the fallback loop)."""
        calls = ctx.trail.calls[mark:] if ctx.trail is not None else []
        if not calls:
            return
        ctx.deployment = calls[-1].deployment
        ctx.attempts += len(calls) - 1
        failed = [
            (model, ctx.provider, c.error, c.latency_ms) for c in calls[:-1] if c.error is not None
        ]
        self._log_superseded(ctx, failed)

    def _log_superseded(
        self, ctx: RequestContext, failures: list[tuple[str, str | None, GatewayError, float]]
    ) -> None:
        for model, provider, err, latency_ms in failures:
            facts = error_facts(err)
            row = dataclasses.replace(
                ctx.log_record(superseded=True),
                actual_model=model,
                provider=provider,
                deployment=ctx.trail.deployment_of(err) if ctx.trail is not None else None,
                status=err.status,
                error_type=facts.error_type,
                error_message=facts.error_message,
                error_code=facts.error_code,
                upstream_status=facts.upstream_status,
                refusal=facts.refusal,
                latency_ms=latency_ms,
                ttft_ms=None,
                input_tokens=0,
                output_tokens=0,
                cached_tokens=0,
                reasoning_tokens=0,
                cost_usd=None,
                price=None,
                request_body=None,
                response_body=None,
                dlp_activity=[],
            )
            self.gw.log_writer.submit(row)


def traced(ctx: RequestContext, provider: Provider) -> Provider:
    """``provider``, noting in ``ctx.trail`` which deployments it calls when it is a pool."""
    if not isinstance(provider, DeploymentPool):
        return provider
    if ctx.trail is None:
        ctx.trail = Trail()
    return provider.traced(ctx.trail)


class _Chain:
    """The answering attempt's events: the first (already read), then the rest.

    Counts the model in flight from now until closed, and closing it closes the upstream
    response even when it was never iterated (a client gone before the first frame).
    """

    def __init__(
        self, first: StreamEvent, rest: AsyncIterator[StreamEvent], in_flight: Any
    ) -> None:
        self._first: StreamEvent | None = first
        self._rest = rest
        self._in_flight = in_flight
        self._closed = False
        in_flight.__enter__()

    def __aiter__(self) -> _Chain:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self._rest.__anext__()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await _aclose(self._rest)
        finally:
            self._in_flight.__exit__(None, None, None)


async def _aclose(it: AsyncIterator[StreamEvent]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()
