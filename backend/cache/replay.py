"""Whether a cached (non-streamed) answer can be replayed as a stream without losing anything.

A streamed and a non-streamed ask share one cache entry only where the replay is lossless for
the client that asks. An answer's extras (``backend.ir.chat``) belong to the upstream's protocol
and only a client of that protocol ever sees them, so for any other client the plain replay
(``response_cache.replay_as_stream``) is exact. For a client of the answer's own protocol:

- OpenAI chat: the answer's top-level fields (``system_fingerprint``, ``service_tier``...) ride on
  ``StreamStart.opaque`` and its usage object on ``StreamEnd.opaque``: where the stream decoder
  puts a live stream's, so the client's chunks and final usage carry them.
- Anthropic: unknown top-level fields (``container``...) and usage details (``service_tier``,
  ``cache_creation``, ``server_tool_use``) ride on ``StreamStart.opaque`` (the ``message_start``
  message), ``server_tool_use`` again and a folded ``stop_reason`` (``pause_turn``) on
  ``StreamEnd.opaque`` (``message_delta``), as a live stream sends them.
- Anything else (further choices of ``n > 1``, log probabilities, a message's or a block's own
  extras such as ``citations``, Gemini's and the Responses API's answer extras): no replay could
  reproduce a live stream of it, so ``stream_envelope`` answers None and the pipeline keeps
  streamed answers apart for that request (a recorded stream under ``stream_key``), never
  replaying a degraded one.
"""

from __future__ import annotations

from typing import Any

from backend.ir.chat import ChatResponse, Opaque
from backend.protocols.openai_chat.vocab import (
    CHOICES_KEY,
    LOGPROBS_KEY,
    MESSAGE_KEY,
    USAGE_KEY,
)

Envelope = tuple[Opaque | None, Opaque | None]


def stream_envelope(resp: ChatResponse, client_protocol: str) -> Envelope | None:
    """(``StreamStart.opaque``, ``StreamEnd.opaque``) that make a replay of ``resp`` lossless
    for a client of ``client_protocol``, or None when no replay can be."""
    if resp.protocol != client_protocol:
        return None, None  # the client never sees another protocol's extras
    if any(_keys(getattr(part, "extra", None)) for part in resp.content):
        return None
    extra = _keys(resp.extra)
    if not extra:
        return None, None
    if resp.protocol == "openai":
        return _openai(extra)
    if resp.protocol == "anthropic":
        return _anthropic(extra)
    return None


def _keys(extra: dict[str, Any] | None) -> dict[str, Any]:
    """The wire keys of an ``extra`` (``_`` keys are codec bookkeeping, never sent)."""
    return {k: v for k, v in (extra or {}).items() if not k.startswith("_")}


def _opaque(protocol: str, data: dict[str, Any]) -> Opaque | None:
    return Opaque(protocol, data) if data else None


def _openai(extra: dict[str, Any]) -> Envelope | None:
    if any(k in extra for k in (CHOICES_KEY, LOGPROBS_KEY, MESSAGE_KEY)):
        return None
    start = {k: v for k, v in extra.items() if k != USAGE_KEY}
    end = {"usage": extra[USAGE_KEY]} if isinstance(extra.get(USAGE_KEY), dict) else {}
    return _opaque("openai", start), _opaque("openai", end)


def _anthropic(extra: dict[str, Any]) -> Envelope:
    start = {k: v for k, v in extra.items() if k not in ("usage", "stop_reason")}
    end: dict[str, Any] = {}
    details = extra.get("usage")
    if isinstance(details, dict) and details:
        start["usage"] = details
        if "server_tool_use" in details:
            end["usage"] = {"server_tool_use": details["server_tool_use"]}
    if isinstance(extra.get("stop_reason"), str):
        end["delta"] = {"stop_reason": extra["stop_reason"]}
    return _opaque("anthropic", start), _opaque("anthropic", end)
