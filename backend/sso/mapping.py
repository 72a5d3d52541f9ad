"""Claims -> role and organization, by the administrator's rules (pure functions).

A rule names a claim (a dotted path reaches into nested claims: ``realm_access.roles``) and a
value. It matches when the claim equals the value, or, for a list claim such as ``groups``, holds
it; the value ``*`` matches any present, non-empty claim. Rules are tried in order (``position``,
then creation); the first match gives the role and organization.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANY = "*"


@dataclass(frozen=True)
class Rule:
    claim: str
    value: str
    role: str
    organization_id: int | None


@dataclass(frozen=True)
class Mapped:
    role: str
    organization_id: int | None
    #: The rule that matched; None: the provider's defaults for new users.
    rule: Rule | None


def claim_value(claims: Mapping[str, Any], path: str) -> Any:
    """``claims[path]``, or the nested value of a dotted path; a flat key with dots wins."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def matches(rule: Rule, claims: Mapping[str, Any]) -> bool:
    value = claim_value(claims, rule.claim)
    if value is None or value == "" or value == []:
        return False
    if rule.value == ANY:
        return True
    items = value if isinstance(value, list) else [value]
    return any(_scalar(item) == rule.value for item in items)


def map_claims(claims: Mapping[str, Any], rules: Iterable[Rule]) -> Mapped | None:
    """The role and organization of the first matching rule; None when none matches."""
    for rule in rules:
        if matches(rule, claims):
            return Mapped(rule.role, rule.organization_id, rule)
    return None
