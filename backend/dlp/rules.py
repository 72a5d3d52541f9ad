"""The DLP rule catalog and the policy object a ``Redactor`` is compiled from.

A rule id is what a policy stores and what activity rows name: one of ``BUILTIN_RULE_IDS`` or
``custom:<name>`` for a custom regex rule. Each rule has a placeholder *kind* (``EMAIL`` gives
``[EMAIL_1]``); a custom rule's kind is its name uppercased with every character outside
``A-Z0-9`` turned into ``_``, so placeholders always match ``\\[[A-Z0-9_]+\\]`` (what the
restorer looks for).

``DlpPolicy`` is frozen and hashable so a compiled ``Redactor`` can be cached per policy value
(see ``RedactorCache`` in ``backend.dlp.redact``).

Custom patterns are compiled with RE2 (``google-re2``), whose matching time is linear in the
text: an admin's regex runs on every request of the scope, and with a backtracking engine
``(x+x+)+y`` against 25 characters took seconds (exponential in the length). Patterns RE2
cannot run (backreferences, lookaround, possessive quantifiers, atomic groups: the features
that need backtracking) are refused with a message saying so. RE2's own syntax differs from
Python's in small ways: ``\\d``, ``\\w`` and ``\\b`` are ASCII-only, ``\\Z`` is spelled ``\\z``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import re2

#: Longest custom pattern accepted; patterns come from admins, this only stops accidents.
MAX_CUSTOM_PATTERN_LEN = 2000
_KIND_JUNK = re.compile(r"[^A-Z0-9]+")


class InvalidRule(ValueError):
    """A policy names an unknown rule or a custom rule whose pattern cannot be used."""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    id: str
    kind: str
    label: str
    description: str


BUILTIN_RULES: tuple[RuleInfo, ...] = (
    RuleInfo("email", "EMAIL", "Email addresses", "name@example.com"),
    RuleInfo("phone", "PHONE", "Phone numbers", "International (+...) or US national numbers"),
    RuleInfo("card", "CARD", "Payment card numbers", "13-19 digits, Luhn-valid"),
    RuleInfo("iban", "IBAN", "IBANs", "Bank account numbers with a valid IBAN checksum"),
    RuleInfo("ssn", "SSN", "US social security numbers", "AAA-GG-SSSS, valid ranges only"),
    RuleInfo("ip", "IP", "IP addresses", "IPv4 and IPv6"),
    RuleInfo(
        "secret",
        "SECRET",
        "Secrets",
        "Provider API keys, AWS keys, GitHub/Slack/Google tokens, JWTs, PEM private keys",
    ),
)
BUILTIN_RULE_IDS: frozenset[str] = frozenset(r.id for r in BUILTIN_RULES)
BUILTIN_KINDS: Mapping[str, str] = MappingProxyType({r.id: r.kind for r in BUILTIN_RULES})
CUSTOM_PREFIX = "custom:"


def kind_for_name(name: str) -> str:
    """Placeholder kind of a custom rule: ``"Employee id"`` -> ``"EMPLOYEE_ID"``."""
    kind = _KIND_JUNK.sub("_", name.upper()).strip("_")
    if not kind:
        raise InvalidRule(f"custom rule name {name!r} has no letters or digits")
    return kind


@dataclass(frozen=True, slots=True)
class CustomRule:
    """A named regex. If it has a group named ``value``, only that group is redacted."""

    name: str
    pattern: str

    @property
    def rule_id(self) -> str:
        return CUSTOM_PREFIX + self.name

    @property
    def kind(self) -> str:
        return kind_for_name(self.name)


@dataclass(frozen=True, slots=True, init=False)
class DlpPolicy:
    """Which rules a scope (an organization or an app) has on.

    ``rules`` holds built-in rule ids; every rule of ``custom_rules`` is on. ``custom:<name>``
    ids may also appear in ``rules`` (as stored by the dashboard) as long as the named custom
    rule is defined. Plain tuples ``(name, pattern)`` are accepted for custom rules.
    """

    rules: frozenset[str]
    custom_rules: tuple[CustomRule, ...]

    def __init__(
        self,
        rules: Iterable[str] = BUILTIN_RULE_IDS,
        custom_rules: Iterable[CustomRule | tuple[str, str]] = (),
    ) -> None:
        object.__setattr__(self, "rules", frozenset(rules))
        object.__setattr__(
            self,
            "custom_rules",
            tuple(r if isinstance(r, CustomRule) else CustomRule(*r) for r in custom_rules),
        )

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Every enabled rule id, built-ins in catalog order then custom rules."""
        builtin = tuple(r.id for r in BUILTIN_RULES if r.id in self.rules)
        return builtin + tuple(r.rule_id for r in self.custom_rules)

    def validate(self) -> None:
        """Raise ``InvalidRule`` for unknown rule ids, duplicate or unnamed custom rules."""
        names = [r.name for r in self.custom_rules]
        for name in names:
            if not name or not name.strip():
                raise InvalidRule("a custom rule needs a name")
        if len(set(names)) != len(names):
            raise InvalidRule("custom rule names must be unique")
        for rid in self.rules:
            if rid in BUILTIN_RULE_IDS:
                continue
            if rid.startswith(CUSTOM_PREFIX) and rid[len(CUSTOM_PREFIX) :] in names:
                continue
            raise InvalidRule(f"unknown DLP rule {rid!r}")


