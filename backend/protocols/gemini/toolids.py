"""Tool-call ids for Gemini, which has none, and the thought signature they carry.

Gemini function calls have no id, so one is made up: ``call_<responseId>_<n>_<name>`` (n counts
the calls of one answer from 0), identical for a streamed and a non-streamed answer, and
distinct across turns so agents that key calls by id never see a repeat.

Gemini 3 also attaches an opaque ``thoughtSignature`` to a function call and answers 400 when it
is not sent back with that call next turn. No client protocol has a field for it, but every
client echoes the tool-call id verbatim, so the signature rides in the id after ``__ts_``
(URL-safe base64, so the id stays within ``[A-Za-z0-9_-]`` as Anthropic requires).
"""

from __future__ import annotations

import re

_MARK = "__ts_"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def make_tool_call_id(
    response_id: str | None, index: int, name: str, signature: str | None = None
) -> str:
    rid = _UNSAFE.sub("", response_id or "")[:16]
    safe_name = _UNSAFE.sub("_", name)[:64]
    base = f"call_{rid}_{index}_{safe_name}" if rid else f"call_{index}_{safe_name}"
    if signature:
        base += _MARK + signature.replace("+", "-").replace("/", "_").rstrip("=")
    return base


def signature_from_id(tool_call_id: str) -> str | None:
    """The thought signature a made-up id carries (standard base64), or None."""
    pos = tool_call_id.find(_MARK)
    if pos < 0:
        return None
    sig = tool_call_id[pos + len(_MARK) :]
    if not sig:
        return None
    sig = sig.replace("-", "+").replace("_", "/")
    return sig + "=" * (-len(sig) % 4)


def without_signature(tool_call_id: str) -> str:
    """The id a client sees: the signature travels in ``thoughtSignature`` beside it."""
    pos = tool_call_id.find(_MARK)
    return tool_call_id if pos < 0 else tool_call_id[:pos]
