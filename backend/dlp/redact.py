"""Redaction: replace sensitive values in a request by numbered placeholders.

``Redactor`` is a compiled policy (compile once, reuse for every request of that policy);
``redact_request`` walks every place of the chat IR where a user's value can hide and returns a
new request (the input is not mutated), the request's ``Vault`` and per-rule ``Finding`` counts.

What is redacted: every text that leaves for the provider. System text, message text parts,
tool call arguments (inside the JSON string values, keys and integers; the JSON stays valid),
tool result text, thinking text, the ``user`` field and ``metadata`` (keys, strings, large
integers); tool descriptions and the text inside tool schemas (descriptions, titles, enums,
defaults, examples), stop sequences, ``response_format``, the ``thinking`` config and the
protocol extras the IR carries unmodelled (``safety_identifier``, ``prompt_cache_key``,
``prediction.content``, ...), walked generically by ``backend.dlp.fields``. What stays
byte-exact: the model, ids, tool and message names, schema structure (property names,
``required``, ``type``, ``pattern``), credentials the app sends on purpose (an MCP server's
``authorization_token``), images and signed thinking signatures (``fields`` has the full rule).
Files: a text document's content and a file's name are redacted like message text; base64
file data (PDFs, Office documents...) is not scanned (the gateway does not parse documents, and
a PDF's text could not be rewritten without rebuilding the file).

Numbering follows the order values appear in the request, tools first (they come first in a
provider's prompt cache), so the same conversation redacts the same way turn after turn (which
keeps provider prompt caches warm). Placeholder-shaped literals already in the input are
reserved first (see ``Vault.reserve``); thinking text is not consulted for that, because it
holds the model's own references to the previous turn's placeholders.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from backend.dlp.custom import CustomDetector
from backend.dlp.detectors import Detector, Span, builtin_detector
from backend.dlp.errors import DlpFailure, DlpTimeout
from backend.dlp.fields import map_text, text_size, texts
from backend.dlp.rules import BUILTIN_RULES, DlpPolicy
from backend.dlp.scan import Scan
from backend.dlp.vault import Finding, Vault
from backend.ir.chat import (
    ChatRequest,
    EmbeddingRequest,
    FilePart,
    Message,
    Opaque,
    Part,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DlpFailure",
    "DlpTimeout",
    "Redactor",
    "RedactorCache",
    "redact_embeddings",
    "redact_into",
    "redact_request",
    "redact_subject",
    "redact_text",
    "request_text_size",
]

#: An IR dataclass with an ``extra`` dict (parts, messages, tools).
_WithExtra = TypeVar("_WithExtra", bound="DataclassInstance")

# orjson reads integers past 64 bits as floats; such documents go through the stdlib instead.
_HUGE_INT = re.compile(r"[0-9]{20}")


class Redactor:
    """A compiled DLP policy: the detectors to run and how overlapping matches are resolved."""

    __slots__ = ("_detectors", "has_custom", "policy", "rule_ids")

    def __init__(self, detectors: Sequence[Detector], policy: DlpPolicy | None = None) -> None:
        self._detectors = tuple(detectors)
        #: What it was compiled from (None when built from detectors directly): a scan process
        #: rebuilds the redactor from this picklable value.
        self.policy = policy
        self.rule_ids: tuple[str, ...] = tuple(d.rule_id for d in self._detectors)
        #: Whether an admin's regex is among the detectors (such scans never run on the loop).
        self.has_custom = any(isinstance(d, CustomDetector) for d in self._detectors)

    @classmethod
    def from_policy(cls, policy: DlpPolicy) -> Redactor:
        """Compile ``policy``; raises ``InvalidRule`` for an unknown rule or a bad regex."""
        policy.validate()
        detectors: list[Detector] = [
            builtin_detector(r.id) for r in BUILTIN_RULES if r.id in policy.rules
        ]
        detectors.extend(CustomDetector(rule) for rule in policy.custom_rules)
        return cls(detectors, policy)

    def __bool__(self) -> bool:
        return bool(self._detectors)

    def find(self, text: str, deadline: float | None = None) -> list[Span]:
        """Non-overlapping spans to redact, in text order.

        Raises ``DlpFailure``, or ``DlpTimeout`` once ``deadline`` (``time.monotonic()``) passed.
        """
        if not text:
            return []
        found: list[Span] = []
        scan = Scan(text, deadline)
        for det in self._detectors:
            scan.check()
            try:
                spans = det.spans(scan)
            except DlpTimeout:
                raise
            except Exception:
                # No chaining: the cause's message may quote the scanned text.
                raise DlpFailure(det.rule_id) from None
            for start, end in spans:
                found.append(Span(start, end, det.rule_id, det.kind, det.priority))
        if len(found) <= 1:
            return found
        return _resolve(found)


def _resolve(found: list[Span]) -> list[Span]:
    """Merge overlapping spans; the longest (then most specific) member names the merged span.

    A span nested in another disappears into it; two that only partly overlap are redacted as
    their union, so no part of either value is left in the clear.
    """
    found.sort(key=lambda s: (s.start, -s.end))
    out: list[Span] = []
    cluster = [found[0]]
    end = found[0].end
    for span in found[1:]:
        if span.start < end:
            cluster.append(span)
            end = max(end, span.end)
            continue
        out.append(_merge(cluster, end))
        cluster = [span]
        end = span.end
    out.append(_merge(cluster, end))
    return out


def _merge(cluster: list[Span], end: int) -> Span:
    if len(cluster) == 1:
        return cluster[0]
    best = min(cluster, key=lambda s: (s.start - s.end, s.priority))
    return Span(cluster[0].start, end, best.rule, best.kind, best.priority)


class RedactorCache:
    """A small LRU of compiled policies, for the app state to own (policies are hashable)."""

    def __init__(self, maxsize: int = 256) -> None:
        self._maxsize = maxsize
        self._items: OrderedDict[DlpPolicy, Redactor] = OrderedDict()

    def get(self, policy: DlpPolicy) -> Redactor:
        redactor = self._items.get(policy)
        if redactor is None:
            redactor = Redactor.from_policy(policy)
            self._items[policy] = redactor
            if len(self._items) > self._maxsize:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(policy)
        return redactor

    def clear(self) -> None:
        self._items.clear()


class _Finder(Protocol):
    def find(self, text: str) -> list[Span]: ...


class _Bounded:
    """A redactor whose every scan stops with ``DlpTimeout`` once ``deadline`` has passed."""

    __slots__ = ("_deadline", "_redactor")

    def __init__(self, redactor: Redactor, deadline: float) -> None:
        self._redactor = redactor
        self._deadline = deadline

    def find(self, text: str) -> list[Span]:
        return self._redactor.find(text, self._deadline)


def _finder(redactor: Redactor, deadline: float | None) -> _Finder:
    return redactor if deadline is None else _Bounded(redactor, deadline)


# -- text ---------------------------------------------------------------------------------------


def _redact(text: str, redactor: _Finder, vault: Vault) -> str:
    spans = redactor.find(text)
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for span in spans:
        out.append(text[pos : span.start])
        out.append(vault.placeholder(text[span.start : span.end], span.kind, span.rule))
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def redact_text(
    text: str, redactor: Redactor, vault: Vault, *, deadline: float | None = None
) -> str:
    """Redact one text into ``vault`` (embeddings input, or any text outside a chat request).

    With ``deadline`` (a ``time.monotonic()`` value) the scan raises ``DlpTimeout`` past it.
    """
    vault.reserve(text)
    return _redact(text, _finder(redactor, deadline), vault)


def redact_embeddings(
    req: EmbeddingRequest, redactor: Redactor, *, deadline: float | None = None
) -> tuple[EmbeddingRequest, Vault, list[Finding]]:
    """Redact the text inputs of an embeddings request (token-id inputs are left alone)."""
    vault = Vault()
    if not redactor or not req.input or not isinstance(req.input[0], str):
        return req, vault, []
    texts: list[str] = [t for t in req.input if isinstance(t, str)]
    for text in texts:
        vault.reserve(text)
    finder = _finder(redactor, deadline)
    redacted = [_redact(text, finder, vault) for text in texts]
    return dataclasses.replace(req, input=redacted), vault, vault.findings()


# -- JSON (tool call arguments, metadata) -------------------------------------------------------


def _redact_value(value: Any, redactor: _Finder, vault: Vault) -> Any:
    if isinstance(value, str):
        return _redact(value, redactor, vault)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[_redact(k, redactor, vault) if isinstance(k, str) else k] = _redact_value(
                v, redactor, vault
            )
        return out
    if isinstance(value, list):
        return [_redact_value(v, redactor, vault) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000_000:
        # A card or phone number sent as a JSON number becomes a placeholder string.
        as_text = str(value)
        redacted = _redact(as_text, redactor, vault)
        return value if redacted == as_text else redacted
    return value


def _redact_json_text(text: str, redactor: _Finder, vault: Vault) -> str:
    if not text.strip():
        return text
    stdlib = _HUGE_INT.search(text) is not None
    try:
        data = json.loads(text) if stdlib else orjson.loads(text)
    except (ValueError, RecursionError):
        # Not JSON (a truncated call in history): placeholders are JSON-safe text anyway.
        return _redact(text, redactor, vault)
    before = vault.redacted_total
    try:
        new = _redact_value(data, redactor, vault)
    except RecursionError:
        return _redact(text, redactor, vault)
    if vault.redacted_total == before:
        return text  # untouched: keep the original bytes (and the provider's prompt cache)
    if stdlib:
        return json.dumps(new, ensure_ascii=False, separators=(",", ":"))
    return orjson.dumps(new).decode()


# -- chat request -------------------------------------------------------------------------------


def _unmodelled(req: ChatRequest) -> dict[str, Any]:
    """The request's free-form parts, by the field they live in (walked by ``map_text``)."""
    return {
        "stop": req.stop,
        "response_format": req.response_format,
        "thinking": req.thinking,
        "extra": req.extra,
    }


