"""Parsed and validated GraphQL documents remembered by their text.

Validation walks the whole document once per rule set (graphql-core's ~30 rules plus our depth
and alias limits): for a one-field mutation such as ``login`` it was three quarters of the loop
time, so a client repeating one small document (a login loop, a dashboard polling) cost every
other tenant latency. A document's parse tree and its validation errors depend on nothing but its
text (the schema and the rules are fixed for the schema's life; variables are checked at
execution), so both are kept per text in a small LRU owned by the schema.

Only documents that parsed within the limits are kept, and only short ones, so the memo holds at
most ``maxsize`` × ``max_chars`` characters of source however many distinct texts arrive.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension


@dataclass(frozen=True, slots=True)
class Checked:
    document: DocumentNode
    errors: tuple[GraphQLError, ...]


class DocumentMemo:
    def __init__(self, maxsize: int = 256, max_chars: int = 20_000) -> None:
        self.maxsize = maxsize
        self.max_chars = max_chars
        self._items: OrderedDict[str, Checked] = OrderedDict()

    def get(self, text: str) -> Checked | None:
        found = self._items.get(text)
        if found is not None:
            self._items.move_to_end(text)
        return found

    def put(self, text: str, checked: Checked) -> None:
        if len(text) > self.max_chars:
            return
        self._items[text] = checked
        self._items.move_to_end(text)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class MemoizedDocuments(SchemaExtension):
    """Skips parsing and validation for a document text seen before (see the module docstring).

    Listed first among the schema's extensions, so a remembered document is in place before any
    other extension or strawberry itself would parse it.
    """

    def __init__(self, memo: DocumentMemo) -> None:
        self._memo = memo
        self._hit: Checked | None = None

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        query = ctx.query
        self._hit = self._memo.get(query) if query else None
        if self._hit is not None:
            ctx.graphql_document = self._hit.document
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if self._hit is not None:
            ctx.pre_execution_errors = list(self._hit.errors)
            yield
            return
        yield
        if ctx.query and ctx.graphql_document is not None:
            errors = tuple(ctx.pre_execution_errors or ())
            self._memo.put(ctx.query, Checked(ctx.graphql_document, errors))
