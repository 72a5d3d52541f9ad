"""Response-cache policy: who may use the exact-match cache, and recording streamed answers.

Only users who opted in to ``response_cache``, while the gateway offers it. Keys are computed over
the DLP-redacted request, and answers are stored before restoration, so raw values never reach
the cache (or Redis).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from backend.cache.response_cache import (
    FEATURE,
    cache_key,
    cache_scope,
    new_answer,
    replay_as_stream,
)
from backend.gateway import Gateway
from backend.ir.chat import (
    ChatRequest,
    ChatResponse,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
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
from backend.state.snapshot import Principal


def key_for(gw: Gateway, principal: Principal, req: ChatRequest, model: str) -> str | None:
    if FEATURE not in gw.store.settings.offered_features or principal.user is None:
        return None
    if FEATURE not in gw.store.tenancy.user_features.get(principal.user.id, frozenset()):
        return None
    return cache_key(cache_scope(principal), model, req)


async def lookup(gw: Gateway, key: str | None) -> ChatResponse | None:
    if key is None:
        return None
    answer = await gw.response_cache.get(key)
    return answer.response if answer is not None else None


async def store(gw: Gateway, key: str | None, resp: ChatResponse, provider: str | None) -> None:
    if key is not None:
        await gw.response_cache.put(
            key, new_answer(resp, provider), gw.store.settings.response_cache_ttl_s
        )


async def replay(resp: ChatResponse) -> AsyncIterator[StreamEvent]:
    for ev in replay_as_stream(resp):
        yield ev


class StreamRecorder:
    """Rebuilds the ``ChatResponse`` a stream amounted to, so it can be cached.

    A stream with parts the IR does not model (``OpaqueEvent``, opaque blocks) is not cached:
    their deltas are the upstream's wire format, which this recorder cannot reassemble, and a
    hit must answer what a miss did.
    """

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.parts: list[Part] = []
        self.response: ChatResponse | None = None
        self._opaque = False

    def feed(self, ev: StreamEvent) -> None:
        if isinstance(ev, StreamStart):
            self.id, self.model = ev.id, ev.model
        elif isinstance(ev, OpaqueEvent) or (isinstance(ev, BlockStart) and ev.kind == "opaque"):
            self._opaque = True
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
        elif isinstance(ev, StreamEnd) and not self._opaque:
            self.response = ChatResponse(
                id=self.id,
                model=self.model,
                content=self.parts,
                finish_reason=ev.finish_reason,
                usage=Usage(
                    **{
                        f: getattr(ev.usage, f)
                        for f in (
                            "input_tokens",
                            "output_tokens",
                            "cached_tokens",
                            "cache_write_tokens",
                        )
                    }
                ),
                stop_sequence=ev.stop_sequence,
            )
