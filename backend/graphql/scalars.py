"""Scalars beyond GraphQL's own: token counts summed over many requests.

GraphQL's ``Int`` is 32 bits: a 30-day window of a busy gateway sums billions of tokens (ten
million requests of ~2,500 tokens are 25 billion), which ``Int`` refuses with an error for the
whole answer. ``TokenCount`` is a plain JSON number with no such bound (exact up to 2^53 in
JavaScript clients); per-request counts stay ``Int``. The schema maps the Python type to the
scalar (``schema.build_schema``'s ``scalar_map``).
"""

from __future__ import annotations

from typing import NewType

import strawberry

TokenCount = NewType("TokenCount", int)

TOKEN_COUNT = strawberry.scalar(
    name="TokenCount",
    description=(
        "A number of tokens summed over many requests: a JSON integer that may exceed 32 bits "
        "(GraphQL's Int stops at 2,147,483,647)."
    ),
    serialize=int,
    parse_value=int,
)


def tokens(n: int) -> TokenCount:
    """``n`` as a TokenCount field's value."""
    return TokenCount(int(n))
