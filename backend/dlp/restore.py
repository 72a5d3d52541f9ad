"""Restoration: put the original values back where an answer names their placeholders.

Text, tool call arguments and the stop sequence that ended the answer (stop sequences are
redacted on the way out) are restored, non-streaming (``restore_response``) and streaming
(``StreamRestorer``); so are the further choices of an OpenAI ``n > 1`` answer, which ride in
``ChatResponse.extra`` as upstream JSON. Log probabilities are left alone: their tokens are
pieces of the redacted text the model saw, and no piece is a whole value.

In tool call arguments a value is inserted JSON-escaped, so arguments that were valid JSON stay
valid JSON. Thinking is left as the model wrote it: Anthropic signs it, and the next turn sends
it back verbatim.

Extras (``backend.ir.chat``): opaque answer parts and opaque stream events are restored too,
every text string in them (``dlp.fields`` decides which are text). The further choices of a
streamed OpenAI ``n > 1`` answer get the same hold-back per choice as blocks do, and so does a
server tool's input streamed as Anthropic ``input_json_delta`` pieces (JSON text, like a tool
call's arguments): a placeholder split across its deltas is restored. A ``citations_delta``
carries one whole citation, so its quoted text is restored in that event.

Only placeholders of this request's vault are replaced; any other bracketed token (including a
literal ``[EMAIL_1]`` the user typed, which ``Vault.reserve`` kept out of the numbering) is left
alone. A token is ``[`` + ``A-Z0-9_`` characters + ``]``, so tokens never nest or overlap:
that is what makes the streamed result equal to the non-streamed one for any chunking.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import orjson

from backend.dlp.fields import map_text
from backend.dlp.vault import Finding, Vault
from backend.ir.chat import ChatResponse, Opaque, Part, TextPart, ToolCallPart
from backend.ir.stream import (
    BlockStart,
    BlockStop,
    OpaqueEvent,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
)
from backend.protocols.openai_chat.vocab import CHOICES_KEY

_TOKEN = re.compile(r"\[[A-Z0-9_]+\]")


def _json_escape(value: str) -> str:
    return orjson.dumps(value).decode()[1:-1]


class _Tables:
    """Lookup tables derived once from a vault (which no longer changes once redaction is done)."""

    __slots__ = ("_json", "plain", "vault")

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.plain: dict[str, str] = dict(vault.items())
        self._json: dict[str, str] | None = None

    def restore(self, text: str, as_json: bool) -> str:
        if "[" not in text:
            return text
        if as_json:
            if self._json is None:  # only answers with tool calls need it
                self._json = {p: _json_escape(v) for p, v in self.plain.items()}
            table = self._json
        else:
            table = self.plain
        count = self.vault.count_restored

        def repl(m: re.Match[str]) -> str:
            token = m.group()
            value = table.get(token)
            if value is None:
                return token
            count(token)
            return value

        return _TOKEN.sub(repl, text)


def restore_text(text: str, vault: Vault, *, json_escaped: bool = False) -> str:
    """Replace this vault's placeholders in ``text`` (``json_escaped`` inside JSON text)."""
    if not vault:
        return text
    return _Tables(vault).restore(text, json_escaped)


def restore_response(resp: ChatResponse, vault: Vault) -> ChatResponse:
    """A copy of ``resp`` with text parts and tool call arguments restored."""
    if not vault:
        return resp
    tables = _Tables(vault)
    content: list[Part] = []
    for part in resp.content:
        if isinstance(part, TextPart):
            text = tables.restore(part.text, False)
            part = part if text is part.text else dataclasses.replace(part, text=text)
            if part.extra:  # citations quote the (redacted) sources
                extra = map_text(part.extra, lambda s: tables.restore(s, False))
                part = part if extra is part.extra else dataclasses.replace(part, extra=extra)
        elif isinstance(part, ToolCallPart):
            args = tables.restore(part.arguments, True)
            part = part if args is part.arguments else dataclasses.replace(part, arguments=args)
        elif isinstance(part, Opaque):
            part = _restore_opaque(part, tables)
        content.append(part)
    stop = resp.stop_sequence
    if stop:
        stop = tables.restore(stop, False)
    extra = resp.extra
    choices = extra.get(CHOICES_KEY)
    if isinstance(choices, list) and choices:
        extra = {**extra, CHOICES_KEY: [_restore_choice(c, tables) for c in choices]}
    return dataclasses.replace(resp, content=content, stop_sequence=stop, extra=extra)