def check_custom_rule(name: str, pattern: str) -> None:
    """Raise ``InvalidRule`` (with a message for the admin) unless the rule can be used."""
    if not name or not name.strip():
        raise InvalidRule("a custom rule needs a name")
    compile_custom_pattern(CustomRule(name, pattern))


def compile_custom_pattern(rule: CustomRule) -> Any:
    """Compile a custom rule's regex with RE2, or raise ``InvalidRule`` saying what is wrong.

    Returns an ``re2`` pattern (``finditer``, ``search``, ``groupindex`` like ``re``'s).
    """
    if not rule.pattern:
        raise InvalidRule(f"custom rule {rule.name!r}: the pattern is empty")
    if len(rule.pattern) > MAX_CUSTOM_PATTERN_LEN:
        raise InvalidRule(
            f"custom rule {rule.name!r}: the pattern is longer than {MAX_CUSTOM_PATTERN_LEN}"
        )
    kind_for_name(rule.name)
    try:
        compiled = re2.compile(rule.pattern, _re2_options())
    except re2.error as exc:
        raise InvalidRule(f"custom rule {rule.name!r}: {_explain(exc)}") from None
    # A pattern that matches nothing but the empty string would redact nothing and hide a typo.
    if compiled.fullmatch("") is not None:
        raise InvalidRule(f"custom rule {rule.name!r}: the pattern matches the empty string")
    return compiled


def _re2_options() -> Any:
    options = re2.Options()
    # RE2 would print every refused pattern to stderr; the admin gets the reason instead.
    options.log_errors = False
    return options


_BACKTRACKING = (
    "custom rules run on RE2, whose matching time grows linearly with the text; features that "
    "need backtracking (backreferences, lookahead/lookbehind, possessive quantifiers, atomic "
    "groups) are refused because one request could take exponential time to scan"
)
_LOOKAROUND = re.compile(r"invalid perl operator: \(\?<?[=!]")
_BACKREFERENCE = re.compile(r"invalid escape sequence: \\[1-9]")


def _explain(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if _BACKREFERENCE.search(reason):
        return f"backreferences are not supported ({reason}): {_BACKTRACKING}"
    if _LOOKAROUND.search(reason):
        return f"lookahead and lookbehind are not supported ({reason}): {_BACKTRACKING}"
    if "repetition operator: ++" in reason or "repetition operator: *+" in reason:
        return f"possessive quantifiers are not supported ({reason}): {_BACKTRACKING}"
    if "(?>" in reason:
        return f"atomic groups are not supported ({reason}): {_BACKTRACKING}"
    if "\\Z" in reason:
        return f"invalid regex ({reason}): RE2 spells the end of the text \\z"
    return f"invalid regex: {reason}"