def _tool_texts(tool: Tool | Opaque) -> Iterator[str]:
    if isinstance(tool, Opaque):
        yield from texts(tool.data)
        return
    if tool.description:
        yield tool.description
    yield from texts(tool.parameters)
    yield from texts(tool.extra)


def _reservable_texts(req: ChatRequest) -> Iterator[str]:
    for tool in req.tools:
        yield from _tool_texts(tool)
    for part in req.system:
        yield part.text
        yield from texts(part.extra)
    for msg in req.messages:
        yield from texts(msg.extra)
        for p in msg.parts:
            if isinstance(p, TextPart):
                yield p.text
            elif isinstance(p, ToolCallPart):
                yield p.arguments
            elif isinstance(p, ToolResultPart):
                for c in p.content:
                    if isinstance(c, TextPart):
                        yield c.text
                    elif isinstance(c, Opaque):
                        yield from texts(c.data)
            elif isinstance(p, Opaque):
                yield from texts(p.data)
            elif isinstance(p, FilePart):
                yield from (t for t in (p.text, p.filename) if t)
            if not isinstance(p, Opaque):
                yield from texts(p.extra)
    if req.user:
        yield req.user
    yield from texts(_unmodelled(req))


def request_text_size(req: ChatRequest) -> int:
    """Characters a scan of ``req`` reads: every text of it, modelled or not."""
    size = sum(len(t) for t in _reservable_texts(req))
    for msg in req.messages:
        for p in msg.parts:
            if isinstance(p, ThinkingPart):
                size += len(p.thinking)
    return size + text_size(req.metadata)


