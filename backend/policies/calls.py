"""Provider calls with fallback: the only place the pipeline talks to providers.

Every failed attempt that a later candidate replaced is logged as a ``superseded`` row (visible,
never billed); the attempt that answered is the request's own row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from backend.gateway import Gateway
from backend.ir.chat import ChatRequest, ChatResponse
from backend.ir.errors import GatewayError, UpstreamError
from backend.ir.stream import StreamError, StreamEvent
from backend.policies.context import RequestContext
from backend.routing.fallback import run_with_fallback

T = TypeVar("T")


class ProviderCalls:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def _target(self, ctx: RequestContext, model: str) -> tuple[Any, str]:
        ref = self.gw.router.parse(model)
        ctx.actual_model = model
        ctx.provider = ref.provider
        ctx.attempts += 1
        return self.gw.providers.get(ref.provider), ref.model

    async def chat(
        self, ctx: RequestContext, req: ChatRequest, candidates: list[str]
    ) -> ChatResponse:
        async def attempt(model: str, _n: int) -> ChatResponse:
            provider, upstream_model = self._target(ctx, model)
            with self.gw.router.in_flight(model):
                return await provider.chat(req, upstream_model)

        return await self._with_fallback(ctx, candidates, attempt)

    async def stream(
        self, ctx: RequestContext, req: ChatRequest, candidates: list[str]
    ) -> AsyncIterator[StreamEvent]:
        async def attempt(model: str, _n: int) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            provider, upstream_model = self._target(ctx, model)
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

        first, events = await self._with_fallback(ctx, candidates, attempt)
        return _chain(first, events, self.gw.router, ctx.actual_model or "")

    async def _with_fallback(
        self,
        ctx: RequestContext,
        candidates: list[str],
        attempt: Callable[[str, int], Awaitable[T]],
    ) -> T:
        failures: list[tuple[str, str | None, GatewayError]] = []

        def on_failed(model: str, _attempt: int, err: GatewayError) -> None:
            failures.append((model, ctx.provider, err))

        answered = False
        try:
            result, model, _ = await run_with_fallback(
                candidates, attempt, router=self.gw.router, on_attempt_failed=on_failed
            )
            answered = True
        finally:
            # When every attempt failed, the last failure is the request's own row.
            self._log_superseded(ctx, failures if answered else failures[:-1])
        ctx.actual_model = model
        return result

    def _log_superseded(
        self, ctx: RequestContext, failures: list[tuple[str, str | None, GatewayError]]
    ) -> None:
        for model, provider, err in failures:
            row = dataclasses.replace(
                ctx.log_record(superseded=True),
                actual_model=model,
                provider=provider,
                status=err.status,
                error_type=err.kind,
                error_message=err.message[:2000],
                input_tokens=0,
                output_tokens=0,
                cached_tokens=0,
                cost_usd=None,
                request_body=None,
                response_body=None,
                dlp_activity=[],
            )
            self.gw.log_writer.submit(row)


async def _chain(
    first: StreamEvent, rest: AsyncIterator[StreamEvent], router: Any, model: str
) -> AsyncIterator[StreamEvent]:
    try:
        with router.in_flight(model):
            yield first
            async for ev in rest:
                yield ev
    finally:
        await _aclose(rest)


async def _aclose(it: AsyncIterator[StreamEvent]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()
