"""The stored copy of a response is DLP-redacted like the request log: placeholders, never values.

What reaches the store is what the client saw: original values, restored in the answer. Two
steps turn it back into what the provider saw:

1. every value the request's vault replaced is put back as its placeholder (exact text
   replacement, longest value first), so the stored conversation carries the same
   ``[EMAIL_1]`` the model saw, in the input items and in the restored output alike;
2. the result is scanned with the caller's DLP policy into a copy of that vault, which catches
   what step 1 cannot: a value in a wire field the request scan read differently (JSON escapes
   in tool call arguments), or a detected value the answer brought up by itself. Known values
   keep their placeholder, new ones are numbered after the request's.

Byte-exact fields stay untouched (ids, names, types, ``encrypted_content``, signatures, schema
structure): the same rule as the request scan (``backend.dlp.fields``) plus the Responses items'
own opaque fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

from backend.dlp.fields import is_exact, map_text, text_size
from backend.dlp.redact import Redactor, redact_into
from backend.dlp.vault import Vault
from backend.protocols.files import data_url, from_base64, parse_data_url

#: Responses-wire fields that are opaque or vocabulary, never a person's text.
_EXACT = frozenset(
    {"encrypted_content", "status", "role", "object", "phase", "detail", "format_type"}
)
#: Fields holding a JSON schema: walked as ``map_text`` walks schemas (property names kept).
_SCHEMAS = frozenset({"parameters", "schema", "input_schema"})

_HUGE_INT = re.compile(r"[0-9]{20}")

Document = dict[str, Any]


def _reverser(vault: Vault | None) -> Callable[[str], str]:
    """Put every value ``vault`` replaced back as its placeholder (identity when it is empty)."""
    pairs = vault.items() if vault else []
    if not pairs:
        return lambda text: text
    by_value = {value: placeholder for placeholder, value in pairs if value}
    pattern = re.compile("|".join(re.escape(v) for v in sorted(by_value, key=len, reverse=True)))

    def reverse(text: str) -> str:
        return pattern.sub(lambda m: by_value[m.group(0)], text) if text else text

    return reverse


class _Walk:
    """One redaction pass over a document, into one vault (so numbering is shared)."""

    def __init__(self, redactor: Redactor | None, vault: Vault, deadline: float | None) -> None:
        self._redactor = redactor if redactor else None
        self._vault = vault
        self._deadline = deadline
        self._reverse = _reverser(vault)

    def text(self, s: str) -> str:
        s = self._reverse(s)
        if self._redactor is None:
            return s
        out: str = redact_into(s, self._redactor, self._vault, deadline=self._deadline)
        return out

    def value(self, v: Any) -> Any:
        """A caller's own data (``metadata``, parsed tool arguments): keys and values."""
        v = _map_all(v, self._reverse)
        if self._redactor is None:
            return v
        return redact_into(v, self._redactor, self._vault, how="value", deadline=self._deadline)

    def json_text(self, s: str) -> str:
        try:
            # orjson reads integers past 64 bits as floats: such documents take the stdlib.
            data = json.loads(s) if _HUGE_INT.search(s) else orjson.loads(s)
        except (ValueError, RecursionError):
            return self.text(s)  # not JSON (a call cut short): its text is scanned as text
        new = self.value(data)
        if new == data:
            return s  # unchanged: keep the client's bytes
        return orjson.dumps(new).decode()

    def file_data(self, s: str) -> str:
        """A text document's base64 (the upstream got its text redacted, so the stored copy
        must not keep it encoded); other data (PDFs) is kept as sent, unscanned like upstream."""
        parsed = parse_data_url(s)
        if parsed is None:
            return s
        part = from_base64(parsed[1], parsed[0])
        if part.text is None:
            return s
        new = self.text(part.text)
        if new == part.text:
            return s
        part.text = new
        return data_url(part, exact=True)

    def walk(self, value: Any, key: str | None = None) -> Any:
        if key == "file_data" and isinstance(value, str):
            return self.file_data(value)
        if key is not None and (key in _EXACT or is_exact(key, value)):
            return value
        if key == "metadata":
            return self.value(value)
        if key == "arguments" and isinstance(value, str):
            return self.json_text(value)
        if key in _SCHEMAS:
            return map_text(value, self.text)
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.walk(v, key) for v in value]
        if isinstance(value, dict):
            return {k: self.walk(v, k if isinstance(k, str) else None) for k, v in value.items()}
        return value


def _map_all(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_all(v, fn) for v in value]
    if isinstance(value, dict):
        return {(fn(k) if isinstance(k, str) else k): _map_all(v, fn) for k, v in value.items()}
    return value


def redact_stored(
    response: Document,
    input_items: list[Document],
    redactor: Redactor | None,
    vault: Vault | None,
    deadline: float | None = None,
) -> tuple[Document, list[Document]]:
    """``(response, input_items)`` with placeholders instead of every protected value.

    ``redactor`` is the caller's compiled DLP policy (None: DLP off), ``vault`` the request's
    (None or empty: nothing was replaced). Raises ``DlpTimeout`` past ``deadline``.
    """
    if redactor is None and not vault:
        return response, input_items
    walk = _Walk(redactor, vault.copy() if vault else Vault(), deadline)
    items = [walk.walk(item) for item in input_items]
    return walk.walk(response), items


def stored_size(response: Document, input_items: list[Document]) -> int:
    """Characters a stored-copy scan reads (to pick inline or a thread)."""
    return text_size(response) + text_size(input_items)
