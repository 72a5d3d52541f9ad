"""The per-request vault: placeholder <-> original value, and the counts activity rows need.

A vault lives exactly as long as one request: ``redact_request`` fills it, the restorer reads it,
then it is dropped. Its ``repr`` and its ``Finding`` lists never show a value, so it is safe to
log by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Any placeholder-shaped token. Kinds are ``[A-Z0-9_]+`` (see ``rules.kind_for_name``).
PLACEHOLDER_TOKEN = re.compile(r"\[[A-Z0-9_]+_[0-9]+\]")


@dataclass(frozen=True, slots=True)
class Finding:
    """How many values one rule matched (or restored). Never carries the values."""

    rule: str
    count: int


class Vault:
    __slots__ = (
        "_by_placeholder",
        "_by_value",
        "_next",
        "_redacted",
        "_reserved",
        "_restored",
        "redacted_total",
    )

    def __init__(self) -> None:
        self._by_placeholder: dict[str, tuple[str, str]] = {}  # placeholder -> (value, rule)
        self._by_value: dict[str, str] = {}
        self._next: dict[str, int] = {}
        self._reserved: set[str] = set()
        self._redacted: dict[str, int] = {}
        self._restored: dict[str, int] = {}
        #: Every occurrence replaced so far (a cheap "did anything change" probe).
        self.redacted_total = 0

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def __bool__(self) -> bool:
        return bool(self._by_placeholder)

    def __repr__(self) -> str:
        return f"Vault({len(self._by_placeholder)} placeholders)"

    def copy(self) -> Vault:
        """An independent vault with the same placeholders, reservations and next numbers.

        Redacting more text into the copy reuses this request's placeholders for values it
        already replaced and numbers new ones after them, without touching this vault (still
        read by the request's restorer and activity counts).
        """
        other = Vault()
        other._by_placeholder = dict(self._by_placeholder)
        other._by_value = dict(self._by_value)
        other._next = dict(self._next)
        other._reserved = set(self._reserved)
        return other

    def reserve(self, text: str) -> None:
        """Keep placeholder-shaped tokens already in ``text`` out of the numbering.

        A user who types ``[EMAIL_1]`` must get ``[EMAIL_1]`` back, not somebody's address; so
        such literals are never handed out (and, not being in the vault, never restored).
        """
        if "[" in text:
            for token in PLACEHOLDER_TOKEN.findall(text):
                if token not in self._by_placeholder:
                    self._reserved.add(token)

    def placeholder(self, value: str, kind: str, rule: str) -> str:
        """The placeholder of ``value``: the one it already has, or the next free one of kind."""
        self._redacted[rule] = self._redacted.get(rule, 0) + 1
        self.redacted_total += 1
        existing = self._by_value.get(value)
        if existing is not None:
            return existing
        n = self._next.get(kind, 0)
        while True:
            n += 1
            token = f"[{kind}_{n}]"
            if token not in self._reserved:
                break
        self._next[kind] = n
        self._by_value[value] = token
        self._by_placeholder[token] = (value, rule)
        return token

    def original(self, placeholder: str) -> str | None:
        entry = self._by_placeholder.get(placeholder)
        return entry[0] if entry is not None else None

    def rule_of(self, placeholder: str) -> str | None:
        entry = self._by_placeholder.get(placeholder)
        return entry[1] if entry is not None else None

    def items(self) -> list[tuple[str, str]]:
        """``(placeholder, original)`` pairs, in the order they were handed out."""
        return [(p, v) for p, (v, _) in self._by_placeholder.items()]

    @property
    def longest_placeholder(self) -> int:
        return max((len(p) for p in self._by_placeholder), default=0)

    def count_restored(self, placeholder: str, n: int = 1) -> None:
        rule = self.rule_of(placeholder)
        if rule is not None:
            self._restored[rule] = self._restored.get(rule, 0) + n

    def findings(self) -> list[Finding]:
        """Redactions per rule (every occurrence counts), sorted by rule id."""
        return [Finding(r, c) for r, c in sorted(self._redacted.items())]

    def restore_findings(self) -> list[Finding]:
        """Restorations per rule so far (non-streaming and streaming restores add up here)."""
        return [Finding(r, c) for r, c in sorted(self._restored.items())]
