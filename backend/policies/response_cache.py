"""Response-cache policy: who may use the exact-match cache, and recording streamed answers.

Only users who opted in to ``response_cache``, while the gateway offers it. Keys are computed over
the DLP-redacted request, and answers are stored before restoration, so raw values never reach
the cache (or Redis).

Lossless both ways: a non-streamed ask is answered from a non-streamed answer (or a stream that
amounted to one with nothing unmodelled in it); a streamed ask is replayed from the shared entry
only when ``replay.stream_envelope`` says the replay loses nothing for its client, else from a
recorded stream of the same request (``stream_key``), else it is a miss whose stream is then
recorded there (``apart``): the shared entry keeps the richer non-streamed answer.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from backend.cache.replay import stream_envelope
from backend.cache.response_cache import (
    FEATURE,
    CachedStream,
    cache_key,
    cache_scope,
    new_answer,
    replay_as_stream,
    stream_key,
)
from backend.gateway import Gateway
from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
)
from backend.ir.stream import (
    BlockStart,
    OpaqueEvent,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.protocols.extras import caller_protocol
from backend.state.snapshot import Principal


@dataclass(slots=True)
class Cached:
    """What the cache holds for one request: an answer, a recorded stream to replay, or none."""

    response: ChatResponse | None = None
    events: list[StreamEvent] | None = None
    #: A streamed ask found an answer it cannot replay losslessly: record its stream apart.
    apart: bool = False

    @property
    def hit(self) -> bool:
        return self.response is not None or self.events is not None


def key_for(gw: Gateway, principal: Principal, req: ChatRequest, model: str) -> str | None:
    if FEATURE not in gw.store.settings.offered_features or principal.user is None:
        return None
    if FEATURE not in gw.store.tenancy.user_features.get(principal.user.id, frozenset()):
        return None
    return cache_key(cache_scope(principal), model, req)


async def lookup(gw: Gateway, key: str | None, req: ChatRequest) -> Cached:
    if key is None:
        return Cached()
    answer = await gw.response_cache.get(key)
    if not req.stream:
        return Cached(response=answer.response if answer is not None else None)
    if answer is not None:
        envelope = stream_envelope(answer.response, caller_protocol(req))
        if envelope is not None:
            return Cached(events=replay_as_stream(answer.response, *envelope))
    recorded = await gw.response_cache.get_stream(stream_key(key))
    if recorded is not None:
        return Cached(events=recorded.events)
    return Cached(apart=answer is not None)


async def store(gw: Gateway, key: str | None, resp: ChatResponse, provider: str | None) -> None:
    if key is not None:
        await gw.response_cache.put(
            key, new_answer(resp, provider), gw.store.settings.response_cache_ttl_s
        )


async def store_stream(
    gw: Gateway, key: str | None, recorder: StreamRecorder | None, provider: str | None
) -> None:
    """A finished stream: as a plain answer (shared with non-streamed asks) when nothing in it
    is unmodelled, else as its events under ``stream_key``."""
    if key is None or recorder is None or recorder.events is None:
        return
    if recorder.response is not None and not recorder.apart:
        await store(gw, key, recorder.response, provider)
        return
    await gw.response_cache.put(
        stream_key(key),
        CachedStream(recorder.events, time.time(), provider),
        gw.store.settings.response_cache_ttl_s,
    )


async def replay(events: list[StreamEvent]) -> AsyncIterator[StreamEvent]:
    for ev in events:
        yield ev


class StreamRecorder:
    """Keeps a stream's events and rebuilds the ``ChatResponse`` it amounted to, for the cache.

    A stream with anything the IR does not model for its client's protocol (``OpaqueEvent``,
    opaque blocks, opaque keys on a block's or the stream's start or end) has no lossless
    ``ChatResponse`` form (its extras are the upstream's stream wire format): ``response``
    stays None and only ``events`` is cached, for streamed asks of the same request. Another
    protocol's extras never reach the client, so they do not count (the key includes the
    request's protocol). Text deltas of one block are joined.
    """

    def __init__(self, req: ChatRequest | None = None, *, apart: bool = False) -> None:
        self.client = caller_protocol(req) if req is not None else None
        self.id = ""
        self.model = ""
        self.parts: list[Part] = []
        self.response: ChatResponse | None = None
        #: The stream's events once it ended (None before, and for a failed stream).
        self.events: list[StreamEvent] | None = None
        self.apart = apart
        self._seen: list[StreamEvent] = []
        self._opaque = False

    def feed(self, ev: StreamEvent) -> None:
        self._keep(ev)
        opaque = getattr(ev, "opaque", None)
        if opaque is not None and (self.client is None or opaque.protocol == self.client):
            self._opaque = True
        if isinstance(ev, StreamStart):
            self.id, self.model = ev.id, ev.model
        elif isinstance(ev, OpaqueEvent) or (isinstance(ev, BlockStart) and ev.kind == "opaque"):
            pass  # an unmodelled block or delta: in ``events`` only
        elif isinstance(ev, BlockStart):
            if ev.kind == "tool_call":
                self.parts.append(ToolCallPart(ev.tool_call_id or "", ev.tool_name or "", ""))
            elif ev.kind == "text":
                self.parts.append(TextPart(""))
            elif ev.kind == "redacted_thinking":
                self.parts.append(ThinkingPart(redacted_data=ev.data))
            else:
                self.parts.append(ThinkingPart())
        elif isinstance(ev, TextDelta) and self.parts and isinstance(self.parts[-1], TextPart):
            self.parts[-1].text += ev.text
        elif (
            isinstance(ev, ToolArgsDelta)
            and self.parts
            and isinstance(self.parts[-1], ToolCallPart)
        ):
            self.parts[-1].arguments += ev.partial_json
        elif (
            isinstance(ev, ThinkingDelta)
            and self.parts
            and isinstance(self.parts[-1], ThinkingPart)
        ):
            self.parts[-1].thinking += ev.thinking
            if ev.signature:
                self.parts[-1].signature = ev.signature
        elif isinstance(ev, StreamEnd):
            self.events = self._seen
            if not self._opaque:
                self.response = ChatResponse(
                    id=self.id,
                    model=self.model,
                    content=self.parts,
                    finish_reason=ev.finish_reason,
                    usage=dataclasses.replace(ev.usage),
                    stop_sequence=ev.stop_sequence,
                )

    def _keep(self, ev: StreamEvent) -> None:
        last = self._seen[-1] if self._seen else None
        if type(ev) is TextDelta and type(last) is TextDelta and last.index == ev.index:
            self._seen[-1] = TextDelta(ev.index, last.text + ev.text)
        else:
            self._seen.append(ev)
