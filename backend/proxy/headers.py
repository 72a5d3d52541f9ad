"""A request's headers as one plain dict, built once: what the hot path looks names up in.

Starlette's ``Headers`` decodes and scans every raw header on each lookup, and a missing name
(most of them: ``x-api-key``, ``x-switchboard-tier``, ``x-switchboard-tags``...) raises and
catches a ``KeyError`` on the way: about 7 % of a proxied request's CPU went to header lookups.
ASGI servers give names in lower case, so one dict holds them; the first value of a repeated
name wins, as with Starlette's ``Headers.get``. A lookup by a name with capitals still works.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

_MISSING: Any = object()


class RequestHeaders(dict[str, str]):
    """A ``dict`` of lower-case names; ``get``/``[]``/``in`` also accept other casings."""

    def __missing__(self, key: str) -> str:
        lower = key.lower()
        if lower != key and dict.__contains__(self, lower):
            return dict.__getitem__(self, lower)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            lower = key.lower()
            return dict.get(self, lower, default) if lower != key else default
        return value

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        return isinstance(key, str) and dict.__contains__(self, key.lower())


def request_headers(scope: Scope) -> RequestHeaders:
    headers = RequestHeaders()
    for name, value in reversed(scope["headers"]):
        headers[name.decode("latin-1")] = value.decode("latin-1")
    return headers