def _redact_opaque(item: Opaque, redactor: _Finder, vault: Vault) -> Opaque:
    """An unmodelled item: every text in its JSON (``dlp.fields`` decides which strings)."""
    data = map_text(item.data, lambda s: _redact(s, redactor, vault))
    return item if data is item.data else dataclasses.replace(item, data=data)


def _redact_extra(obj: _WithExtra, redactor: _Finder, vault: Vault) -> _WithExtra:
    """``obj`` with the text in its ``extra`` (unmodelled keys) redacted; the same if none."""
    extra = getattr(obj, "extra", None)
    if not extra:
        return obj
    new = map_text(extra, lambda s: _redact(s, redactor, vault))
    return obj if new is extra else dataclasses.replace(obj, extra=new)


def _redact_tool(tool: Tool | Opaque, redactor: _Finder, vault: Vault) -> Tool | Opaque:
    if isinstance(tool, Opaque):
        return _redact_opaque(tool, redactor, vault)
    description = (
        _redact(tool.description, redactor, vault) if tool.description else tool.description
    )
    parameters = map_text(tool.parameters, lambda s: _redact(s, redactor, vault))
    if description is not tool.description or parameters is not tool.parameters:
        tool = dataclasses.replace(tool, description=description, parameters=parameters)
    return _redact_extra(tool, redactor, vault)


def _redact_text_part(part: TextPart, redactor: _Finder, vault: Vault) -> TextPart:
    text = _redact(part.text, redactor, vault)
    part = part if text is part.text else dataclasses.replace(part, text=text)
    return _redact_extra(part, redactor, vault)


