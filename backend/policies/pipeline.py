"""The chat pipeline: every policy between a decoded request and an encoded answer, in order.

    authenticate (proxy) -> tags -> resolve agent tier / alias -> model allowlists
    -> rate limits (requests and tokens per minute) -> DLP redact
    -> order candidates (routing strategy) -> reserve budget -> response cache
    -> provider call with fallback -> DLP restore (streams too) -> settle cost -> log

Each step is a small function in ``backend.policies``; this module only sequences them. A step
short-circuits by raising ``GatewayError``; the proxy encodes it in the client's protocol.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from typing import Any

import anyio
import orjson

from backend.data.log_record import ErrorRecord
from backend.gateway import Gateway
from backend.ir.chat import ChatRequest, ChatResponse
from backend.ir.errors import GatewayError
from backend.ir.stream import StreamEnd, StreamError, StreamEvent, StreamStart
from backend.policies import budget as budget_policy
from backend.policies import dlp as dlp_policy
from backend.policies import limits as limits_policy
from backend.policies import response_cache as cache_policy
from backend.policies import tags as tags_policy
from backend.policies.calls import ProviderCalls
from backend.policies.context import RequestContext
from backend.policies.stream_tally import UPSTREAM_CUT, StreamTally, abandoned_usage

log = logging.getLogger("switchboard.pipeline")

TIER_HEADER = "x-switchboard-tier"


@dataclasses.dataclass(slots=True)
class Prepared:
    request: ChatRequest
    candidates: list[str]
    cache_key: str | None
    #: What the response cache holds for it (a hit: no reservation and no provider call).
    cached: cache_policy.Cached


class ChatPipeline:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.calls = ProviderCalls(gateway)

    # -- before the call -----------------------------------------------------------------------
    async def prepare(
        self, ctx: RequestContext, req: ChatRequest, headers: Mapping[str, str]
    ) -> Prepared:
        gw = self.gw
        principal = ctx.principal
        assert principal is not None
        ctx.requested_model = req.model
        req, ctx.tags = tags_policy.take_tags(req, headers)
        resolution = gw.router.resolve(
            req.model, principal, gw.store.routing, tier=headers.get(TIER_HEADER)
        )
        allowed = limits_policy.allowed_candidates(principal, resolution)
        await limits_policy.admit(ctx, gw, req)
        ctx.agent_id, ctx.tier = resolution.agent_id, resolution.tier
        req = await dlp_policy.redact(ctx, gw, req)
        req = budget_policy.bound_output(ctx, gw, req)
        candidates = budget_policy.billable(ctx, gw, gw.router.order(allowed))
        if gw.settings.log_bodies:
            ctx.request_body = _request_body_text(req)
        cache_key = cache_policy.key_for(gw, principal, req, candidates[0])
        cached = await cache_policy.lookup(gw, cache_key, req)
        if not cached.hit:
            await budget_policy.reserve(ctx, gw, req, candidates)
        else:
            ctx.cache_hit = True
            ctx.actual_model = candidates[0]
            ctx.provider = gw.router.parse(candidates[0]).provider
        return Prepared(req, candidates, cache_key, cached)

    # -- non-streaming -------------------------------------------------------------------------
    async def complete(self, ctx: RequestContext, prepared: Prepared) -> ChatResponse:
        try:
            resp = prepared.cached.response
            if resp is None:
                resp = await self.calls.chat(ctx, prepared.request, prepared.candidates)
                await cache_policy.store(self.gw, prepared.cache_key, resp, ctx.provider)
            ctx.usage = resp.usage
            if self.gw.settings.log_bodies:
                # Logged before restoration: the log keeps placeholders, never raw values.
                ctx.response_body = _response_body_text(resp)
            resp = dlp_policy.restore(ctx, resp)
            ctx.mark_first_byte()
            await budget_policy.settle(ctx, self.gw)
            return resp
        except GatewayError as err:
            await self.fail(ctx, err)
            raise
        except BaseException:
            await budget_policy.release(ctx, self.gw)
            raise

    # -- streaming -----------------------------------------------------------------------------
    async def open_stream(self, ctx: RequestContext, prepared: Prepared) -> EventStream:
        """Return the stream once its first event exists (fallback ends there).

        Errors before that raise ``GatewayError`` (the proxy answers with a plain error body).
        """
        ctx.streamed = True
        if prepared.cached.events is not None:
            events: AsyncIterator[StreamEvent] = cache_policy.replay(prepared.cached.events)
            return EventStream(self, ctx, prepared.request, events, None)
        try:
            events = await self.calls.stream(ctx, prepared.request, prepared.candidates)
        except GatewayError as err:
            await self.fail(ctx, err)
            raise
        except BaseException:
            await budget_policy.release(ctx, self.gw)
            raise
        recorder = (
            cache_policy.StreamRecorder(prepared.request, apart=prepared.cached.apart)
            if prepared.cache_key
            else None
        )
        return EventStream(self, ctx, prepared.request, events, (prepared.cache_key, recorder))

    async def close_stream(
        self,
        ctx: RequestContext,
        req: ChatRequest,
        finished: bool,
        caching: tuple[str | None, Any] | None,
        tally: StreamTally,
    ) -> None:
        """Settle and log a stream however it ended (called once, by ``EventStream``)."""
        ctx.response_body = tally.body()
        recorder = caching[1] if caching else None
        if finished and ctx.error is None:
            if caching:
                await cache_policy.store_stream(self.gw, caching[0], recorder, ctx.provider)
            await budget_policy.settle(ctx, self.gw)
        elif ctx.error is None:
            # The client hung up. The provider bills what it generated whether or not anyone
            # read it, so do we: its input and the output produced so far.
            ctx.status = 499
            if not ctx.cache_hit:
                billed = abandoned_usage(ctx.usage, req, tally.chars)
                ctx.usage = billed.usage
                ctx.note = ("client_closed", billed.note(tally.chars))
            await budget_policy.settle(ctx, self.gw)
        elif tally.chars or ctx.usage.output_tokens or ctx.usage.input_tokens:
            # Cut short by the upstream after it produced or counted something: the provider
            # bills that although it never sent its final usage. Billed like an abandoned
            # stream; the row keeps the error's status and says what was estimated.
            if not ctx.cache_hit:
                billed = abandoned_usage(ctx.usage, req, tally.chars)
                ctx.usage = billed.usage
                ctx.billing_note = billed.note(tally.chars, UPSTREAM_CUT)
            await budget_policy.settle(ctx, self.gw)
        else:
            await budget_policy.release(ctx, self.gw)
        self.finish(ctx)

    # -- after ---------------------------------------------------------------------------------
    async def fail(self, ctx: RequestContext, err: GatewayError) -> None:
        ctx.fail(err)
        await budget_policy.release(ctx, self.gw)
        self._report_error(ctx, err)

    def _report_error(self, ctx: RequestContext, err: GatewayError) -> None:
        if err.status < 500 and err.kind not in ("upstream", "timeout", "unavailable"):
            return  # the caller's own mistakes are in the request log, not error reports
        p = ctx.principal
        self.gw.log_writer.submit_error(
            ErrorRecord(
                created_at=ctx.created_at,
                source="gateway",
                type=err.kind,
                error=err.message[:2000],
                model=ctx.actual_model or ctx.requested_model,
                user_id=p.user.id if p and p.user else None,
                org_id=p.org_id if p else None,
                agent=ctx.agent_id,
                request_id=ctx.request_id,
            )
        )

    def finish(self, ctx: RequestContext) -> None:
        self.gw.log_writer.submit(ctx.log_record())
        if self.gw.request_log is not None:
            self.gw.request_log.finished(ctx)
        if self.gw.tracing is not None:
            self.gw.tracing.end_request(ctx)


def _request_body_text(req: ChatRequest) -> str:
    """The conversation as sent upstream (already DLP-redacted) for the activity export.

    orjson serializes the IR dataclasses natively, far cheaper than ``dataclasses.asdict``.
    """
    return orjson.dumps({"system": req.system, "messages": req.messages}).decode()


def _response_body_text(resp: ChatResponse) -> str:
    return orjson.dumps(resp.content).decode()


class EventStream:
    """The pipeline's streamed answer: the events to encode, then the request's end.

    Closing it ends the request exactly once, however the stream stopped: the upstream
    response is closed, the reservation settled or released, the row logged. That holds even
    when nobody ever read it (a client that left before the first frame): an async generator
    that never started runs no ``finally``, so the end cannot live in one alone.
    """

    def __init__(
        self,
        pipeline: ChatPipeline,
        ctx: RequestContext,
        req: ChatRequest,
        events: AsyncIterator[StreamEvent],
        caching: tuple[str | None, Any] | None,
    ) -> None:
        self._pipeline = pipeline
        self._ctx = ctx
        self._req = req
        self._events = events
        self._caching = caching
        self._tally = StreamTally(keep_text=pipeline.gw.settings.log_bodies)
        self._finished = False
        self._closed = False
        self._gen = self._relay()

    def __aiter__(self) -> EventStream:
        return self

    def __anext__(self) -> Awaitable[StreamEvent]:
        return self._gen.__anext__()

    async def aclose(self) -> None:
        try:
            await self._gen.aclose()
        finally:
            await self._end()

    async def _relay(self) -> AsyncGenerator[StreamEvent, None]:
        ctx = self._ctx
        restorer = dlp_policy.stream_restorer(ctx)
        recorder = self._caching[1] if self._caching else None
        tally = self._tally
        try:
            async for ev in self._events:
                if recorder is not None:
                    recorder.feed(ev)
                if isinstance(ev, StreamStart) and ev.usage is not None:
                    ctx.usage = dataclasses.replace(ev.usage)
                elif isinstance(ev, StreamEnd):
                    ctx.usage = ev.usage
                    self._finished = True
                elif isinstance(ev, StreamError):
                    ctx.fail(ev.error)
                    self._pipeline._report_error(ctx, ev.error)
                tally.feed(ev)  # before restoration: the log keeps placeholders only
                for out in restorer(ev) if restorer is not None else (ev,):
                    ctx.mark_first_byte()
                    yield out
        finally:
            await self._end()

    async def _end(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A client that hangs up cancels the stream's task, and every await in a cancelled
        # scope is cancelled again: unshielded, a budget that really awaits (Redis) would never
        # settle nor release, and the log row would be lost.
        with anyio.CancelScope(shield=True):
            try:
                close = getattr(self._events, "aclose", None)
                if close is not None:
                    await close()
            finally:
                await self._pipeline.close_stream(
                    self._ctx, self._req, self._finished, self._caching, self._tally
                )