def _restore_opaque(item: Opaque, tables: _Tables) -> Opaque:
    data = map_text(item.data, lambda s: tables.restore(s, False))
    return item if data is item.data else dataclasses.replace(item, data=data)


def _restore_choice(choice: Any, tables: _Tables) -> Any:
    """A copy of an upstream chat-completion choice with its message's text and arguments
    restored (anything not shaped as expected is left as the upstream sent it)."""
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        return choice
    message = dict(choice["message"])
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = tables.restore(content, False)
    elif isinstance(content, list):
        message["content"] = [
            {**p, "text": tables.restore(p["text"], False)}
            if isinstance(p, dict) and isinstance(p.get("text"), str)
            else p
            for p in content
        ]
    if isinstance(message.get("refusal"), str):
        message["refusal"] = tables.restore(message["refusal"], False)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        message["tool_calls"] = [_restore_call(c, tables) for c in calls]
    return {**choice, "message": message}


def _restore_call(call: Any, tables: _Tables) -> Any:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("arguments"), str):
        return call
    return {**call, "function": {**fn, "arguments": tables.restore(fn["arguments"], True)}}


class StreamRestorer:
    """Restores a canonical event stream as it flows, holding back as little as possible.

    Per block, text is emitted at once except a trailing ``[...`` that is still a proper prefix
    of one of the vault's placeholders (at most ``longest placeholder - 1`` characters), which
    waits for the next delta of the block or is flushed unchanged at ``BlockStop``,
    ``StreamEnd`` or ``StreamError``. Every other event passes through in order. With an empty
    vault ``feed`` returns the event untouched.
    """

    __slots__ = ("_choice_held", "_held", "_prefixes", "_tables", "max_hold")

    def __init__(self, vault: Vault) -> None:
        self._tables = _Tables(vault) if vault else None
        #: Proper prefixes of placeholders: what a delta may end with and still become one.
        self._prefixes = frozenset(p[:i] for p, _ in vault.items() for i in range(1, len(p)))
        #: The most characters this restorer may ever hold back for one block.
        self.max_hold = max(vault.longest_placeholder - 1, 0)
        #: block index -> (how the held text goes out again, is JSON text, held text)
        self._held: dict[int, tuple[_Maker, bool, str]] = {}
        #: OpenAI choice index (n > 1, choices after the first) -> held content
        self._choice_held: dict[int, str] = {}

    @property
    def held_chars(self) -> int:
        return sum(len(text) for _, _, text in self._held.values())

    def findings(self) -> list[Finding]:
        """Restorations per rule (counted on the vault, together with non-streamed ones)."""
        return self._tables.vault.restore_findings() if self._tables is not None else []

    def feed(self, ev: StreamEvent) -> list[StreamEvent]:
        tables = self._tables
        if tables is None:
            return [ev]
        if type(ev) is TextDelta:
            return self._delta(ev, ev.index, ev.text, TextDelta, False, tables)
        if type(ev) is ToolArgsDelta:
            return self._delta(ev, ev.index, ev.partial_json, ToolArgsDelta, True, tables)
        if type(ev) is OpaqueEvent:
            pieces = _input_json(ev)
            if pieces is not None:
                return self._delta(ev, pieces[0], pieces[1], pieces[2], True, tables)
            return [self._opaque(ev, tables)]
        if type(ev) is BlockStart and ev.opaque is not None:
            ev = dataclasses.replace(ev, opaque=_restore_opaque(ev.opaque, tables))
        if type(ev) is StreamEnd and ev.stop_sequence:
            stop = tables.restore(ev.stop_sequence, False)
            if stop is not ev.stop_sequence:
                ev = dataclasses.replace(ev, stop_sequence=stop)
        if type(ev) is StreamEnd and self._choice_held:
            held = [
                {"index": i, "delta": {"content": text}, "finish_reason": None}
                for i, text in sorted(self._choice_held.items())
            ]
            self._choice_held.clear()
            flushed = OpaqueEvent(None, Opaque("openai", {"choices": held}))
            return [*self.feed(flushed), *self.feed(ev)]
        if not self._held:
            return [ev]
        if type(ev) is BlockStop:
            out = self._flush(ev.index)
        elif isinstance(ev, StreamEnd | StreamError | BlockStart):
            # BlockStart with text still held means the previous block never stopped.
            out = [e for index in sorted(self._held) for e in self._flush(index)]
        else:
            return [ev]
        out.append(ev)
        return out

    def _opaque(self, ev: OpaqueEvent, tables: _Tables) -> OpaqueEvent:
        data = ev.opaque.data
        choices = data.get("choices") if ev.opaque.protocol == "openai" else None
        if not isinstance(choices, list):
            opaque = _restore_opaque(ev.opaque, tables)
            return ev if opaque is ev.opaque else OpaqueEvent(ev.index, opaque)
        restored = [self._choice(c, tables) for c in choices]
        return OpaqueEvent(ev.index, Opaque("openai", {**data, "choices": restored}))

    def _choice(self, choice: Any, tables: _Tables) -> Any:
        """A further choice's streamed delta, restored with a hold-back of its own."""
        if not isinstance(choice, dict) or not isinstance(choice.get("delta"), dict):
            return choice
        index = choice.get("index")
        if not isinstance(index, int) or index == 0:
            return choice  # choice 0's extras (log probabilities) are left alone
        delta = dict(choice["delta"])
        held = self._choice_held.pop(index, "")
        content = delta.get("content")
        if isinstance(content, str) or held:
            buf = held + (content if isinstance(content, str) else "")
            cut = buf.rfind("[")
            if cut >= 0 and buf[cut:] in self._prefixes and not choice.get("finish_reason"):
                self._choice_held[index] = buf[cut:]
                buf = buf[:cut]
            delta["content"] = tables.restore(buf, False)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            delta["tool_calls"] = [_restore_call(c, tables) for c in calls]
        return {**choice, "delta": delta}

    def _delta(
        self,
        ev: StreamEvent,
        index: int,
        text: str,
        make: _Maker,
        as_json: bool,
        tables: _Tables,
    ) -> list[StreamEvent]:
        held = self._held.pop(index, None)
        buf = held[2] + text if held is not None else text
        if "[" not in buf:
            return [ev] if held is None else [make(index, buf)]
        cut = buf.rfind("[")
        if buf[cut:] in self._prefixes:
            self._held[index] = (make, as_json, buf[cut:])
            buf = buf[:cut]
        out = tables.restore(buf, as_json)
        if not out:
            return []
        if out is text and held is None:
            return [ev]
        return [make(index, out)]

    def _flush(self, index: int) -> list[StreamEvent]:
        held = self._held.pop(index, None)
        if held is None or not held[2]:
            return []
        # Held text is never a whole placeholder, so it goes out as it came in.
        return [held[0](index, held[2])]


_Maker = Callable[[int, str], StreamEvent]


def _input_json(ev: OpaqueEvent) -> tuple[int, str, _Maker] | None:
    """A server tool's streamed input (Anthropic ``input_json_delta`` of an opaque block) as
    (block index, JSON text piece, how to rebuild the event from a restored piece), or None."""
    data = ev.opaque.data
    if ev.index is None or data.get("type") != "input_json_delta":
        return None
    piece = data.get("partial_json")
    if not isinstance(piece, str):
        return None
    protocol = ev.opaque.protocol

    def make(index: int, text: str) -> StreamEvent:
        return OpaqueEvent(index, Opaque(protocol, {**data, "partial_json": text}))

    return ev.index, piece, make
