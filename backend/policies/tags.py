"""Cost-attribution tags: ``metadata.tags`` in the request body or the ``x-switchboard-tags``
header, stored on the request's log row and summed per tag (``TagRollup``).

- ``metadata.tags``: a list of strings (OpenAI or Anthropic body ``metadata``), or one string of
  comma-separated tags (OpenAI's ``metadata`` values are strings).
- ``x-switchboard-tags``: comma-separated tags.

Both may be given: the tags are their union, in order, without repeats. At most ``MAX_TAGS`` tags
of at most ``MAX_TAG_CHARS`` characters each, printable, without commas; more, longer or
malformed tags are a 400 naming where they came from. ``tags`` is taken out of ``metadata``
before the request leaves, since providers refuse unknown metadata (OpenAI wants string values;
Anthropic knows only ``user_id``); the rest of ``metadata`` travels as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from backend.ir.chat import ChatRequest
from backend.ir.errors import InvalidRequest

HEADER = "x-switchboard-tags"
MAX_TAGS = 10
MAX_TAG_CHARS = 64


def _bad(where: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid cost-attribution tags in {where}: {why}. Send at most {MAX_TAGS} tags of 1 to "
        f"{MAX_TAG_CHARS} printable characters each (no commas).",
        code="invalid_tags",
        param="metadata.tags" if where != HEADER else None,
    )


def _check(tag: Any, where: str) -> str:
    if not isinstance(tag, str):
        raise _bad(where, f"a tag must be a string, got {type(tag).__name__}")
    tag = tag.strip()
    if not tag:
        raise _bad(where, "a tag is empty")
    if len(tag) > MAX_TAG_CHARS:
        raise _bad(where, f"tag '{tag[:MAX_TAG_CHARS]}...' is longer than {MAX_TAG_CHARS}")
    if not tag.isprintable() or "," in tag:
        raise _bad(where, f"tag {tag!r} has a comma or a non-printable character")
    return tag


def _split(value: str) -> list[str]:
    return [part for part in value.split(",") if part.strip()]


def parse(metadata_tags: Any, header: str | None) -> tuple[str, ...]:
    """The request's tags from both sources (see the module docstring); 400 when malformed."""
    found: list[str] = []
    if metadata_tags is not None:
        where = "metadata.tags"
        if isinstance(metadata_tags, str):
            items: list[Any] = _split(metadata_tags)
        elif isinstance(metadata_tags, list):
            items = metadata_tags
        else:
            raise _bad(where, "expected a list of strings or a comma-separated string")
        if len(items) > MAX_TAGS:
            raise _bad(where, f"{len(items)} tags")
        found += [_check(t, where) for t in items]
    if header:
        items = _split(header)
        if len(items) > MAX_TAGS:
            raise _bad(HEADER, f"{len(items)} tags")
        found += [_check(t, HEADER) for t in items]
    tags = tuple(dict.fromkeys(found))
    if len(tags) > MAX_TAGS:
        raise _bad("metadata.tags and x-switchboard-tags together", f"{len(tags)} tags")
    return tags


def take_tags(req: ChatRequest, headers: Mapping[str, str]) -> tuple[ChatRequest, tuple[str, ...]]:
    """The request without ``metadata.tags``, and its tags."""
    metadata = req.metadata
    raw = metadata.get("tags") if isinstance(metadata, dict) else None
    tags = parse(raw, headers.get(HEADER))
    if isinstance(metadata, dict) and "tags" in metadata:
        rest = {k: v for k, v in metadata.items() if k != "tags"}
        req = dataclasses.replace(req, metadata=rest or None)
    return req, tags
