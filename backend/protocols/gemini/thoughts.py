"""Another provider's thinking, carried through a Gemini client in a ``thoughtSignature``.

Anthropic's signed ``thinking`` and ``redacted_thinking`` blocks must come back unchanged with
the next turn of a tool-using conversation, or Anthropic refuses it. A Gemini client keeps what
Gemini itself needs: the ``thoughtSignature`` of a function call part (Gemini 3 refuses a turn
without it), while some clients drop thought parts from their history. So an answer for a Gemini
client packs the signed thinking that precedes a function call into that call's
``thoughtSignature``, and the door unpacks it when the history comes back.

The packed value is standard base64 (SDKs decode signatures as bytes) of a fixed prefix and the
JSON list ``[{"t": thinking, "s": signature} | {"r": redacted_data}, ...]``. Gemini's own
signatures never start with the prefix; they pass through untouched.
"""

from __future__ import annotations

import base64
import binascii

import orjson

from backend.ir.chat import Part, ThinkingPart

_PREFIX = b"switchboard.thoughts.v1:"


def pack_thoughts(parts: list[ThinkingPart]) -> str | None:
    """The signature carrying ``parts`` (signed or redacted ones only), or None."""
    items = []
    for p in parts:
        if p.redacted_data:
            items.append({"r": p.redacted_data})
        elif p.signature:
            items.append({"t": p.thinking, "s": p.signature})
    if not items:
        return None
    return base64.b64encode(_PREFIX + orjson.dumps(items)).decode()


def unpack_thoughts(signature: str) -> list[Part] | None:
    """The thinking a packed signature carries; None for any other signature (Gemini's)."""
    if not signature.startswith("c3dpdGNoYm9hcmQu"):  # base64 of "switchboard."
        return None
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_PREFIX):
        return None
    try:
        items = orjson.loads(raw[len(_PREFIX) :])
    except orjson.JSONDecodeError:
        return None
    out: list[Part] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("r"), str):
            out.append(ThinkingPart(redacted_data=item["r"]))
        elif isinstance(item.get("t"), str) and isinstance(item.get("s"), str):
            out.append(ThinkingPart(thinking=item["t"], signature=item["s"]))
    return out
