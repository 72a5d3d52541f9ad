"""Bounds on a GraphQL document, checked by the parser before it builds anything.

The request body limit (``backend.graphql.app``) bounds the bytes; this bounds what the parser
will look at: a document longer than ``MAX_DOCUMENT_CHARS`` is refused before lexing (whitespace,
comments and long string literals cost lexing time but no tokens, so the token limit alone does
not bound them), and ``MAX_COMMENTS`` bounds the comment tokens kept in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from strawberry.extensions import SchemaExtension

#: Dashboard documents are a few KB; large values (an agents YAML) travel as variables.
MAX_DOCUMENT_CHARS = 100_000
MAX_COMMENTS = 1_000


class DocumentLimits(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        # strawberry's ParseOptions type names only max_tokens; graphql-core takes these too.
        options = cast(dict[str, Any], self.execution_context.parse_options)
        options["max_source_length"] = MAX_DOCUMENT_CHARS
        options["max_comments"] = MAX_COMMENTS
        yield
