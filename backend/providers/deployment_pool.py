"""One provider served by several deployments: the ``Provider`` contract over all of them.

``ProviderRegistry.get("openai")`` returns a ``DeploymentPool`` when the provider has enabled
deployments, so the pipeline, fallback and breakers see one provider as before. Per call:

1. The deployments serving the model (``DeploymentSpec.serves``); none: the provider's own
   connection, or ``ProviderNotConfigured`` when it has none (fallback skips the candidate).
2. Order: the first is picked by smooth weighted round-robin among the deployments not cooling
   down, each weighted ``weight x headroom`` (the free share of its own rpm/tpm window, 1.0
   without limits; weight 0 makes a standby); then the other available ones by that weight;
   then, as a last resort, those marked down (never those cooling after a 429 before their
   ``Retry-After``).
3. Each is admitted by its own rpm/tpm window first (``deployment_limits``): a full window skips
   it without a call. A retryable failure (429, 5xx, timeout, connection error, refused
   credential) moves to the next deployment at once, before the router's fallback chain is
   consulted; the caller's own errors (400, 404...) are raised at once. A stream moves on only
   while nothing was received: once its first event exists the deployment is final.
4. When none answered: the last deployment's error; if none was called, 429
   ``deployments_at_limit`` with ``Retry-After`` (every window full) or the 429 cooldown's. All
   are retryable, so the router's fallback chain comes next.

Which deployments a request went to (``traced``): the pipeline passes a ``Trail`` per request;
each deployment called is appended with its error (None: it answered) and latency, so the log
row names the deployment that answered and every failed try inside the pool is an attempt of
the request like a fallback's.

Tokens: admission counts an estimate (input estimate + ``max_tokens``); the real total replaces
it once the answer (or the stream's end) says so, in a background task off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from backend.ir.chat import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from backend.ir.errors import GatewayError, ProviderNotConfigured, RateLimited, UpstreamError
from backend.ir.estimate import estimate_tokens
from backend.ir.stream import StreamEnd, StreamError, StreamEvent, StreamStart
from backend.providers.base import Provider, ProviderConfig
from backend.providers.deployment_limits import Admission, Windows
from backend.providers.deployment_state import DeploymentState, SmoothWeights
from backend.providers.deployments import DeploymentSpec

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DeploymentCall:
    """One call to one deployment: its name, its error (None: it answered) and latency."""

    deployment: str
    error: GatewayError | None
    latency_ms: float


@dataclass(slots=True)
class Trail:
    """The deployments one request called, in order, across every pool it went through."""

    calls: list[DeploymentCall] = field(default_factory=list)

    def answered(self) -> str | None:
        """The deployment that answered the last call made (None: none did, or no pool)."""
        last = self.calls[-1] if self.calls else None
        return last.deployment if last is not None and last.error is None else None

    def deployment_of(self, err: GatewayError) -> str | None:
        """The deployment whose call failed with ``err`` (None: not a deployment's failure)."""
        return next((c.deployment for c in self.calls if c.error is err), None)


@dataclass(slots=True)
class Member:
    spec: DeploymentSpec
    provider: Provider
    state: DeploymentState

    @property
    def limited(self) -> bool:
        return self.spec.rpm_limit is not None or self.spec.tpm_limit is not None

    def weight(self) -> float:
        return self.spec.weight * self.state.headroom(self.spec.rpm_limit, self.spec.tpm_limit)


class DeploymentPool:
    def __init__(
        self,
        name: str,
        config: ProviderConfig,
        members: Sequence[Member],
        *,
        own: Provider | None,
        windows: Windows,
        turns: SmoothWeights,
        background: set[asyncio.Task[Any]],
    ) -> None:
        #: The provider's own connection, or its first deployment's when it has none.
        self.config = config
        self.name = name
        self.members = list(members)
        self._own = own
        self._windows = windows
        self._turns = turns
        self._background = background

    def traced(self, trail: Trail) -> Provider:
        """This pool, recording in ``trail`` which deployments each call went to."""
        return _Traced(self, trail)

    # -- Provider protocol ---------------------------------------------------------------------
    async def chat(self, req: ChatRequest, model: str, trail: Trail | None = None) -> ChatResponse:
        serving = self._serving(model)
        if not serving:
            return await self._own_provider(model).chat(req, model)
        estimate = estimate_tokens(req) + (req.max_tokens or 0)

        async def call(member: Member) -> ChatResponse:
            return await member.provider.chat(req, model)

        resp, member, admission = await self._run(model, serving, estimate, call, trail)
        member.state.ended()
        self._settle(member, admission, estimate, resp.usage.total_tokens)
        return resp

    def stream(
        self, req: ChatRequest, model: str, trail: Trail | None = None
    ) -> AsyncIterator[StreamEvent]:
        serving = self._serving(model)
        if not serving:
            return self._own_provider(model).stream(req, model)
        return self._stream(req, model, serving, trail)

    async def embed(
        self, req: EmbeddingRequest, model: str, trail: Trail | None = None
    ) -> EmbeddingResponse:
        serving = self._serving(model)
        if not serving:
            return await self._own_provider(model).embed(req, model)
        estimate = max(1, sum(len(x) for x in req.input) // 4)

        async def call(member: Member) -> EmbeddingResponse:
            return await member.provider.embed(req, model)

        resp, member, admission = await self._run(model, serving, estimate, call, trail)
        member.state.ended()
        self._settle(member, admission, estimate, resp.usage.total_tokens)
        return resp

    async def count_tokens(self, req: ChatRequest, model: str) -> int:
        serving = self._serving(model)
        target = self._order(serving)[0].provider if serving else self._own_provider(model)
        return await target.count_tokens(req, model)

    async def list_models(self) -> list[str]:
        if self._own is not None:
            return await self._own.list_models()
        return await self.members[0].provider.list_models()

    # -- choosing ------------------------------------------------------------------------------
    def _serving(self, model: str) -> list[Member]:
        return [m for m in self.members if m.spec.serves(model)]

    def _own_provider(self, model: str) -> Provider:
        if self._own is None:
            raise ProviderNotConfigured(
                f"provider {self.name!r} has no enabled deployment serving model {model!r} "
                "and no connection of its own",
                code="provider_not_configured",
            )
        return self._own

    def _order(self, serving: list[Member]) -> list[Member]:
        ready = [m for m in serving if not m.state.cooling()]
        weights = [m.weight() for m in ready]
        first = self._turns.pick([m.spec.name for m in ready], weights) if ready else None
        ranked = sorted(range(len(ready)), key=lambda i: -weights[i])
        order = [ready[first]] if first is not None else []
        order += [ready[i] for i in ranked if i != first]
        down = [m for m in serving if m.state.cooling() and not m.state.rate_limited_now()]
        return order + sorted(down, key=lambda m: m.state.until)

    async def _admit(self, member: Member, estimate: int) -> Admission:
        spec = member.spec
        admission = await self._windows.acquire(spec.key, spec.rpm_limit, spec.tpm_limit, estimate)
        if admission.admitted:
            member.state.saw_window(admission.requests, admission.tokens)
        else:
            member.state.refused_by_limit(admission.requests, admission.tokens)
        return admission

    async def _run(
        self,
        model: str,
        serving: list[Member],
        estimate: int,
        call: Callable[[Member], Awaitable[T]],
        trail: Trail | None = None,
    ) -> tuple[T, Member, Admission]:
        """The first answer in deployment order; the member stays counted in flight."""
        last: GatewayError | None = None
        full: list[tuple[Member, Admission]] = []
        for member in self._order(serving):
            admission = await self._admit(member, estimate)
            if not admission.admitted:
                full.append((member, admission))
                continue
            member.state.started()
            began = time.perf_counter()
            try:
                result = await call(member)
            except GatewayError as err:
                member.state.ended()
                _note(trail, member, err, began)
                if not err.retryable:
                    raise
                member.state.failed(err)
                last = err
                continue
            except BaseException:
                member.state.ended()
                raise
            member.state.succeeded()
            _note(trail, member, None, began)
            return result, member, admission
        raise self._exhausted(model, serving, last, full)

    def _exhausted(
        self,
        model: str,
        serving: list[Member],
        last: GatewayError | None,
        full: list[tuple[Member, Admission]],
    ) -> GatewayError:
        if last is not None:
            return last
        names = ", ".join(m.spec.name for m in serving)
        if full:
            wait = min(a.retry_after_s for _, a in full)
            return RateLimited(
                f"{self.name}: every deployment serving {model} is at its own rate limit "
                f"({names}); retry in {wait}s",
                code="deployments_at_limit",
                retryable=True,
                headers={"retry-after": str(wait)},
            )
        wait = max(1, math.ceil(min(m.state.remaining_s() for m in serving)))
        return RateLimited(
            f"{self.name}: every deployment serving {model} answered 429 and is cooling down "
            f"({names}); retry in {wait}s",
            code="upstream_rate_limited",
            retryable=True,
            headers={"retry-after": str(wait)},
        )

    # -- streams -------------------------------------------------------------------------------
    async def _stream(
        self, req: ChatRequest, model: str, serving: list[Member], trail: Trail | None
    ) -> AsyncIterator[StreamEvent]:
        estimate = estimate_tokens(req) + (req.max_tokens or 0)

        async def open_first(member: Member) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            events = member.provider.stream(req, model).__aiter__()
            try:
                first = await events.__anext__()
            except StopAsyncIteration:
                raise UpstreamError(
                    f"{self.name}: upstream closed the stream without data"
                ) from None
            except BaseException:
                await _aclose(events)
                raise
            if isinstance(first, StreamError):
                await _aclose(events)
                raise first.error
            return first, events

        (first, events), member, admission = await self._run(
            model, serving, estimate, open_first, trail
        )
        tokens = 0
        try:
            event: StreamEvent = first
            while True:
                if isinstance(event, StreamStart) and event.usage is not None:
                    tokens = event.usage.total_tokens
                elif isinstance(event, StreamEnd):
                    tokens = event.usage.total_tokens
                yield event
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    return
        finally:
            member.state.ended()
            await _aclose(events)
            self._settle(member, admission, estimate, tokens or estimate)

    # -- accounting ----------------------------------------------------------------------------
    def _settle(self, member: Member, admission: Admission, estimate: int, tokens: int) -> None:
        """Replace the admitted estimate by the real total, off the request path."""
        if tokens == estimate:
            return
        settle = self._windows.settle(
            member.spec.key, admission.bucket, tokens - estimate, shared=member.limited
        )
        task = asyncio.get_running_loop().create_task(settle)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _note(trail: Trail | None, member: Member, err: GatewayError | None, began: float) -> None:
    if trail is not None:
        ms = (time.perf_counter() - began) * 1000.0
        trail.calls.append(DeploymentCall(member.spec.name, err, ms))


class _Traced:
    """A pool seen through one request's ``Trail`` (the ``Provider`` protocol)."""

    __slots__ = ("_pool", "_trail", "config")

    def __init__(self, pool: DeploymentPool, trail: Trail) -> None:
        self._pool, self._trail, self.config = pool, trail, pool.config

    async def chat(self, req: ChatRequest, model: str) -> ChatResponse:
        return await self._pool.chat(req, model, self._trail)

    def stream(self, req: ChatRequest, model: str) -> AsyncIterator[StreamEvent]:
        return self._pool.stream(req, model, self._trail)

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        return await self._pool.embed(req, model, self._trail)

    async def count_tokens(self, req: ChatRequest, model: str) -> int:
        return await self._pool.count_tokens(req, model)

    async def list_models(self) -> list[str]:
        return await self._pool.list_models()


async def _aclose(it: AsyncIterator[StreamEvent]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
