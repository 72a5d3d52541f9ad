"""Anthropic request validation helpers and ``document`` blocks (the IR's files), for
``decode``: errors in the Messages API's own wording, with its dotted paths."""

from __future__ import annotations

from typing import Any

from backend.ir.chat import FilePart
from backend.ir.errors import InvalidRequest


def unmodelled(block: dict[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    """The keys of ``block`` outside ``known``, verbatim (None when there are none); a
    ``null`` asks for nothing and is left out."""
    extra = {k: v for k, v in block.items() if k not in known and v is not None}
    return extra or None


def fail(param: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {problem}", param=param)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def str_field(obj: dict[str, Any], key: str, path: str, *, non_empty: bool = False) -> str:
    v = obj.get(key)
    if not isinstance(v, str):
        missing = key not in obj
        raise fail(
            f"{path}.{key}", "Field required" if missing else "Input should be a valid string"
        )
    if non_empty and not v:
        raise fail(f"{path}.{key}", "String should have at least 1 character")
    return v


_DOCUMENT_KEYS = frozenset({"type", "source", "title", "cache_control"})
_SOURCE_KEYS = {
    "base64": frozenset({"type", "media_type", "data"}),
    "text": frozenset({"type", "media_type", "data"}),
    "url": frozenset({"type", "url"}),
}


def document_source(block: dict[str, Any]) -> dict[str, Any] | None:
    """The source of a document the IR models as a file, or None (a Files API id, custom
    content, or a source with keys the IR would lose)."""
    source = block.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("type"), str):
        return None
    known = _SOURCE_KEYS.get(source["type"])
    return source if known is not None and set(source) <= known else None


def document(block: dict[str, Any], path: str) -> FilePart:
    """A ``document`` block as the IR's file; ``title`` is its name, the rest (``citations``,
    ``context``) stays in ``extra`` for Anthropic."""
    source = block["source"]
    spath = f"{path}.source"
    title = block.get("title")
    if title is not None and not isinstance(title, str):
        raise fail(f"{path}.title", "Input should be a valid string")
    if source["type"] == "url":
        part = FilePart(url=str_field(source, "url", spath, non_empty=True), filename=title)
    elif source["type"] == "text":
        media_type = source.get("media_type", "text/plain")
        if media_type != "text/plain":
            raise fail(f"{spath}.media_type", "Input should be 'text/plain'")
        part = FilePart(text=str_field(source, "data", spath), media_type=media_type)
        part.filename = title
    else:
        media_type = str_field(source, "media_type", spath, non_empty=True)
        data = str_field(source, "data", spath, non_empty=True)
        part = FilePart(data=data, media_type=media_type, filename=title)
    part.extra = unmodelled(block, _DOCUMENT_KEYS)
    return part