def _redact_part(part: Part, redactor: _Finder, vault: Vault) -> Part:
    if isinstance(part, Opaque):
        return _redact_opaque(part, redactor, vault)
    if isinstance(part, TextPart):
        return _redact_text_part(part, redactor, vault)
    if isinstance(part, ToolCallPart):
        args = _redact_json_text(part.arguments, redactor, vault)
        if args is not part.arguments:
            part = dataclasses.replace(part, arguments=args)
    elif isinstance(part, ToolResultPart):
        content = [
            _redact_text_part(c, redactor, vault)
            if isinstance(c, TextPart)
            else _redact_opaque(c, redactor, vault)
            if isinstance(c, Opaque)
            else c
            for c in part.content
        ]
        if not all(a is b for a, b in zip(content, part.content, strict=True)):
            part = dataclasses.replace(part, content=content)
    elif isinstance(part, FilePart):
        # A text document is text like any other; base64 data (PDFs...) is not scanned.
        text = _redact(part.text, redactor, vault) if part.text else part.text
        name = _redact(part.filename, redactor, vault) if part.filename else part.filename
        if text is not part.text or name is not part.filename:
            part = dataclasses.replace(part, text=text, filename=name)
    elif isinstance(part, ThinkingPart) and part.thinking:
        # Editing signed thinking makes Anthropic reject it; leaking a value is worse.
        thinking = _redact(part.thinking, redactor, vault)
        if thinking is not part.thinking:
            part = dataclasses.replace(part, thinking=thinking)
    return _redact_extra(part, redactor, vault)


def _redact_message(msg: Message, redactor: _Finder, vault: Vault) -> Message:
    parts = [_redact_part(p, redactor, vault) for p in msg.parts]
    if not all(a is b for a, b in zip(parts, msg.parts, strict=True)):
        msg = dataclasses.replace(msg, parts=parts)
    return _redact_extra(msg, redactor, vault)


def redact_request(
    req: ChatRequest, redactor: Redactor, *, deadline: float | None = None
) -> tuple[ChatRequest, Vault, list[Finding]]:
    """Redact ``req``; returns the redacted copy, its vault and the per-rule match counts.

    Raises ``DlpFailure`` (a ``PolicyBlocked``) when a detector fails, ``DlpTimeout`` when the
    scan is still running at ``deadline`` (a ``time.monotonic()`` value).
    """
    vault = Vault()
    if not redactor:
        return req, vault, []
    for text in _reservable_texts(req):
        vault.reserve(text)
    finder = _finder(redactor, deadline)
    tools = [_redact_tool(t, finder, vault) for t in req.tools]
    system = [_redact_text_part(p, finder, vault) for p in req.system]
    messages = [_redact_message(m, finder, vault) for m in req.messages]
    user = _redact(req.user, finder, vault) if req.user else req.user
    metadata = req.metadata
    if metadata:
        before = vault.redacted_total
        new_metadata = _redact_value(metadata, finder, vault)
        if vault.redacted_total != before:
            metadata = new_metadata
    rest = map_text(_unmodelled(req), lambda s: _redact(s, finder, vault))
    if not vault:
        return req, vault, []
    redacted = dataclasses.replace(
        req,
        tools=tools,
        system=system,
        messages=messages,
        user=user,
        metadata=metadata,
        **rest,
    )
    return redacted, vault, vault.findings()


#: What a scan redacts: a chat request, an embeddings request or one free text.
Subject = ChatRequest | EmbeddingRequest | str


def redact_subject(
    subject: Subject, redactor: Redactor, *, deadline: float | None = None
) -> tuple[Subject, Vault, list[Finding]]:
    """``redact_request``, ``redact_embeddings`` or ``redact_text`` (into a new vault), by the
    type of ``subject``: one entry point for a scan that runs in a thread or a scan process."""
    if isinstance(subject, ChatRequest):
        return redact_request(subject, redactor, deadline=deadline)
    if isinstance(subject, EmbeddingRequest):
        return redact_embeddings(subject, redactor, deadline=deadline)
    vault = Vault()
    return redact_text(subject, redactor, vault, deadline=deadline), vault, vault.findings()


def redact_into(
    value: Any,
    redactor: Redactor,
    vault: Vault,
    *,
    how: str = "text",
    deadline: float | None = None,
) -> Any:
    """Redact one value of a wire document into an existing ``vault`` (its placeholders reused).

    ``how``: ``"text"`` a plain string, ``"value"`` any JSON value redacted as ``metadata`` is
    (keys, strings and large integers). For a copy of what the gateway keeps (stored
    responses), which must carry the same placeholders as the request.
    """
    finder = _finder(redactor, deadline)
    if how == "value":
        return _redact_value(value, finder, vault)
    return _redact(value, finder, vault)
