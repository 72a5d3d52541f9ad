"""Cursor encoding: opaque, bound to a sort order, robust to garbage."""

from __future__ import annotations

import pytest

from backend.admin.errors import InvalidInput
from backend.admin.pagination import decode_cursor, encode_cursor, offset_page, page_size


def test_round_trip_and_binding() -> None:
    cur = encode_cursor({"k": "users:name", "id": 5, "v": ["v", "Ann"]})
    assert "Ann" not in cur  # opaque to clients (base64url)
    assert decode_cursor(cur, "users:name")["id"] == 5
    with pytest.raises(InvalidInput):
        decode_cursor(cur, "users:email")


@pytest.mark.parametrize("garbage", ["", "%%%", "bm90IGpzb24", encode_cursor([1, 2])])  # type: ignore[arg-type]
def test_garbage_cursors(garbage: str) -> None:
    with pytest.raises(InvalidInput) as err:
        decode_cursor(garbage, "k")
    assert err.value.field == "after"


async def test_offset_pages() -> None:
    items = list(range(7))
    p1 = offset_page(items, "k", first=3, after=None)
    p2 = offset_page(items, "k", first=3, after=p1.end_cursor)
    p3 = offset_page(items, "k", first=3, after=p2.end_cursor)
    assert (p1.items, p2.items, p3.items) == ([0, 1, 2], [3, 4, 5], [6])
    assert (p1.has_next, p2.has_next, p3.has_next) == (True, True, False)
    assert await p1.count() == 7


def test_page_size_bounds() -> None:
    assert page_size(None) == 50
    for bad in (0, -1, 501):
        with pytest.raises(InvalidInput):
            page_size(bad)
