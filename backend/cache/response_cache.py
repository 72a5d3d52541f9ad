"""The exact-match response cache, a feature users opt into (``FEATURE = "response_cache"``).

A repeated request (same tenant scope, same resolved model, same canonical request) is answered
from the cache instead of the provider. The pipeline owns the policy around it:

- only for principals whose user opted in and when the gateway offers the feature;
- a hit costs 0 (settle with zero cost, keep the stored token counts for information) and is
  marked in the log;
- a hit for a streaming request is sent as ``replay_as_stream(answer.response)`` when that is
  lossless for the client (``replay.stream_envelope``); otherwise streamed answers of that
  request live apart, under ``stream_key(key)``, as the events they were (``CachedStream``),
  and replay exactly;
- with DLP on, compute the key over the redacted request and store the redacted answer
  (restore per request as usual), so raw values never land in the cache or in Redis.

Keys (``cache_key``) are a SHA-256 over ``[version, scope, model, canonical request]``. The
scope comes first and is never empty, so one organization can never read another's answer;
``stream``/``stream_options``/``include_usage`` and ``user`` are left out, so a streamed and a
non-streamed ask share an entry where nothing is lost by it (see above).

Storage is aiocache: process memory by default (``SimpleMemoryCache``; TTL bounds its size), Redis
when ``REDIS_URL`` is set, and then every gateway instance shares the entries. A cache failure is
a miss, never an error for the client.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from backend.cache.serialize import (
    event_from_dict,
    event_to_dict,
    request_to_dict,
    response_from_dict,
    response_to_dict,
)
from backend.ir.chat import ChatRequest, ChatResponse, Opaque, TextPart, ThinkingPart, ToolCallPart
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from backend.state.snapshot import Principal

if TYPE_CHECKING:
    from aiocache.base import BaseCache

log = logging.getLogger("switchboard.cache")

FEATURE = "response_cache"
NAMESPACE = "switchboard:rc"
#: Bumped when the key recipe or the stored format changes; old entries then simply miss.
FORMAT_VERSION = 3

#: Request fields that do not change the answer (wire names and their IR names).
_IGNORED_FIELDS = frozenset({"stream", "stream_options", "include_usage", "user"})


@dataclass(slots=True)
class CachedAnswer:
    response: ChatResponse
    #: When it was stored (Unix seconds).
    stored_at: float
    #: Which provider produced it originally (for the log line of a hit).
    provider: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": FORMAT_VERSION,
                "stored_at": self.stored_at,
                "provider": self.provider,
                "response": response_to_dict(self.response),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> CachedAnswer | None:
        """``None`` for anything this version did not write (treated as a miss)."""
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
                return None
            return cls(
                response=response_from_dict(data["response"]),
                stored_at=float(data["stored_at"]),
                provider=data.get("provider"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@dataclass(slots=True)
class CachedStream:
    """A streamed answer kept as the events it was (its extras have no lossless other form)."""

    events: list[StreamEvent]
    stored_at: float
    provider: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": FORMAT_VERSION,
                "stored_at": self.stored_at,
                "provider": self.provider,
                "events": [event_to_dict(ev) for ev in self.events],
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> CachedStream | None:
        """``None`` for anything this version did not write (treated as a miss)."""
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
                return None
            return cls(
                events=[event_from_dict(ev) for ev in data["events"]],
                stored_at=float(data["stored_at"]),
                provider=data.get("provider"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def stream_key(key: str) -> str:
    """Where the streamed answers of the request ``key`` names live when they cannot share it."""
    return f"{key}.stream"


def cache_scope(principal: Principal) -> str:
    """The tenant boundary of cached answers: the app for app keys, else the organization.

    Users without an organization get their own scope; a key with no owner at all gets its
    rotation chain's (so rotating it keeps its answers); nothing is ever shared gateway-wide.
    """
    if principal.app is not None:
        return f"app:{principal.app.id}"
    if principal.org is not None:
        return f"org:{principal.org.id}"
    if principal.user is not None:
        return f"user:{principal.user.id}"
    return f"key:{principal.key.counter_id}"


def cache_key(scope: str, model: str, request: ChatRequest | Mapping[str, Any]) -> str:
    """Hex SHA-256 identifying an answer: ``scope`` + resolved ``model`` + canonical request.

    ``request`` is the IR request or a wire-format body; use the same form for every lookup of
    one endpoint (the two forms of one ask hash differently).
    """
    if not scope:
        raise ValueError("a cache key needs a tenant scope")
    body = request_to_dict(request) if isinstance(request, ChatRequest) else dict(request)
    canonical = {k: v for k, v in body.items() if k not in _IGNORED_FIELDS}
    material = orjson.dumps(
        [FORMAT_VERSION, scope, model, canonical],
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
    )
    return hashlib.sha256(material).hexdigest()


class ResponseCache:
    def __init__(
        self, backend: BaseCache | None = None, *, make: Callable[[], BaseCache] | None = None
    ) -> None:
        """``backend``, or ``make``, which makes it when the cache is first used."""
        if (backend is None) == (make is None):
            raise ValueError("give a backend or a function that makes one")
        self._made = backend
        self._make = make

    @property
    def _backend(self) -> BaseCache:
        if self._made is None:
            assert self._make is not None
            self._made = self._make()
        return self._made

    @classmethod
    def create(cls, redis_url: str | None = None, *, namespace: str = NAMESPACE) -> ResponseCache:
        """In memory without ``redis_url``, else shared through Redis; made on first use.

        The cache is opt-in per user, and aiocache imports redis-py (~4 MB of RSS) whether or
        not Redis is configured: a gateway whose users never turn the cache on never loads it.
        """

        def make() -> BaseCache:
            from backend.cache.backends import make_cache_backend

            return make_cache_backend(redis_url, namespace=namespace)

        return cls(make=make)

    async def has(self, key: str) -> bool:
        """Whether an entry exists now (it may still expire before a ``get``)."""
        try:
            return bool(await self._backend.exists(key))
        except Exception as exc:
            log.warning("response cache read failed (%s), treating as a miss", type(exc).__name__)
            return False

    async def get(self, key: str) -> CachedAnswer | None:
        try:
            raw = await self._backend.get(key)
        except Exception as exc:  # includes aiocache's timeout
            log.warning("response cache read failed (%s), treating as a miss", type(exc).__name__)
            return None
        if raw is None:
            return None
        return CachedAnswer.from_bytes(raw)

    async def get_stream(self, key: str) -> CachedStream | None:
        """A recorded stream (``key`` is a ``stream_key``)."""
        try:
            raw = await self._backend.get(key)
        except Exception as exc:
            log.warning("response cache read failed (%s), treating as a miss", type(exc).__name__)
            return None
        return None if raw is None else CachedStream.from_bytes(raw)

    async def put(self, key: str, answer: CachedAnswer | CachedStream, ttl: float) -> None:
        """Store ``answer`` for ``ttl`` seconds; ``ttl <= 0`` stores nothing."""
        if ttl <= 0:
            return
        # aiocache sends an int TTL as SETEX seconds and a float as PSETEX milliseconds.
        expiry: float = int(ttl) if float(ttl).is_integer() else float(ttl)
        try:
            await self._backend.set(key, answer.to_bytes(), ttl=expiry)
        except Exception as exc:
            log.warning("response cache write failed (%s)", type(exc).__name__)

    async def delete(self, key: str) -> None:
        try:
            await self._backend.delete(key)
        except Exception as exc:
            log.warning("response cache delete failed (%s)", type(exc).__name__)

    async def close(self) -> None:
        if self._made is not None:
            await self._made.close()


def new_answer(response: ChatResponse, provider: str | None = None) -> CachedAnswer:
    return CachedAnswer(response=response, stored_at=time.time(), provider=provider)


def replay_as_stream(
    resp: ChatResponse, start: Opaque | None = None, end: Opaque | None = None
) -> list[StreamEvent]:
    """The canonical stream a provider would have produced for ``resp`` (one delta per block).

    Empty text blocks are skipped (Anthropic clients reject them); the usage in ``StreamEnd`` is
    the stored answer's. ``start`` / ``end``: the answer's extras as a live stream carries them
    (``replay.stream_envelope``).
    """
    events: list[StreamEvent] = [
        StreamStart(id=resp.id, model=resp.model, created=resp.created, opaque=start)
    ]
    index = 0
    for part in resp.content:
        if isinstance(part, TextPart):
            if not part.text:
                continue
            events += [BlockStart(index, "text"), TextDelta(index, part.text)]
        elif isinstance(part, ToolCallPart):
            events.append(BlockStart(index, "tool_call", tool_call_id=part.id, tool_name=part.name))
            if part.arguments:
                events.append(ToolArgsDelta(index, part.arguments))
        elif isinstance(part, ThinkingPart):
            if part.redacted_data is not None:
                events.append(BlockStart(index, "redacted_thinking", data=part.redacted_data))
            else:
                events += [
                    BlockStart(index, "thinking"),
                    ThinkingDelta(index, part.thinking, part.signature),
                ]
        elif isinstance(part, Opaque):
            # A block the IR does not model: its whole wire form is its start.
            events.append(BlockStart(index, "opaque", opaque=part))
        else:  # images / tool results never appear in an assistant answer
            continue
        events.append(BlockStop(index))
        index += 1
    events.append(
        StreamEnd(
            finish_reason=resp.finish_reason,
            usage=dataclasses.replace(resp.usage),
            stop_sequence=resp.stop_sequence,
            opaque=end,
        )
    )
    return events
